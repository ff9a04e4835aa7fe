"""The report's figures: training curves, confusion matrices, per-attribute and per-group scores.

Each plot_* function returns a matplotlib `Figure` (no pyplot state); `ReportContext.save` writes it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fashioncomp.report.context import FoldState
from fashioncomp.report.markdown import HEADLINE, _fmt

MAX_ANNOTATED_CLASSES = 25     # confusion matrices write the counts in the cells up to this size
SERIES_COLOURS = ("#bbbbbb", "tab:blue")  # threshold 0.5, tuned thresholds


def _line_axes(ax: Any, title: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)


def _legend_outside(ax: Any) -> None:
    """Legend to the right of the axes, where it cannot hide a curve."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def plot_fold_curves(frame: pd.DataFrame, fold: int, best_epoch: int | None, group_names: Sequence[str],
                     scores: Sequence[tuple[str, str]] = HEADLINE) -> Figure:
    """2x2: training losses, validation scores, validation scores per group, learning rate."""
    fig = Figure(figsize=(15, 8), layout="constrained")
    axes = fig.subplots(2, 2)
    epochs = frame["epoch"]
    ax = axes[0, 0]
    ax.plot(epochs, frame["train_loss"], "o-", color="black", lw=2, label="total (weighted)")
    for column in [c for c in frame.columns if c.startswith("loss/")]:
        ax.plot(epochs, frame[column], "o-", lw=1, ms=3, label=column.removeprefix("loss/"))
    _line_axes(ax, "training loss per task", "loss")
    _legend_outside(ax)

    ax = axes[0, 1]
    for key, label in scores:
        if f"val/{key}" in frame:
            ax.plot(epochs, frame[f"val/{key}"], "o-", label=label.split(" (")[0])
    _line_axes(ax, "validation (held-out fold, no TTA, threshold 0.5)", "score")

    ax_group = axes[1, 0]
    for name in group_names:
        for metric in ("accuracy", "f1"):
            if f"val/group/{name}/{metric}" in frame:
                ax_group.plot(epochs, frame[f"val/group/{name}/{metric}"], "o-", ms=3,
                              label=f"{name} {'mean class acc.' if metric == 'accuracy' else 'macro-F1'}")
    _line_axes(ax_group, "validation per attribute group", "score")
    for a in (ax, ax_group):
        if best_epoch is not None:
            a.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best.pt (epoch {best_epoch})")
        a.set_ylim(-0.02, 1.02)
        _legend_outside(a)

    ax = axes[1, 1]
    ax.plot(epochs, frame["lr"], "o-", color="tab:purple", label="learning rate")
    _line_axes(ax, "learning rate at the end of the epoch", "learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    # adaptive task weighting (dwa, uncertainty) changes the weights every epoch: show them beside
    varying = [c for c in frame.columns if c.startswith("weight/") and frame[c].nunique() > 1]
    if varying:
        twin = ax.twinx()
        for column in varying:
            twin.plot(epochs, frame[column], "s--", ms=3, lw=1, label=f"weight {column.removeprefix('weight/')}")
        twin.set_ylabel("task loss weight")
        ax.set_title("learning rate and task loss weights")
        handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.2, 1.0), borderaxespad=0.0)
    fig.suptitle(f"Fold {fold}: training curves", fontsize=14)
    return fig


def plot_folds_overview(folds: Sequence[FoldState], scores: Sequence[tuple[str, str]] = HEADLINE) -> Figure:
    """Validation category accuracy and the chosen attribute F1 (the first two of ``scores``) per
    epoch, one line per fold."""
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (key, label) in zip(axes, scores[:2]):
        for state in folds:
            if state.metrics is not None and f"val/{key}" in state.metrics:
                ax.plot(state.metrics["epoch"], state.metrics[f"val/{key}"], "o-", ms=3, label=f"fold {state.fold}")
        _line_axes(ax, f"validation {label}", label)
        _legend_outside(ax)
    fig.suptitle("All folds: validation scores per epoch (no TTA, threshold 0.5)", fontsize=13)
    return fig


def plot_confusion(counts: np.ndarray, names: Sequence[str], title: str, xlabel: str, ylabel: str) -> Figure:
    """Rows = true class, colour = share of the row (recall), numbers = image counts."""
    n = len(names)
    side = float(np.clip(0.55 * n + 3.0, 5.5, 18.0))
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    support = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, support, out=np.zeros(counts.shape, dtype=float), where=support > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class (row)")
    ax.set_xticks(range(n), labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels=[f"{name} ({int(s)})" for name, s in zip(names, support[:, 0])])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + " (images)")
    ax.set_title(title)
    if n <= MAX_ANNOTATED_CLASSES:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=8,
                            color="white" if share[i, j] > 0.55 else "black")
    return fig


def plot_attribute_f1(labels: Sequence[str], series: dict[str, np.ndarray], notes: Sequence[str], title: str) -> Figure:
    """Horizontal bars per attribute, one per decoding in `series`; the last one's F1 and rule written beside."""
    n, k = len(labels), len(series)
    fig = Figure(figsize=(10, max(4.0, 0.34 * n + 2.0)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(n)
    height = 0.8 / k
    for j, ((label, values), colour) in enumerate(zip(series.items(), SERIES_COLOURS)):
        ax.barh(y + (j - (k - 1) / 2) * height, np.nan_to_num(values), height=height, color=colour, label=label)
    last = list(series.values())[-1]
    for yi, value, note in zip(y, last, notes):
        text = "—" if np.isnan(value) else f"{value:.2f}"
        ax.text(np.nan_to_num(value) + 0.01, yi + (k - 1) / 2 * height, f"{text}  {note}", va="center", fontsize=8)
    ax.set_yticks(y, labels=labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.25)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("F1 on out-of-fold predictions")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    _legend_outside(ax)
    return fig


def plot_group_scores(labels: Sequence[str], series: dict[str, np.ndarray], title: str) -> Figure:
    """Bars per group metric, one per decoding in `series`; the last one's values written on top."""
    n, k = len(labels), len(series)
    fig = Figure(figsize=(max(6.0, 1.1 * n + 2.0), 5), layout="constrained")
    ax = fig.subplots()
    x = np.arange(n)
    width = 0.8 / k
    for j, ((label, values), colour) in enumerate(zip(series.items(), SERIES_COLOURS)):
        bars = ax.bar(x + (j - (k - 1) / 2) * width, np.nan_to_num(values), width=width, color=colour, label=label)
    ax.bar_label(bars, labels=[_fmt(v) for v in values], fontsize=8, padding=2)
    ax.set_xticks(x, labels=labels, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("score on out-of-fold predictions")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title)
    _legend_outside(ax)
    return fig
