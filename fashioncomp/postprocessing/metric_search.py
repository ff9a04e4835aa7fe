"""Thresholds for the leaderboard's attribute F1 (``metrics.attribute_f1``), decoded as the submission is.

Per-attribute tuning (MCC or F1) scores each attribute on its own; the leaderboard's F1 may not:
under ``samples`` one attribute's threshold moves the F1 of every image it touches together with
that image's other attributes, under ``micro`` every decision shares one pool, and the
at-least-one rule couples all attributes of an image. Coordinate ascent from the per-attribute
thresholds: for each attribute decided by a threshold, in turn, score every grid value with the
others held, decoding exactly as the submission will (group argmax, at-least-one rule), and move
only if the metric rises; sweep until nothing moves.

One attribute's whole grid is scored at once from counts: moving its threshold changes only its
own column and, under the at-least-one rule, the forced attribute of the images it leaves empty,
so the per-unit counts (image, attribute or all, see ``fashioncomp.metrics.AttributeF1``) of the
other columns are summed once and each grid value adds its own. Cost O(N*A + N*G) per attribute.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from fashioncomp.data.schema import AttributeGroup
from fashioncomp.metrics import DEFAULT_ATTRIBUTE_F1, AttributeF1, attribute_f1_metric
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp.postprocessing.thresholds import _TIE_TOL, DEFAULT_GRID

__all__ = ["Decoding", "choose_decoding", "refine_thresholds", "score_decoding"]


def score_decoding(y_true: np.ndarray, proba: np.ndarray, thresholds: np.ndarray | float,
                   metric: str = DEFAULT_ATTRIBUTE_F1, groups: Sequence[AttributeGroup] = (),
                   at_least_one: bool = False, mask: np.ndarray | None = None) -> float:
    """The attribute F1 named ``metric`` of ``proba`` decoded as the submission decodes it."""
    pred = decode_attributes(proba, thresholds, groups, at_least_one=at_least_one)
    return attribute_f1_metric(metric)(y_true, pred, mask)


class _ColumnScores:
    """Scores every candidate threshold of one attribute at once, the other columns held."""

    def __init__(self, y_true: np.ndarray, proba: np.ndarray, metric: AttributeF1, at_least_one: bool,
                 mask: np.ndarray | None) -> None:
        self.proba = proba
        self.known = np.ones(proba.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.true = (np.asarray(y_true) > 0) & self.known
        self.metric = metric
        self.units, self.n_units = metric.units(proba.shape)
        self.unit_true = self._per_unit(self.true)
        self.scored = self._per_unit(self.known) > 0
        rows = np.arange(proba.shape[0])
        # the at-least-one rule's attribute per image, as decode_attributes picks it
        self.forced = proba.argmax(axis=1) if at_least_one and proba.shape[1] else None
        if self.forced is not None:
            self.forced_unit = self.units[rows, self.forced]
            self.forced_true = self.true[rows, self.forced].astype(np.float64)
            self.forced_known = self.known[rows, self.forced].astype(np.float64)

    def _per_unit(self, cells: np.ndarray) -> np.ndarray:
        return np.atleast_1d(np.count_nonzero(cells, axis=self.metric.axis)).astype(np.float64)

    def _add(self, unit: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``[U, G]`` sums of ``weights [N, G]`` by the unit of each row."""
        if self.metric.axis == 1:  # the units are the rows themselves
            return weights
        g = weights.shape[1]
        index = unit[:, None] * g + np.arange(g)
        return np.bincount(index.ravel(), weights=weights.ravel(), minlength=self.n_units * g).reshape(self.n_units, g)

    def __call__(self, decoded: np.ndarray, j: int, candidates: np.ndarray) -> np.ndarray:
        """Metric ``[G]`` with attribute ``j`` at each candidate; ``decoded`` is the rest without the rule."""
        others = decoded.copy()
        others[:, j] = False
        base_tp = self._per_unit(others & self.true)[:, None]
        base_pred = self._per_unit(others & self.known)[:, None]
        col = self.proba[:, j, None] >= candidates[None, :]                        # [N, G]
        if self.forced is not None:
            empty = ~others.any(axis=1)
            col = col | (empty & (self.forced == j))[:, None]  # the rule picks j itself
            extra = (empty & (self.forced != j))[:, None] & ~col                    # the rule picks another
            base_tp = base_tp + self._add(self.forced_unit, extra * self.forced_true[:, None])
            base_pred = base_pred + self._add(self.forced_unit, extra * self.forced_known[:, None])
        unit = self.units[:, j]
        tp = base_tp + self._add(unit, col * self.true[:, j, None])
        pred = base_pred + self._add(unit, col * self.known[:, j, None])
        return self.metric.from_counts(tp, pred, self.unit_true[:, None], self.scored)


