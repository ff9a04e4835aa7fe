"""Per-attribute decision thresholds tuned on held-out probabilities.

Every grid threshold is evaluated at once: each probability is binned by how many grid values
it reaches (``proba >= t``), one ``bincount`` gives per-bin counts, and reverse cumulative sums
turn them into tp/fp/fn/tn at every threshold. Cost is O(N*A + A*G) with no [G, N, A] array.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fashioncomp.metrics import DEFAULT_ATTRIBUTE_F1, attribute_f1_metric

__all__ = ["ThresholdResult", "DEFAULT_GRID", "tune_thresholds"]

# Rounded so that grid values are the doubles nearest to 0.05, 0.06, ... (0.3 == 0.3 exactly).
DEFAULT_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
METRICS = ("mcc", "f1")
_TIE_TOL = 1e-12


@dataclass
class ThresholdResult:
    """Outcome of ``tune_thresholds``.

    thresholds: ``[A]`` threshold per attribute (``proba >= threshold`` is positive).
    global_threshold: the single threshold maximising the chosen attribute F1 over all attributes.
    fallback: ``[A]`` bool, True where the attribute had too few positives and got the global one.
    per_attribute_score: ``[A]`` the tuning metric of each attribute at its chosen threshold.
    """

    thresholds: np.ndarray
    global_threshold: float
    fallback: np.ndarray
    per_attribute_score: np.ndarray


def _suffix_counts(bins: np.ndarray, group: np.ndarray, weights: np.ndarray, n_groups: int, n_grid: int) -> np.ndarray:
    """``out[g, j]`` = sum of weights in group g whose probability reaches grid[j] (bin > j)."""
    idx = group * (n_grid + 1) + bins
    hist = np.bincount(idx.ravel(), weights=weights.ravel(), minlength=n_groups * (n_grid + 1))
    hist = hist.reshape(n_groups, n_grid + 1)
    suffix = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # suffix[:, k] = sum over bins >= k
    return suffix[:, 1:]


def _pick(scores: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Index of the best grid value per row; ties go to the threshold closest to 0.5."""
    best = scores.max(axis=-1, keepdims=True)
    dist = np.where(scores >= best - _TIE_TOL, np.abs(grid - 0.5), np.inf)
    return dist.argmin(axis=-1)  # equal distances: the lower threshold (grid is sorted)


def tune_thresholds(
    y_true: np.ndarray,
    proba: np.ndarray,
    metric: str = "mcc",
    min_positives: int = 10,
    grid: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    attribute_f1: str = DEFAULT_ATTRIBUTE_F1,
) -> ThresholdResult:
    """Choose a threshold per attribute that maximises ``metric`` ('mcc' or 'f1') on known rows.

    ``y_true`` 0/1 ``[N, A]``, ``proba`` ``[N, A]``, ``mask`` bool ``[N, A]`` (True = known).
    ``grid`` defaults to 0.05..0.95 step 0.01. Attributes with fewer than ``min_positives``
    known positives are unreliable to tune alone and get the global threshold instead: the one
    threshold shared by all attributes that maximises the attribute F1 named ``attribute_f1``
    over the whole matrix (see ``fashioncomp.metrics.ATTRIBUTE_F1``). Ties go to the threshold
    closest to 0.5.
    """
    chosen = attribute_f1_metric(attribute_f1)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if y.ndim != 2 or y.shape != p.shape:
        raise ValueError(f"y_true {y.shape} and proba {p.shape} must be equal [N, A] shapes")
    known = np.ones(y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if known.shape != y.shape:
        raise ValueError(f"mask {known.shape} must have the shape of y_true {y.shape}")
    grid = DEFAULT_GRID if grid is None else np.unique(np.asarray(grid, dtype=np.float64).ravel())
    if grid.size == 0:
        raise ValueError("grid is empty")

    n, a = y.shape
    g = grid.size
    pos = (y > 0) & known
    kw = known.astype(np.float64)
    pw = pos.astype(np.float64)
    # bins[i, j] = number of grid values <= proba, so "predicted at grid[k]" <=> bins > k.
    bins = np.searchsorted(grid, p, side="right")

    # Global threshold: the chosen F1's per-unit counts (image, attribute or all) at every grid value.
    units, n_units = chosen.units((n, a))
    unit_tp = _suffix_counts(bins, units, pw, n_units, g)      # [U, G]
    unit_pred = _suffix_counts(bins, units, kw, n_units, g)    # [U, G]
    unit_true = np.bincount(units.ravel(), weights=pw.ravel(), minlength=n_units)[:, None]
    scored = np.bincount(units.ravel(), weights=kw.ravel(), minlength=n_units) > 0
    curve = chosen.from_counts(unit_tp, unit_pred, unit_true, scored) if scored.any() else np.zeros(g)
    global_idx = int(_pick(curve, grid))

    # Per-attribute confusion counts at every grid value.
    cols = np.broadcast_to(np.arange(a)[None, :], (n, a))
    tp = _suffix_counts(bins, cols, pw, a, g)          # [A, G]
    n_pred = _suffix_counts(bins, cols, kw, a, g)
    n_pos = pw.sum(axis=0)[:, None]
    n_known = kw.sum(axis=0)[:, None]
    fp = n_pred - tp
    fn = n_pos - tp
    tn = n_known - n_pos - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "f1":
            d = 2 * tp + fp + fn
            scores = np.where(d > 0, 2 * tp / np.where(d > 0, d, 1), 0.0)
        else:
            d = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
            scores = np.where(d > 0, (tp * tn - fp * fn) / np.sqrt(np.where(d > 0, d, 1)), 0.0)

    idx = _pick(scores, grid) if a else np.zeros(0, dtype=int)
    fallback = n_pos[:, 0] < min_positives
    idx = np.where(fallback, global_idx, idx)
    return ThresholdResult(
        thresholds=grid[idx],
        global_threshold=float(grid[global_idx]),
        fallback=fallback,
        per_attribute_score=scores[np.arange(a), idx],
    )
