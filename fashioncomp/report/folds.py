"""Section "Folds": status and scores per fold, with the training curves."""
from __future__ import annotations

from fashioncomp.metrics import ATTRIBUTE_F1
from fashioncomp.report.context import ReportContext, _oof_fold_scores
from fashioncomp.report.markdown import _image, _table, headline
from fashioncomp.report.plots import plot_fold_curves, plot_folds_overview


def section_folds(ctx: ReportContext) -> str:
    """Per-fold table (best.pt and OOF scores) and a figure of curves per trained fold."""
    chosen = ATTRIBUTE_F1[ctx.run.attribute_metric]
    short = chosen.label.removeprefix("attribute ")
    rows = []
    for s in ctx.folds:
        status = "done" if s.done else ("training" if s.metrics is not None else "not trained")
        epochs = len(s.metrics) if s.metrics is not None else 0
        best = s.best_metrics or {}
        oof = _oof_fold_scores(ctx, s.fold) or {}
        rows.append([s.fold, status, epochs, s.best_epoch or "—", best.get("category_accuracy"),
                     best.get(chosen.key), best.get("score"), oof.get("category_accuracy"),
                     oof.get(chosen.key), oof.get("score")])
    lines = ["## Folds", "",
             "`best.pt` columns: scores logged in training (no TTA, threshold 0.5). OOF columns: the same rows "
             f"from `oof.npz` (with TTA, threshold 0.5). The score, which picked `best.pt`, averages category "
             f"accuracy and the {chosen.label} (`metrics.attribute_f1: {chosen.name}`).", "",
             _table(["fold", "status", "epochs", "best epoch", "best.pt cat. acc.", f"best.pt {short}", "best.pt score",
                     "OOF cat. acc.", f"OOF {short}", "OOF score"], rows)]
    trained = [s for s in ctx.folds if s.metrics is not None and len(s.metrics)]
    if not trained:
        return "\n".join(lines + ["", "No fold has finished an epoch yet: no curves."])
    overview = plot_folds_overview(trained, headline(chosen.name))
    lines += ["", "### Training curves", "", _image(ctx.save(overview, "folds_overview.png"),
                                                     "validation scores of every fold")]
    group_names = [g.name for g in ctx.run.schema.groups]
    for s in trained:
        link = ctx.save(plot_fold_curves(s.metrics, s.fold, s.best_epoch, group_names, headline(chosen.name)),
                        f"fold_{s.fold}_curves.png")
        lines += ["", _image(link, f"fold {s.fold} training curves")]
    return "\n".join(lines)
