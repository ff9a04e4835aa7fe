"""python -m fashioncomp.report --run runs/<name>

Write `runs/<name>/report.md` with figures in `runs/<name>/report/`: a summary of the CV scores,
the gains from threshold tuning, TTA and the fold ensemble, training curves per fold, the
category confusion matrix, per-attribute F1 with the chosen thresholds and per-group scores.

The report only reads what the stages wrote (and the labels in train.csv); it never trains or
predicts, so it is cheap to rerun and works on a partial run, saying what is missing.

How the TTA gain is measured without predicting again: training scores each epoch on the
held-out fold without TTA at threshold 0.5, and `best.pt` keeps those scores for the saved
model. The oof stage predicts exactly those rows with that model *with* TTA. Scoring each fold's
OOF rows the same way (threshold 0.5) and comparing gives the TTA gain per fold.
"""
from __future__ import annotations

import argparse
import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fashioncomp.cli import run_cli
from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.errors import UserError
from fashioncomp.io import read_json, read_npz, write_atomic, write_text
from fashioncomp.metrics import per_attribute_f1, score_all
from fashioncomp.pipeline import Run, is_fresh
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp.training.checkpoint import load_checkpoint

FIGURE_DIR = "report"
DPI = 110
MAX_BARS_PER_FIGURE = 40       # attributes per bar chart; more go to further figures
MAX_ANNOTATED_CLASSES = 25     # confusion matrices write the counts in the cells up to this size
HEADLINE = (("category_accuracy", "category accuracy"), ("attribute_mean_f1", "attribute mean-F1"),
            ("attribute_macro_f1", "attribute macro-F1"), ("score", "score (mean of the two above)"))


# ------------------------------------------------------------------------------------ inputs


@dataclass
class FoldState:
    """What one fold directory holds."""

    fold: int
    metrics: pd.DataFrame | None      # metrics.csv, one row per finished epoch
    done: bool                        # done.json: training finished
    has_best: bool                    # best.pt exists
    best_epoch: int | None            # 1-based epoch of best.pt
    best_metrics: dict[str, float] | None  # scores of best.pt on its fold (no TTA, threshold 0.5)


@dataclass
class OOF:
    """Out-of-fold probabilities on the rows a trained fold covers, with their labels."""

    labels: LabelledData
    category: np.ndarray               # [n, C]
    attributes: np.ndarray             # [n, A]
    fold: np.ndarray                   # [n]
    total_rows: int
    stale_folds: set[int]              # folds whose best.pt is newer than oof.npz
    per_fold: dict[int, dict[str, float]] = field(default_factory=dict)  # each fold's rows, threshold 0.5


@dataclass
class ReportContext:
    run: Run
    figure_dir: Path
    folds: list[FoldState]
    oof: OOF | None
    oof_scores: dict[str, Any] | None
    thresholds: dict[str, Any] | None
    test_probs: dict[str, np.ndarray] | None
    missing: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    def save(self, fig: Figure, name: str) -> str:
        """Write a figure atomically; return its link relative to report.md."""
        path = self.figure_dir / name
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
        self.figures.append(path)
        return f"{FIGURE_DIR}/{name}"


def _command(run: Run, stage: str, extra: str = "") -> str:
    return f"`python -m fashioncomp {stage} --run {run.dir}{extra}`"


def _load_fold(run: Run, fold: int) -> FoldState:
    fold_dir = run.fold_dir(fold)
    metrics = pd.read_csv(fold_dir / "metrics.csv") if (fold_dir / "metrics.csv").is_file() else None
    best_epoch, best_metrics = None, None
    if (fold_dir / "best.pt").is_file():
        state = load_checkpoint(fold_dir / "best.pt")
        best_epoch = int(state["epoch"]) + 1 if "epoch" in state else None
        best_metrics = state.get("metrics")
    return FoldState(fold, metrics, (fold_dir / "done.json").is_file(), (fold_dir / "best.pt").is_file(),
                     best_epoch, best_metrics)


def _load_labels(run: Run, missing: list[str]) -> LabelledData | None:
    try:
        return run.train_data()
    except UserError as exc:
        missing.append(f"labels: {exc} (confusion matrices and per-attribute F1 at 0.5 need train.csv)")
        return None


