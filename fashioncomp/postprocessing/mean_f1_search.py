"""Thresholds for the competition's own metric: per-image attribute F1 averaged over images.

Per-attribute tuning (MCC or F1) scores each attribute on its own; the leaderboard scores each
image's whole attribute set, so one attribute's threshold moves the F1 of every image it
touches together with that image's other attributes. Coordinate ascent: for each attribute
decided by a threshold, in turn, try every grid value with the others held, decode exactly as
the submission will (group argmax, at-least-one rule) and keep the best; repeat for a few sweeps
or until nothing improves.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from fashioncomp.data.schema import AttributeGroup
from fashioncomp.metrics import attribute_mean_f1
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp.postprocessing.thresholds import DEFAULT_GRID

__all__ = ["refine_for_mean_f1"]


def refine_for_mean_f1(
    y_true: np.ndarray,
    proba: np.ndarray,
    start: np.ndarray,
    groups: Sequence[AttributeGroup] = (),
    at_least_one: bool = False,
    mask: np.ndarray | None = None,
    grid: np.ndarray | None = None,
    sweeps: int = 3,
) -> np.ndarray:
    """Per-attribute thresholds ``[A]`` that maximise attribute mean-F1, starting from ``start``.

    Attributes of multiclass groups are decoded by argmax and keep their start value. A move is
    kept only if it raises the score, so the result never scores below ``start``.
    """
    grid = DEFAULT_GRID if grid is None else np.unique(np.asarray(grid, dtype=np.float64).ravel())
    thresholds = np.array(start, dtype=np.float64)
    argmax = {i for g in groups if g.is_multiclass for i in g.indices}
    free = [j for j in range(thresholds.size) if j not in argmax]

    def score(thr: np.ndarray) -> float:
        pred = decode_attributes(proba, thr, groups, at_least_one=at_least_one)
        return attribute_mean_f1(y_true, pred, mask)

    best = score(thresholds)
    for _ in range(sweeps):
        improved = False
        for j in free:
            for t in grid:
                trial = thresholds.copy()
                trial[j] = t
                value = score(trial)
                if value > best + 1e-12:
                    best, thresholds, improved = value, trial, True
        if not improved:
            break
    return thresholds
