"""What the linear stage will cost on this machine, timed on a sample (for the budget plan)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.linear.features import array_features
from fashioncomp.linear.model import LinearModel

__all__ = ["LinearCost", "time_linear"]


@dataclass(frozen=True)
class LinearCost:
    feature_seconds: float  # per image
    fit_seconds: float      # per training row of one fit

    def stage_seconds(self, n_train: int, n_test: int, folds: int) -> float:
        """Features of every image, a fit per fold on its other folds' rows and one on every row:
        folds x n_train rows fitted in all."""
        return self.feature_seconds * (n_train + n_test) + self.fit_seconds * n_train * folds


def time_linear(images: Any, data: LabelledData, num_categories: int, c: float, attributes: bool = True,
                sample: int = 400, seed: int = 0) -> LinearCost:
    """Time the features and one fit (the attributes' models too if `attributes`) on `sample` random
    rows. A fit's time grows about linearly with its rows (each solver iteration passes over them once)."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(data))[:sample])
    started = time.perf_counter()
    features = array_features(images[int(i)] for i in rows)
    feature_seconds = (time.perf_counter() - started) / len(rows)
    started = time.perf_counter()
    LinearModel(num_categories, c=c, seed=seed, attributes=attributes).fit(features, data.subset(rows))
    return LinearCost(feature_seconds, (time.perf_counter() - started) / len(rows))
