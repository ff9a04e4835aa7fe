"""Multilabel stratified k-fold over the one-hot category plus the attribute multi-hot."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fashioncomp.data.dataset_reader import DatasetError, LabelledData


def stratification_matrix(data: LabelledData, num_categories: int) -> np.ndarray:
    onehot = np.zeros((len(data), num_categories), dtype=np.uint8)
    known = data.categories >= 0
    onehot[np.flatnonzero(known), data.categories[known]] = 1
    return np.concatenate([onehot, data.attributes * data.attribute_known], axis=1)


def make_folds(data: LabelledData, num_categories: int, n_folds: int, seed: int) -> np.ndarray:
    """Fold id [N] for each row; deterministic for a given seed."""
    if n_folds < 2:
        raise DatasetError(f"split.n_folds must be at least 2, got {n_folds}")
    if len(data) < n_folds:
        raise DatasetError(f"train.csv has {len(data)} rows, fewer than split.n_folds={n_folds}")
    # imported here: only the split stage needs iterative-stratification; the pipeline module that
    # every stage imports (and so an inference kernel) starts without it
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    labels = stratification_matrix(data, num_categories)
    folds = np.full(len(data), -1, dtype=np.int64)
    splitter = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, val) in enumerate(splitter.split(np.zeros(len(data)), labels)):
        folds[val] = fold
    return folds


def fold_balance(data: LabelledData, folds: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Rows per fold and each label's share of positives per fold (for printing)."""
    labels = stratification_matrix(data, len(names) - data.attributes.shape[1])
    table = {"rows": [int((folds == f).sum()) for f in range(folds.max() + 1)]}
    for j, name in enumerate(names):
        table[name] = [int(labels[folds == f, j].sum()) for f in range(folds.max() + 1)]
    return pd.DataFrame(table, index=[f"fold {f}" for f in range(folds.max() + 1)])