def _load_oof(run: Run, missing: list[str]) -> OOF | None:
    path = run.dir / "oof.npz"
    if not path.is_file():
        missing.append(f"`oof.npz`: not written yet (run {_command(run, 'oof')}); no CV scores, "
                       "confusion matrix or per-attribute F1")
        return None
    stale = {k for k in range(run.n_folds)
             if (run.fold_dir(k) / "best.pt").is_file() and not is_fresh([path], [run.fold_dir(k) / "best.pt"])}
    if stale:
        missing.append(f"`oof.npz` is older than {', '.join(f'fold_{k}/best.pt' for k in sorted(stale))}: the OOF "
                       f"numbers describe earlier checkpoints (rerun {_command(run, 'oof')})")
    labels = _load_labels(run, missing)
    if labels is None:
        return None
    oof = read_npz(path)
    if list(oof["file_path"]) != labels.file_paths:
        missing.append(f"`oof.npz` rows do not match {run.data_root / 'train.csv'} (rerun {_command(run, 'oof', ' --force')})")
        return None
    covered = np.flatnonzero(~np.isnan(oof["category"][:, 0]))
    if covered.size < len(labels):
        missing.append(f"OOF covers {covered.size} of {len(labels)} training images (not every fold was "
                       "trained when the oof stage ran)")
    result = OOF(labels.subset(covered), oof["category"][covered], oof["attributes"][covered], oof["fold"][covered],
                 len(labels), stale)
    for fold in np.unique(result.fold):
        rows = np.flatnonzero(result.fold == fold)
        sub = result.labels.subset(rows)
        pred = decode_attributes(result.attributes[rows], 0.5, run.decode_groups)  # as the oof stage scores
        result.per_fold[int(fold)] = score_all(sub.categories, result.category[rows], sub.attributes, pred,
                                               run.schema.groups, sub.attribute_known)
    return result


def _load_optional_json(run: Run, name: str, stage: str, missing: list[str], what: str) -> dict[str, Any] | None:
    path = run.dir / name
    if path.is_file():
        if not is_fresh([path], [run.dir / "oof.npz"]):
            missing.append(f"`{name}` is older than `oof.npz` (rerun {_command(run, stage)})")
        return read_json(path)
    missing.append(f"`{name}`: not written yet (run {_command(run, stage)}); {what}")
    return None


def load_context(run_dir: Path | str) -> ReportContext:
    run = Run(run_dir)
    missing: list[str] = []
    folds = [_load_fold(run, k) for k in range(run.n_folds)]
    for state in folds:
        if state.metrics is None:
            missing.append(f"fold {state.fold}: not trained (run {_command(run, 'train', f' --folds {state.fold}')})")
        elif not state.done:
            missing.append(f"fold {state.fold}: training not finished ({len(state.metrics)} epoch(s) so far)")
    oof = _load_oof(run, missing)
    oof_scores = _load_optional_json(run, "oof_scores.json", "oof", missing, "no OOF scores at threshold 0.5") \
        if oof is not None else None
    thresholds = _load_optional_json(run, "thresholds.json", "thresholds", missing,
                                     "no tuned thresholds, so no tuned scores or tuning gain")
    test_probs = None
    if (run.dir / "test_probs.npz").is_file():
        test_probs = read_npz(run.dir / "test_probs.npz")
    else:
        missing.append(f"`test_probs.npz`: not written yet (run {_command(run, 'predict')}); no test-set summary")
    return ReportContext(run, run.dir / FIGURE_DIR, folds, oof, oof_scores, thresholds, test_probs, missing)


# ------------------------------------------------------------------------------------ scoring


def _decoded(ctx: ReportContext, proba: np.ndarray, tuned: bool) -> np.ndarray:
    """Attribute predictions as the pipeline makes them: at 0.5 (oof stage) or tuned (submission)."""
    if not tuned:
        return decode_attributes(proba, 0.5, ctx.run.decode_groups)
    return decode_attributes(proba, np.asarray(ctx.thresholds["thresholds"]), ctx.run.decode_groups,
                             at_least_one=ctx.thresholds["at_least_one"])


def _oof_fold_scores(ctx: ReportContext, fold: int) -> dict[str, float] | None:
    """Scores of one fold's OOF rows (its model, with TTA) at threshold 0.5; None if it has none."""
    return ctx.oof.per_fold.get(fold) if ctx.oof is not None else None


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return _fmt(v) if v is None or isinstance(v, (float, np.floating)) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _image(link: str, alt: str) -> str:
    return f"![{alt}]({link})"


def _attribute_label(ctx: ReportContext, index: int) -> str:
    group = next((g.name for g in ctx.run.schema.groups if index in g.indices), None)
    name = ctx.run.schema.attributes[index]
    return f"{name} ({group})" if group else name


# ------------------------------------------------------------------------------------ figures


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


def plot_fold_curves(frame: pd.DataFrame, fold: int, best_epoch: int | None, group_names: Sequence[str]) -> Figure:
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
    for key, label in HEADLINE:
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


