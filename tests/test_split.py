import numpy as np

from fashioncomp.data.dataset_reader import read_train
from fashioncomp.data.split import make_folds, stratification_matrix


def test_folds_are_deterministic_and_cover_every_row(tiny_dataset):
    data, schema = read_train(tiny_dataset)
    a = make_folds(data, schema.num_categories, 4, seed=7)
    b = make_folds(data, schema.num_categories, 4, seed=7)
    c = make_folds(data, schema.num_categories, 4, seed=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sorted(set(a.tolist())) == [0, 1, 2, 3]
    assert np.bincount(a).min() >= 0.8 * len(data) / 4  # iterative stratification trades exact sizes for balance


def test_folds_are_stratified_better_than_random(tiny_dataset):
    data, schema = read_train(tiny_dataset)
    labels = stratification_matrix(data, schema.num_categories).astype(float)
    expected = labels.mean(axis=0)

    def imbalance(folds):
        return sum(np.abs(labels[folds == f].mean(axis=0) - expected).sum() for f in range(4))

    stratified = imbalance(make_folds(data, schema.num_categories, 4, seed=0))
    rng = np.random.default_rng(0)
    random_mean = np.mean([imbalance(rng.permutation(np.arange(len(data)) % 4)) for _ in range(20)])
    assert stratified < 0.8 * random_mean
