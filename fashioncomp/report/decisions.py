"""Section "Label decisions": what the pipeline decided about the attribute labels.

Reads only the run directory: the attribute groups of `schema.json` (declared in the schema or
found in the training labels) and the decoding choices of `thresholds.json` (threshold metric,
at-least-one rule, per-attribute thresholds, attributes never predicted right out of fold).
"""
from __future__ import annotations

from fashioncomp.data.schema import AttributeGroup
from fashioncomp.report.context import ReportContext, _command
from fashioncomp.report.markdown import _table

METRIC_EXPLANATIONS = {
    "mcc": "each attribute's threshold maximises its Matthews correlation on the OOF predictions",
    "f1": "each attribute's threshold maximises its F1 on the OOF predictions",
    "mean_f1": "each attribute's threshold first maximises its F1, then all are refined together to "
               "maximise the per-image attribute mean-F1 on the OOF predictions",
}
UNLEARNED_ADVICE = "never predicted right out of fold: try loss.attribute=asl, more epochs or a larger image size"


def _group_line(ctx: ReportContext, group: AttributeGroup) -> str:
    origin = "found in the labels" if group.discovered else "declared in the schema"
    members = ", ".join(ctx.run.schema.attributes[i] for i in group.indices)
    return f"- **{group.name}** ({group.type}, {origin}): {members}"


def _merged_part(ctx: ReportContext) -> list[str]:
    """The rare attributes merged into "other" for training (data.merge_rare_below), if any."""
    schema = ctx.run.schema
    if not schema.merged:
        return []
    names = ", ".join(schema.attributes[i] for i in schema.merged)
    return ["", f"Rare labels: {len(schema.merged)} attribute(s) under "
            f"{ctx.run.config['data']['merge_rare_below']:g} of the training images were merged into one "
            f"\"other\" label per task for training (`data.merge_rare_below`); they are never predicted: {names}."]


def _groups_part(ctx: ReportContext) -> list[str]:
    """The attribute groups, where each came from, and how to change them."""
    run = ctx.run
    schema = run.schema
    lines = ["### Attribute groups", ""]
    if not schema.groups:
        return lines + ["The schema has no attribute groups: every attribute is an independent sigmoid with its "
                        "own threshold."] + _merged_part(ctx)
    lines += [_group_line(ctx, g) for g in schema.groups]
    ungrouped = schema.ungrouped_attributes()
    if ungrouped:
        lines.append(f"- in no group: {', '.join(schema.attributes[i] for i in ungrouped)}")
    notes = []
    if schema.multiclass_groups:
        notes.append("A multiclass group gives an image at most one of its members (one softmax over the members "
                     "plus \"none\", decoded by the group's argmax).")
    independent = (["members of a multilabel group"] if len(schema.multiclass_groups) < len(schema.groups) else []) \
        + (["attributes in no group"] if ungrouped else [])
    if independent:
        notes.append(f"{' and '.join(independent).capitalize()} are independent sigmoids, each with its own threshold.")
    lines += ["", " ".join(notes)]
    if not run.config["data"]["use_groups"]:
        lines += ["", "`data.use_groups` is false in this run: the groups are not used, so every attribute is an "
                  "independent sigmoid with its own threshold."]
    elif run.config["data"]["multilabel_group_tasks"] and len(schema.multiclass_groups) < len(schema.groups):
        lines += ["", "`data.multilabel_group_tasks` is on: each multilabel group is a task of its own (its own "
                  "head output, loss and task weight)."]
    if any(g.discovered for g in schema.groups):
        lines += ["", "The groups found in the labels were inferred from the training labels (attributes that "
                  "almost never occur on the same image). To change them, edit the run's schema "
                  f"(`{run.dir / 'schema.json'}`) and pass it back with "
                  "`--set data.schema=FILE` (to `init` of a new run); `--set data.discover_groups=false` turns "
                  "discovery off."]
    return lines + _merged_part(ctx)


def _at_least_one_reason(applied: bool, setting: object) -> str:
    """Why the at-least-one rule is on or off, from `at_least_one_setting` (None: not recorded)."""
    if setting is None:
        return "how it was chosen is not recorded in this run's `thresholds.json`"
    if setting == "auto":
        return ("auto: on because every training image has at least one attribute" if applied
                else "auto: off because some training images have none")
    return f"set in the config (`thresholds.at_least_one: {str(setting).lower()}`)"


def _thresholds_part(ctx: ReportContext) -> list[str]:
    """Threshold metric, at-least-one rule, the thresholded attributes and the unlearned ones."""
    run = ctx.run
    schema = run.schema
    lines = ["### Decoding", ""]
    t = ctx.thresholds
    if t is None:
        return lines + [f"Not available yet: no `thresholds.json` (run {_command(run, 'thresholds')})."]
    metric = t["metric"]
    explanation = METRIC_EXPLANATIONS.get(metric)
    applied = bool(t["at_least_one"])
    lines += [f"- threshold metric: **{metric}**" + (f" ({explanation})" if explanation else ""),
              f"- at least one attribute per image: **{'on' if applied else 'off'}** "
              f"({_at_least_one_reason(applied, t.get('at_least_one_setting'))})"
              + ("; an image with no attribute above its threshold gets its most probable one" if applied else "")]
    argmax = set(t["decoded_by_group_argmax"])
    thresholded = [i for i in range(schema.num_attributes) if i not in argmax]
    lines.append("")
    if not thresholded:
        lines.append("All attributes are decoded by their multiclass group's argmax: no threshold is used.")
    else:
        group_of = {i: g.name for g in schema.groups for i in g.indices}
        lines += [f"{len(thresholded)} of {schema.num_attributes} attributes are decided by a threshold"
                  + (f" (the other {len(argmax)} by their multiclass group's argmax)" if argmax else "")
                  + f". Attributes with fewer than {run.config['thresholds']['min_positives']} known positives "
                  f"(`thresholds.min_positives`) use the global threshold {t['global_threshold']:.2f}.", "",
                  _table(["attribute", "group", "threshold", "global fallback"],
                         [[schema.attributes[i], group_of.get(i, "—"), f"{t['thresholds'][i]:.2f}",
                           "yes" if t["fallback"][i] else "no"] for i in thresholded])]
    if "unlearned" not in t:
        lines += ["", "This run's `thresholds.json` does not record which attributes were never learned "
                  f"(rerun {_command(run, 'thresholds', ' --force')} to check)."]
    elif t["unlearned"]:
        names = ", ".join(schema.attributes[i] for i in t["unlearned"])
        lines += ["", f"**Warning: not learned: {names} ({UNLEARNED_ADVICE}).**"]
    return lines


def section_label_decisions(ctx: ReportContext) -> str:
    """What the pipeline decided about the labels: attribute groups and how attributes are decoded."""
    lines = ["## Label decisions", "",
             "What the pipeline decided about the attribute labels (from the run's `schema.json` and "
             "`thresholds.json`).", ""]
    return "\n".join(lines + _groups_part(ctx) + [""] + _thresholds_part(ctx))
