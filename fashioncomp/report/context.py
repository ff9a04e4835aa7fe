"""What the report reads from a run directory: fold states, OOF predictions and stage outputs.

Nothing here trains or predicts; whatever a stage has not written yet is noted in
`ReportContext.missing` for the summary to list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.errors import UserError
from fashioncomp.io import read_json, read_npz, write_atomic
from fashioncomp.metrics import score_all
from fashioncomp import stamps
from fashioncomp.pipeline import Run
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp.training.checkpoint import load_checkpoint

FIGURE_DIR = "report"
DPI = 110
MAX_BARS_PER_FIGURE = 40       # attributes per bar chart; more go to further figures


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
    """Everything the sections read, plus the figures they have written so far."""

    run: Run
    figure_dir: Path
    folds: list[FoldState]
    oof: OOF | None
    oof_scores: dict[str, Any] | None
    thresholds: dict[str, Any] | None
    test_probs: dict[str, np.ndarray] | None
    missing: list[str] = field(default_factory=list)
    linear: dict[str, Any] | None = None  # linear.json, when the recipe blends the linear model (linear.enabled)
    figures: list[Path] = field(default_factory=list)
    # write_report sets this from `fashioncomp.report.MAX_BARS_PER_FIGURE`, so that name stays the knob
    max_bars_per_figure: int = MAX_BARS_PER_FIGURE

    def save(self, fig: Figure, name: str) -> str:
        """Write a figure atomically; return its link relative to report.md."""
        path = self.figure_dir / name
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
        self.figures.append(path)
        return f"{FIGURE_DIR}/{name}"


def _command(run: Run, stage: str, extra: str = "") -> str:
    """The command line that runs `stage` on `run`, in backticks."""
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
    labels = _load_labels(run, missing)
    if labels is None:
        return None
    trained = [k for k in range(run.n_folds) if (run.fold_dir(k) / "best.pt").is_file()]
    recorded = stamps.recorded_inputs(run.stamp("oof"))
    now = run.checkpoint_digests(trained)
    stale = {k for k in trained if recorded.get(f"fold_{k}/best.pt") != now[f"fold_{k}/best.pt"]}
    if stale:
        missing.append(f"`oof.npz` was not made from the current {', '.join(f'fold_{k}/best.pt' for k in sorted(stale))}: "
                       f"the OOF numbers describe earlier checkpoints (rerun {_command(run, 'oof')})")
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
                                               run.schema.groups, sub.attribute_known, run.attribute_metric)
    return result


def _load_optional_json(run: Run, name: str, stage: str, missing: list[str], what: str) -> dict[str, Any] | None:
    path = run.dir / name
    if path.is_file():
        recorded = stamps.recorded_inputs(run.stamp(stage)).get("oof.npz")
        if recorded is not None and recorded != stamps.digest_file(run.dir / "oof.npz"):
            missing.append(f"`{name}` was not made from the current `oof.npz` (rerun {_command(run, stage)})")
        return read_json(path)
    missing.append(f"`{name}`: not written yet (run {_command(run, stage)}); {what}")
    return None


def load_context(run_dir: Path | str) -> ReportContext:
    """Read what the stages of `run_dir` wrote so far; note each missing or stale piece."""
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
    linear = _load_optional_json(run, "linear.json", "linear", missing, "no linear model blended in") \
        if run.config["linear"]["enabled"] else None
    return ReportContext(run, run.dir / FIGURE_DIR, folds, oof, oof_scores, thresholds, test_probs, missing, linear=linear)


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
