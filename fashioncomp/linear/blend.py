"""How much of the linear model to blend into the networks' probabilities, chosen out of fold.

For each task the blend is (1 - w) x networks + w x linear model; w is the grid value (steps of
0.05 up to `max_weight`) with the best out-of-fold score: category accuracy for the category,
the recipe's attribute F1 (decoded at 0.5 and by group argmax, as before thresholds are tuned)
for the attributes. Ties go to the smaller weight, so a linear model that adds nothing gets 0.
A task not in `tasks` (linear.tasks) is not blended: its weight is 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.data.schema import AttributeGroup
from fashioncomp.metrics import attribute_f1_metric, category_accuracy
from fashioncomp.postprocessing.decode import decode_attributes

__all__ = ["TASKS", "BlendWeights", "choose_weights", "weight_grid", "weighted_blend"]

STEP = 0.05
TASKS = ("category", "attributes")


@dataclass(frozen=True)
class BlendWeights:
    category: float
    attributes: float
    # out-of-fold score at each weight tried, per task: {"category": {w: score}, "attributes": {...}}
    scores: dict[str, dict[float, float]]


def weight_grid(max_weight: float) -> list[float]:
    return [round(STEP * i, 2) for i in range(int(round(max_weight / STEP)) + 1)]


def weighted_blend(base: np.ndarray, other: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) x base + weight x other, as float32 (the linear model's blend, and the refit's)."""
    return ((1.0 - weight) * base + weight * other).astype(np.float32)


def _best(grid: Sequence[float], score: Callable[[float], float]) -> tuple[float, dict[float, float]]:
    scores = {w: float(score(w)) for w in grid}
    best = max(scores.values())
    return min(w for w, s in scores.items() if s >= best - 1e-12), scores


def choose_weights(data: LabelledData, net_category: np.ndarray, net_attributes: np.ndarray,
                   lin_category: np.ndarray, lin_attributes: np.ndarray, groups: Sequence[AttributeGroup],
                   attribute_f1: str, max_weight: float, tasks: Sequence[str] = TASKS) -> BlendWeights:
    """The weights for the out-of-fold rows `data` (networks' and linear model's probabilities of them)."""
    metric = attribute_f1_metric(attribute_f1)

    def grid(task: str) -> list[float]:
        return weight_grid(max_weight) if task in tasks else [0.0]

    w_cat, cat_scores = _best(grid("category"), lambda w: category_accuracy(
        data.categories, weighted_blend(net_category, lin_category, w).argmax(axis=1)))
    w_attr, attr_scores = _best(grid("attributes"), lambda w: metric(
        data.attributes, decode_attributes(weighted_blend(net_attributes, lin_attributes, w), 0.5, groups),
        data.attribute_known))
    return BlendWeights(w_cat, w_attr, {"category": cat_scores, "attributes": attr_scores})
