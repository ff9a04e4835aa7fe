"""Section "Summary": headline CV scores, what the run is, and what is missing."""
from __future__ import annotations

from fashioncomp.metrics import ATTRIBUTE_F1
from fashioncomp.report.context import ReportContext
from fashioncomp.report.markdown import _table, headline


def section_summary(ctx: ReportContext) -> str:
    """Headline OOF scores at 0.5 and tuned, the run's data and model, and the missing pieces."""
    run = ctx.run
    tuned = ctx.thresholds["oof_scores_tuned"] if ctx.thresholds else {}
    half = ctx.oof_scores or {}
    chosen = ATTRIBUTE_F1[run.attribute_metric]
    named = {chosen.key: f"{chosen.label} (metrics.attribute_f1: {chosen.name})"}  # the one the run optimises
    rows = [(named.get(key, label), half.get(key), tuned.get(key)) for key, label in headline(chosen.name)]
    trained = [s.fold for s in ctx.folds if s.has_best]
    lines = [
        "## Summary", "",
        "Cross-validated scores on out-of-fold (OOF) predictions: every training image predicted by "
        "the one fold model that did not train on it (with the configured TTA).", "",
        _table(["metric", "OOF, threshold 0.5", "OOF, tuned thresholds"], rows), "",
        f"The assignment scores attributes with a \"Mean F1\" it does not define further. This run takes it "
        f"as **{chosen.name}** ({chosen.meaning}; `metrics.attribute_f1`): the validation score that picked each "
        f"fold's `best.pt`, the threshold refinement and the at-least-one rule all maximise it. The other "
        f"attribute F1s are shown for comparison.", "",
        f"- data: `{run.data_root}`; {run.schema.num_categories} categories, {run.schema.num_attributes} "
        f"attributes, {len(run.schema.groups)} attribute groups",
        f"- model: `{run.config['model']['backbone']}` at {run.config['data']['image_size']} px, "
        f"TTA {list(run.config['predict']['tta'])}, thresholds tuned on {run.config['thresholds']['metric']} per "
        f"attribute, then refined for {chosen.label}",
        f"- folds with a `best.pt`: {len(trained)} of {run.n_folds}"
        + (f" (fold {', '.join(map(str, trained))})" if 0 < len(trained) < run.n_folds else ""),
    ]
    if ctx.linear is not None:
        lines.append(f"- linear model (logistic regression on thumbnails + HSV histograms, `linear.enabled`) blended "
                     f"into the networks' probabilities with weight {ctx.linear['category_weight']:g} (category) and "
                     f"{ctx.linear['attributes_weight']:g} (attributes), chosen out of fold: the tuned column includes "
                     f"it, the 0.5 column is the networks alone")
    if ctx.oof is not None:
        lines.append(f"- OOF rows: {len(ctx.oof.labels)} of {ctx.oof.total_rows}")
    if ctx.test_probs is not None:
        lines.append(f"- test predictions: {len(ctx.test_probs['file_path'])} images, mean of "
                     f"{len(ctx.test_probs['folds'])} fold model(s)")
    if ctx.missing:
        lines += ["", "**Missing or incomplete** (the sections below use what exists):", ""]
        lines += [f"- {item}" for item in ctx.missing]
    return "\n".join(lines)
