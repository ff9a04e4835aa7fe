"""Section "Attributes": per-attribute F1 at 0.5 and tuned, with each attribute's decision rule."""
from __future__ import annotations

import numpy as np

from fashioncomp.metrics import ATTRIBUTE_F1, per_attribute_f1
from fashioncomp.report.context import ReportContext, _decoded
from fashioncomp.report.markdown import _attribute_label, _image, _table
from fashioncomp.report.plots import plot_attribute_f1


def _decision_notes(ctx: ReportContext) -> list[str]:
    """How each attribute is decided in the submission (tuned) or, without thresholds.json, at 0.5."""
    argmax = {i for g in ctx.run.decode_groups for i in g.indices}
    t = ctx.thresholds
    if t is None:
        return ["argmax (group)" if i in argmax else "t=0.50" for i in range(ctx.run.schema.num_attributes)]
    return ["argmax (group)" if i in argmax else (f"t={thr:.2f} (global)" if fallback else f"t={thr:.2f}")
            for i, (thr, fallback) in enumerate(zip(t["thresholds"], t["fallback"]))]


def section_attributes(ctx: ReportContext) -> str:
    """Bar charts (at most `ctx.max_bars_per_figure` attributes each) and a table per attribute."""
    lines = ["## Attributes", ""]
    if ctx.oof is None:
        return "\n".join(lines + ["Not available: needs `oof.npz` and the labels."])
    labels = ctx.oof.labels
    series = {"threshold 0.5": per_attribute_f1(labels.attributes, _decoded(ctx, ctx.oof.attributes, tuned=False),
                                                labels.attribute_known)}
    t = ctx.thresholds
    if t is None:
        lines.append("No `thresholds.json` yet: F1 at threshold 0.5 only (argmax for multiclass groups).")
    else:
        series["tuned thresholds"] = np.array([np.nan if v is None else v for v in t["per_attribute_f1_tuned"]], dtype=float)
        refined = f", then refined together for {ATTRIBUTE_F1[t['attribute_f1']].label}" if "attribute_f1" in t else ""
        lines.append(f"Decoding: per-attribute thresholds tuned on OOF ({t['metric']}{refined}); attributes with too "
                     f"few positives start from the global threshold {t['global_threshold']:.2f}"
                     + ("; attributes of multiclass groups are decoded by the group's argmax (thresholds unused)"
                        if t["decoded_by_group_argmax"] else "")
                     + ("; every image gets at least one attribute." if t["at_least_one"] else "."))
    notes = _decision_notes(ctx)
    names = [_attribute_label(ctx, i) for i in range(ctx.run.schema.num_attributes)]
    positives = (labels.attributes.astype(bool) & labels.attribute_known).sum(axis=0)
    known = labels.attribute_known.sum(axis=0)
    n = len(names)
    # as few figures as the limit allows, equally long
    chunks = [list(c) for c in np.array_split(np.arange(n), -(-n // ctx.max_bars_per_figure))]
    for part, chunk in enumerate(chunks, start=1):
        suffix = f" ({part}/{len(chunks)})" if len(chunks) > 1 else ""
        fig = plot_attribute_f1([names[i] for i in chunk], {k: v[chunk] for k, v in series.items()},
                                [notes[i] for i in chunk], f"Per-attribute F1 (OOF){suffix}")
        name = "attribute_f1.png" if len(chunks) == 1 else f"attribute_f1_{part}.png"
        lines += ["", _image(ctx.save(fig, name), f"per-attribute F1{suffix}")]
    header = ["attribute (group)", "positives / labelled", "decision"] + [f"F1, {k}" for k in series]
    rows = [[names[i], f"{int(positives[i])} / {int(known[i])}", notes[i]] + [v[i] for v in series.values()]
            for i in range(n)]
    lines += ["", _table(header, rows)]
    return "\n".join(lines)