def plot_folds_overview(folds: Sequence[FoldState]) -> Figure:
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (key, label) in zip(axes, HEADLINE[:2]):
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


SERIES_COLOURS = ("#bbbbbb", "tab:blue")  # threshold 0.5, tuned thresholds


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


# ------------------------------------------------------------------------------------ sections


def section_summary(ctx: ReportContext) -> str:
    run = ctx.run
    tuned = ctx.thresholds["oof_scores_tuned"] if ctx.thresholds else {}
    half = ctx.oof_scores or {}
    rows = [(label, half.get(key), tuned.get(key)) for key, label in HEADLINE]
    trained = [s.fold for s in ctx.folds if s.has_best]
    lines = [
        "## Summary", "",
        "Cross-validated scores on out-of-fold (OOF) predictions: every training image predicted by "
        "the one fold model that did not train on it (with the configured TTA).", "",
        _table(["metric", "OOF, threshold 0.5", "OOF, tuned thresholds"], rows), "",
        f"- data: `{run.data_root}`; {run.schema.num_categories} categories, {run.schema.num_attributes} "
        f"attributes, {len(run.schema.groups)} attribute groups",
        f"- model: `{run.config['model']['backbone']}` at {run.config['data']['image_size']} px, "
        f"TTA {list(run.config['predict']['tta'])}, thresholds tuned on {run.config['thresholds']['metric']}",
        f"- folds with a `best.pt`: {len(trained)} of {run.n_folds}"
        + (f" (fold {', '.join(map(str, trained))})" if 0 < len(trained) < run.n_folds else ""),
    ]
    if ctx.oof is not None:
        lines.append(f"- OOF rows: {len(ctx.oof.labels)} of {ctx.oof.total_rows}")
    if ctx.test_probs is not None:
        lines.append(f"- test predictions: {len(ctx.test_probs['file_path'])} images, mean of "
                     f"{len(ctx.test_probs['folds'])} fold model(s)")
    if ctx.missing:
        lines += ["", "**Missing or incomplete** (the sections below use what exists):", ""]
        lines += [f"- {item}" for item in ctx.missing]
    return "\n".join(lines)


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
    for key, label in HEADLINE[:3]:
        without = float(np.mean([p[1][key] for p in pairs]))
        with_tta = float(np.mean([p[2][key] for p in pairs]))
        rows.append([name, label, _fmt(without), _fmt(with_tta), _fmt(with_tta - without, signed=True), how])
    per_fold = _table(["fold", "category accuracy without → with TTA", "attribute mean-F1 without → with TTA"],
                      [[k, f"{w['category_accuracy']:.4f} → {t['category_accuracy']:.4f}",
                        f"{w['attribute_mean_f1']:.4f} → {t['attribute_mean_f1']:.4f}"] for k, w, t in pairs])
    return rows, per_fold


def section_gains(ctx: ReportContext) -> str:
    header = ["step", "metric", "without", "with", "gain", "how measured"]
    rows: list[list[Any]] = []
    if ctx.thresholds and ctx.oof_scores:
        t = ctx.thresholds
        argmax = len(t["decoded_by_group_argmax"])
        how = f"pooled OOF, {t['metric']}-tuned thresholds" + (
            "; no effect: every attribute is decoded by its multiclass group's argmax"
            if argmax == ctx.run.schema.num_attributes and not t["at_least_one"]
            else " (multiclass groups keep their argmax)" if argmax else "")
        rows.append(["threshold tuning", "attribute mean-F1", _fmt(t["oof_mean_f1_at_0.5"]), _fmt(t["oof_mean_f1_tuned"]),
                     _fmt(t["oof_mean_f1_tuned"] - t["oof_mean_f1_at_0.5"], signed=True), how])
        half, tuned = ctx.oof_scores["attribute_macro_f1"], t["oof_scores_tuned"]["attribute_macro_f1"]
        rows.append(["threshold tuning", "attribute macro-F1", _fmt(half), _fmt(tuned), _fmt(tuned - half, signed=True), how])
    else:
        rows.append(["threshold tuning", "—", "—", "—", "—", "not measured: needs oof_scores.json and thresholds.json"])
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


