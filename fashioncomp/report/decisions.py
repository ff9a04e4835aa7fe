"""Section "Label decisions": what the pipeline decided about the attribute labels.

Reads only the run directory: the attribute groups of `schema.json` (declared in the schema or
found in the training labels) and the decoding choices of `thresholds.json` (threshold metric,
the attribute F1 they were refined for, at-least-one rule, per-attribute thresholds, attributes never
predicted right out of fold).
"""
from __future__ import annotations

from typing import Any

from fashioncomp.data.schema import AttributeGroup
from fashioncomp.metrics import ATTRIBUTE_F1
from fashioncomp.report.context import ReportContext, _command
from fashioncomp.report.markdown import _fmt, _table

METRIC_EXPLANATIONS = {
    "mcc": "each attribute's threshold maximises its Matthews correlation on the OOF predictions",
    "f1": "each attribute's threshold maximises its F1 on the OOF predictions",
    # thresholds.json of older runs
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


def _at_least_one_reason(applied: bool, setting: object, t: dict[str, Any]) -> str:
    """Why the at-least-one rule is on or off, from `at_least_one_setting` (None: not recorded) and,
    when the OOF attribute F1 judged it, `at_least_one_scores`."""
    if setting is None:
        return "how it was chosen is not recorded in this run's `thresholds.json`"
    if setting != "auto":
        return f"set in the config (`thresholds.at_least_one: {str(setting).lower()}`)"
    scores = t.get("at_least_one_scores", {})
    if "on" not in scores or "off" not in scores:  # the labels decided (or an older run)
        return ("auto: on because every training image has at least one attribute" if applied
                else "auto: off because some training images have none")
    label = ATTRIBUTE_F1[t["attribute_f1"]].label
    judged = f"OOF {label}: {scores['off']:.4f} without it, {scores['on']:.4f} with it"
    return (f"auto: on because every training image has at least one attribute and the rule does not lower the "
            f"{judged}" if applied else
            f"auto: off because, although every training image has at least one attribute, the rule lowers the "
            f"{judged}")


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
    lines.append(f"- threshold metric: **{metric}**" + (f" ({explanation})" if explanation else ""))
    if "attribute_f1" in t:
        chosen = ATTRIBUTE_F1[t["attribute_f1"]]
        lines.append(f"- then refined for: **{chosen.label}** (`metrics.attribute_f1: {chosen.name}`, "
                     f"{chosen.meaning}): coordinate ascent over the thresholds, decoding as the submission does; OOF "
                     f"{_fmt(t['oof_attribute_f1_start'])} with the per-attribute thresholds, "
                     f"{_fmt(t['oof_attribute_f1_tuned'])} refined")
    lines += [f"- at least one attribute per image: **{'on' if applied else 'off'}** "
              f"({_at_least_one_reason(applied, t.get('at_least_one_setting'), t)})"
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
                  f"(`thresholds.min_positives`) {'start from' if 'attribute_f1' in t else 'use'} the global "
                  f"threshold {t['global_threshold']:.2f}.", "",
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
