"""Section "Gains": what threshold tuning, the linear model's blend, TTA and the fold ensemble add."""
from __future__ import annotations

from typing import Any

import numpy as np

from fashioncomp.metrics import ATTRIBUTE_F1
from fashioncomp.report.context import ReportContext, _oof_fold_scores
from fashioncomp.report.markdown import _fmt, _table, headline


def _tta_rows(ctx: ReportContext) -> tuple[list[list[Any]], str]:
    """Per-metric gain of TTA, averaged over the folds that have both numbers."""
    tta = list(ctx.run.config["predict"]["tta"])
    name = f"TTA {tta}"
    if tta == ["none"]:
        return [[name, "—", "—", "—", "—", "TTA is off in this run (predict.tta = [none])"]], ""
    # a best.pt newer than oof.npz is not the model that made the OOF predictions
    pairs = [(s.fold, s.best_metrics, _oof_fold_scores(ctx, s.fold)) for s in ctx.folds
             if s.best_metrics and s.fold not in ctx.oof.stale_folds] if ctx.oof is not None else []
    pairs = [(k, without, with_tta) for k, without, with_tta in pairs if with_tta is not None]
    if not pairs:
        return [[name, "—", "—", "—", "—", "not measured: needs a fold's best.pt (with the scores training logged) "
                 "and its OOF predictions from that checkpoint"]], ""
    how = (f"mean over folds {', '.join(str(k) for k, _, _ in pairs)}" if len(pairs) > 1 else f"fold {pairs[0][0]}") \
        + "; threshold 0.5"
    rows = []
    chosen = ATTRIBUTE_F1[ctx.run.attribute_metric]
    # every score but the last ("score"); a metric a checkpoint of an older version did not log is left out
    for key, label in headline(chosen.name)[:-1]:
        if not all(key in p[1] and key in p[2] for p in pairs):
            continue
        without = float(np.mean([p[1][key] for p in pairs]))
        with_tta = float(np.mean([p[2][key] for p in pairs]))
        rows.append([name, label, _fmt(without), _fmt(with_tta), _fmt(with_tta - without, signed=True), how])
    per_fold = _table(["fold", "category accuracy without → with TTA", f"{chosen.label} without → with TTA"],
                      [[k, f"{w['category_accuracy']:.4f} → {t['category_accuracy']:.4f}",
                        f"{_fmt(w.get(chosen.key))} → {_fmt(t.get(chosen.key))}"] for k, w, t in pairs])
    return rows, per_fold


def _linear_rows(ctx: ReportContext) -> list[list[Any]]:
    """The linear model's blend: the out-of-fold scores at weight 0 and at the chosen weight (linear.json)."""
    if ctx.linear is None:
        return []
    chosen = ATTRIBUTE_F1[ctx.linear["attribute_f1"]]
    rows = []
    for task, label in (("category", "category accuracy"), ("attributes", f"{chosen.label} at 0.5")):
        weight = ctx.linear[f"{task}_weight"]
        by_weight = ctx.linear["oof_scores_by_weight"][task]
        without, with_linear = by_weight["0.0"], by_weight[str(weight)]
        rows.append([f"linear model blend (weight {weight:g})", label, _fmt(without), _fmt(with_linear),
                     _fmt(with_linear - without, signed=True),
                     "pooled OOF; the weight is the best of those tried on these rows (linear.json)"])
    return rows


def section_gains(ctx: ReportContext) -> str:
    """Table of the gain of each step, with how it was measured (or why it was not)."""
    header = ["step", "metric", "without", "with", "gain", "how measured"]
    rows: list[list[Any]] = []
    if ctx.thresholds and ctx.oof_scores:
        t = ctx.thresholds
        chosen = ATTRIBUTE_F1[ctx.run.attribute_metric]
        argmax = len(t["decoded_by_group_argmax"])
        refined = f", refined for {chosen.label}" if "attribute_f1" in t else ""  # older runs did not refine
        how = f"pooled OOF, {t['metric']}-tuned thresholds{refined}" + (
            "; no effect: every attribute is decoded by its multiclass group's argmax"
            if argmax == ctx.run.schema.num_attributes and not t["at_least_one"]
            else " (multiclass groups keep their argmax)" if argmax else "")
        # the chosen attribute F1 first; the others show what tuning for it does to them
        for key, label in headline(chosen.name)[1:-1]:
            half, tuned = ctx.oof_scores.get(key), t["oof_scores_tuned"].get(key)
            if half is None or tuned is None:  # a metric an older run did not record
                continue
            blended = ctx.linear is not None and ctx.linear["attributes_weight"] > 0
            step = "linear blend + threshold tuning" if blended else "threshold tuning"
            rows.append([step, label, _fmt(half), _fmt(tuned), _fmt(tuned - half, signed=True), how])
    else:
        rows.append(["threshold tuning", "—", "—", "—", "—", "not measured: needs oof_scores.json and thresholds.json"])
    rows += _linear_rows(ctx)
    tta_rows, tta_per_fold = _tta_rows(ctx)
    rows += tta_rows
    n_models = len(ctx.test_probs["folds"]) if ctx.test_probs is not None else sum(s.has_best for s in ctx.folds)
    rows.append([f"fold ensemble ({n_models} model{'s' if n_models != 1 else ''})", "—", "—", "—", "not measured",
                 "each OOF row has exactly one model that did not train on it, so OOF cannot score an "
                 "ensemble without leakage, and test labels are unknown"])
    lines = ["## Gains", "", _table(header, rows)]
    if tta_per_fold:
        lines += ["", "TTA: *without* = the scores training logged for `best.pt` on its held-out fold (no TTA); "
                  "*with* = the same rows in `oof.npz`, predicted by the same model with TTA. Both at threshold "
                  "0.5, so the tuned thresholds (fitted on TTA probabilities) do not favour either side.", "",
                  tta_per_fold]
    singles = [s for s in (_oof_fold_scores(ctx, st.fold) for st in ctx.folds) if s is not None]
    if len(singles) > 1:
        scores = np.array([s["score"] for s in singles])
        lines += ["", f"Single fold models on their own held-out folds (with TTA, threshold 0.5): score "
                  f"{scores.mean():.4f} ± {scores.std(ddof=1):.4f} (mean ± std over {len(singles)} folds). "
                  "The test submission averages the fold models; its gain over one model is not measured."]
    return "\n".join(lines)
