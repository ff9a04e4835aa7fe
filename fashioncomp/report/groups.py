"""Section "Attribute groups": scores per group and a confusion matrix per multiclass group."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix

from fashioncomp.report.context import ReportContext, _decoded
from fashioncomp.report.markdown import _image, _slug, _table
from fashioncomp.report.plots import plot_confusion, plot_group_scores


def _group_class(x: np.ndarray) -> np.ndarray:
    """Class within a multiclass group: first positive member, or len(members) for "none"."""
    return np.where(x.any(axis=1), x.argmax(axis=1), x.shape[1])


GROUP_METRICS = {"accuracy": "mean class accuracy", "f1": "macro-F1", "mean_f1": "mean-F1"}


def section_groups(ctx: ReportContext) -> str:
    """Group scores at 0.5 and tuned, and the confusion matrix of each multiclass group."""
    lines = ["## Attribute groups", ""]
    groups = ctx.run.schema.groups
    if not groups:
        return "\n".join(lines + ["The schema defines no attribute groups."])
    if not ctx.oof_scores:
        return "\n".join(lines + ["Not available: needs `oof_scores.json`."])
    sources = {"threshold 0.5": ctx.oof_scores}
    if ctx.thresholds:
        sources["tuned thresholds"] = ctx.thresholds["oof_scores_tuned"]
    keys = [(g, metric) for g in groups for metric in GROUP_METRICS if f"group/{g.name}/{metric}" in ctx.oof_scores]
    series = {label: np.array([scores.get(f"group/{g.name}/{m}", np.nan) for g, m in keys], dtype=float)
              for label, scores in sources.items()}
    link = ctx.save(plot_group_scores([f"{g.name} ({g.type})\n{GROUP_METRICS[m]}" for g, m in keys], series,
                                      "Scores per attribute group (OOF)"), "group_scores.png")
    lines += [_image(link, "scores per attribute group"), "",
              "Multiclass groups: mean class accuracy over the members plus \"none\", and macro-F1 over the "
              "members. Multilabel groups: macro-F1 and per-image mean-F1 over the members.", "",
              _table(["group", "metric"] + list(series),
                     [[f"{g.name} ({g.type})", GROUP_METRICS[m]] + [v[i] for v in series.values()]
                      for i, (g, m) in enumerate(keys)])]
    if ctx.oof is None:
        return "\n".join(lines)
    labels = ctx.oof.labels
    pred = _decoded(ctx, ctx.oof.attributes, tuned=ctx.thresholds is not None)
    for g in ctx.run.schema.multiclass_groups:
        cols = list(g.indices)
        rows_known = labels.attribute_known[:, cols].all(axis=1)
        if not rows_known.any():
            continue
        classes = [ctx.run.schema.attributes[i] for i in cols] + ["none"]
        counts = confusion_matrix(_group_class(labels.attributes[rows_known][:, cols].astype(bool)),
                                  _group_class(pred[rows_known][:, cols]), labels=range(len(classes)))
        fig = plot_confusion(counts, classes, f"Group '{g.name}': confusion matrix (OOF)", f"predicted {g.name}",
                             f"true {g.name}")
        lines += ["", _image(ctx.save(fig, f"group_{_slug(g.name)}_confusion.png"), f"{g.name} confusion matrix")]
    return "\n".join(lines)