def section_folds(ctx: ReportContext) -> str:
    rows = []
    for s in ctx.folds:
        status = "done" if s.done else ("training" if s.metrics is not None else "not trained")
        epochs = len(s.metrics) if s.metrics is not None else 0
        best = s.best_metrics or {}
        oof = _oof_fold_scores(ctx, s.fold) or {}
        rows.append([s.fold, status, epochs, s.best_epoch or "—", best.get("category_accuracy"),
                     best.get("attribute_mean_f1"), best.get("score"), oof.get("category_accuracy"),
                     oof.get("attribute_mean_f1"), oof.get("score")])
    lines = ["## Folds", "",
             "`best.pt` columns: scores logged in training (no TTA, threshold 0.5). OOF columns: the same rows "
             "from `oof.npz` (with TTA, threshold 0.5).", "",
             _table(["fold", "status", "epochs", "best epoch", "best.pt cat. acc.", "best.pt mean-F1", "best.pt score",
                     "OOF cat. acc.", "OOF mean-F1", "OOF score"], rows)]
    trained = [s for s in ctx.folds if s.metrics is not None and len(s.metrics)]
    if not trained:
        return "\n".join(lines + ["", "No fold has finished an epoch yet: no curves."])
    lines += ["", "### Training curves", "", _image(ctx.save(plot_folds_overview(trained), "folds_overview.png"),
                                                     "validation scores of every fold")]
    group_names = [g.name for g in ctx.run.schema.groups]
    for s in trained:
        link = ctx.save(plot_fold_curves(s.metrics, s.fold, s.best_epoch, group_names), f"fold_{s.fold}_curves.png")
        lines += ["", _image(link, f"fold {s.fold} training curves")]
    return "\n".join(lines)


def section_confusion(ctx: ReportContext) -> str:
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


def _decision_notes(ctx: ReportContext) -> list[str]:
    """How each attribute is decided in the submission (tuned) or, without thresholds.json, at 0.5."""
    argmax = {i for g in ctx.run.decode_groups for i in g.indices}
    t = ctx.thresholds
    if t is None:
        return ["argmax (group)" if i in argmax else "t=0.50" for i in range(ctx.run.schema.num_attributes)]
    return ["argmax (group)" if i in argmax else (f"t={thr:.2f} (global)" if fallback else f"t={thr:.2f}")
            for i, (thr, fallback) in enumerate(zip(t["thresholds"], t["fallback"]))]


def section_attributes(ctx: ReportContext) -> str:
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
        lines.append(f"Decoding: per-attribute thresholds tuned on OOF ({t['metric']}); attributes with too few "
                     f"positives use the global threshold {t['global_threshold']:.2f}"
                     + ("; attributes of multiclass groups are decoded by the group's argmax (thresholds unused)"
                        if t["decoded_by_group_argmax"] else "")
                     + ("; every image gets at least one attribute." if t["at_least_one"] else "."))
    notes = _decision_notes(ctx)
    names = [_attribute_label(ctx, i) for i in range(ctx.run.schema.num_attributes)]
    positives = (labels.attributes.astype(bool) & labels.attribute_known).sum(axis=0)
    known = labels.attribute_known.sum(axis=0)
    n = len(names)
    # as few figures as the limit allows, equally long
    chunks = [list(c) for c in np.array_split(np.arange(n), -(-n // MAX_BARS_PER_FIGURE))]
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


def _group_class(x: np.ndarray) -> np.ndarray:
    """Class within a multiclass group: first positive member, or len(members) for "none"."""
    return np.where(x.any(axis=1), x.argmax(axis=1), x.shape[1])


GROUP_METRICS = {"accuracy": "mean class accuracy", "f1": "macro-F1", "mean_f1": "mean-F1"}


def section_groups(ctx: ReportContext) -> str:
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


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


SECTIONS: tuple[Callable[[ReportContext], str], ...] = (
    section_summary, section_gains, section_folds, section_confusion, section_attributes, section_groups,
)


# ------------------------------------------------------------------------------------ entry points


def write_report(run_dir: Path | str) -> Path:
    """Write `<run_dir>/report.md` and its figures in `<run_dir>/report/`; return the report's path."""
    ctx = load_context(run_dir)
    ctx.figure_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [f"# Report: {ctx.run.name}", "", f"Run directory `{ctx.run.dir}`, generated {stamp} by "
             "`python -m fashioncomp.report`."]
    parts += ["\n" + section(ctx) for section in SECTIONS]
    # figures of an earlier report that this one did not draw (e.g. a fold since removed) would mislead
    for stale in set(ctx.figure_dir.glob("*.png")) - set(ctx.figures):
        stale.unlink()
    return write_text(ctx.run.dir / "report.md", "\n".join(parts) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory, e.g. runs/default")
    args = parser.parse_args(argv)
    return run_cli(lambda: print(f"report: {write_report(args.run)}"))


if __name__ == "__main__":
    raise SystemExit(main())
