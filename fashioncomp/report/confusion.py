"""Section "Category confusion matrix" on the OOF predictions."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fashioncomp.report.context import ReportContext
from fashioncomp.report.markdown import _image, _table
from fashioncomp.report.plots import plot_confusion


def section_confusion(ctx: ReportContext) -> str:
    """Confusion matrix figure, per-category precision/recall/F1 and the most frequent confusions."""
    lines = ["## Category confusion matrix", ""]
    if ctx.oof is None:
        return "\n".join(lines + ["Not available: needs `oof.npz` and the labels."])
    categories = ctx.run.schema.categories
    known = ctx.oof.labels.categories >= 0
    true = ctx.oof.labels.categories[known]
    pred = ctx.oof.category[known].argmax(axis=1)
    counts = confusion_matrix(true, pred, labels=range(len(categories)))
    link = ctx.save(plot_confusion(counts, categories, "Category confusion matrix (OOF)", "predicted category",
                                   "true category"), "category_confusion.png")
    precision, recall, f1, support = precision_recall_fscore_support(true, pred, labels=range(len(categories)),
                                                                     zero_division=0)
    rows = [[name, int(n), p, r, f] for name, n, p, r, f in zip(categories, support, precision, recall, f1)]
    off = counts.copy()
    np.fill_diagonal(off, 0)
    worst = [(off[i, j], i, j) for i, j in zip(*np.unravel_index(np.argsort(off, axis=None)[::-1], off.shape))
             if off[i, j] > 0][:5]
    lines += [_image(link, "category confusion matrix"), "",
              f"{int(known.sum())} OOF images with a known category; accuracy {np.mean(true == pred):.4f}.", "",
              _table(["category", "images", "precision", "recall", "F1"], rows)]
    if worst:
        lines += ["", "Most frequent confusions (true → predicted: images):", ""]
        lines += [f"- {categories[i]} → {categories[j]}: {int(c)}" for c, i, j in worst]
    return "\n".join(lines)