def refine_thresholds(
    y_true: np.ndarray,
    proba: np.ndarray,
    start: np.ndarray,
    metric: str = DEFAULT_ATTRIBUTE_F1,
    groups: Sequence[AttributeGroup] = (),
    at_least_one: bool = False,
    mask: np.ndarray | None = None,
    grid: np.ndarray | None = None,
    max_sweeps: int = 20,
) -> np.ndarray:
    """Per-attribute thresholds ``[A]`` that maximise the attribute F1 ``metric``, starting from ``start``.

    Coordinate ascent runs from ``start`` and from the best single threshold shared by every
    attribute; the better end point is kept (a tie keeps the one from ``start``). The second start
    costs one more ascent and escapes most of the local optima the attributes' interplay (per-image
    F1, pooled counts, the at-least-one rule) leaves the first in. Attributes of multiclass groups
    are decoded by argmax and keep their start value. A move is kept only if it raises the score,
    and the result is checked against ``start`` by decoding both, so it never scores below
    ``start`` on the data it is tuned on.
    """
    chosen = attribute_f1_metric(metric)
    proba = np.asarray(proba, dtype=np.float64)
    grid = DEFAULT_GRID if grid is None else np.unique(np.asarray(grid, dtype=np.float64).ravel())
    start = np.array(np.broadcast_to(np.asarray(start, dtype=np.float64), (proba.shape[1],)))
    argmax = {i for g in groups if g.is_multiclass for i in g.indices}
    free = np.array([j for j in range(start.size) if j not in argmax], dtype=int)
    column_scores = _ColumnScores(y_true, proba, chosen, at_least_one, mask)

    def score(thr: np.ndarray) -> float:
        return score_decoding(y_true, proba, thr, metric, groups, at_least_one, mask)

    def ascend(thresholds: np.ndarray) -> np.ndarray:
        thresholds = thresholds.copy()
        decoded = decode_attributes(proba, thresholds, groups)  # without the rule: the scorer applies it
        for _ in range(max_sweeps):
            moved = False
            for j in free:
                scores = column_scores(decoded, j, np.append(grid, thresholds[j]))
                if scores.max() > scores[-1] + _TIE_TOL:  # the last candidate is the current threshold
                    # ties go to the lowest grid value (as an ascending scan keeping strict gains finds it)
                    thresholds[j] = grid[np.argmax(scores[:-1] >= scores.max() - _TIE_TOL)]
                    decoded[:, j] = proba[:, j] >= thresholds[j]
                    moved = True
            if not moved:
                break
        return thresholds

    def shared(value: float) -> np.ndarray:
        thresholds = start.copy()
        thresholds[free] = value
        return thresholds

    shared_scores = np.array([score(shared(value)) for value in grid]) if free.size else np.zeros(1)
    ends = [ascend(start)]
    if free.size and not np.isnan(shared_scores).all():
        ends.append(ascend(shared(grid[int(np.nanargmax(shared_scores))])))
    end_scores = [score(end) for end in ends]
    best = ends[int(np.argmax(end_scores))] if not np.isnan(end_scores).all() else ends[0]
    # counts and decoding agree to rounding; this keeps "never below start" exact
    return best if not score(best) < score(start) else start


@dataclass
class Decoding:
    """Thresholds and at-least-one rule chosen for the attribute F1 ``metric`` on tuning data."""

    metric: str
    thresholds: np.ndarray
    at_least_one: bool
    score: float                 # the metric with these thresholds and rule
    start_score: float           # the metric with the start thresholds and the chosen rule
    rule_scores: dict[bool, float] = field(default_factory=dict)  # each rule considered, after refinement


def choose_decoding(
    y_true: np.ndarray,
    proba: np.ndarray,
    start: np.ndarray,
    metric: str = DEFAULT_ATTRIBUTE_F1,
    groups: Sequence[AttributeGroup] = (),
    rules: Sequence[bool] = (False,),
    mask: np.ndarray | None = None,
    grid: np.ndarray | None = None,
) -> Decoding:
    """Refine ``start`` under each at-least-one rule in ``rules`` and keep the better one.

    With both rules, the rule is kept only if it does not lower the metric (a tie keeps it).
    """
    if not rules:
        raise ValueError("rules must name at least one at-least-one setting")
    refined = {rule: refine_thresholds(y_true, proba, start, metric, groups, rule, mask, grid) for rule in rules}
    scores = {rule: score_decoding(y_true, proba, thr, metric, groups, rule, mask) for rule, thr in refined.items()}
    rule = next(iter(scores)) if len(scores) == 1 else not scores[True] < scores[False]
    return Decoding(metric, refined[rule], rule, scores[rule],
                    score_decoding(y_true, proba, start, metric, groups, rule, mask), scores)
