import time

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, matthews_corrcoef

from fashioncomp.data.schema import AttributeGroup
from fashioncomp.metrics import (
    attribute_macro_f1,
    attribute_mean_f1,
    category_accuracy,
    group_scores,
    mcc,
    per_attribute_f1,
    per_attribute_mcc,
    score_all,
)


def random_labels(seed, n=60, a=7, p_true=0.2, p_pred=0.25):
    rng = np.random.default_rng(seed)
    t = (rng.random((n, a)) < p_true).astype(int)
    p = (rng.random((n, a)) < p_pred).astype(int)
    # Guarantee all-empty rows: both empty, only truth empty, only prediction empty.
    t[:3] = 0
    p[0] = 0
    p[2] = 0
    return t, p


@pytest.mark.parametrize("seed", range(6))
def test_mean_f1_matches_sklearn_samples(seed):
    t, p = random_labels(seed)
    expected = f1_score(t, p, average="samples", zero_division=1.0)
    assert attribute_mean_f1(t, p) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_macro_and_per_attribute_f1_match_sklearn(seed):
    t, p = random_labels(seed)
    t[:, 0] = 0  # an attribute with no true and no predicted positive -> 0 (zero_division=0)
    p[:, 0] = 0
    assert attribute_macro_f1(t, p) == pytest.approx(f1_score(t, p, average="macro", zero_division=0), abs=1e-12)
    np.testing.assert_allclose(per_attribute_f1(t, p), f1_score(t, p, average=None, zero_division=0), atol=1e-12)


def test_both_empty_image_scores_one():
    t = np.zeros((2, 3), int)
    p = np.zeros((2, 3), int)
    p[1, 0] = 1
    assert attribute_mean_f1(t, p) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(4))
def test_mask_ignores_masked_values(seed):
    rng = np.random.default_rng(100 + seed)
    t, p = random_labels(seed)
    mask = rng.random(t.shape) < 0.7
    mask[5] = False  # an image with no known attribute is skipped
    ref_mean = attribute_mean_f1(t, p, mask)
    ref_macro = attribute_macro_f1(t, p, mask)
    ref_mcc = per_attribute_mcc(t, p, mask)
    groups = [AttributeGroup("mc", "multiclass", (0, 1)), AttributeGroup("ml", "multilabel", (2, 3, 4))]
    ref_groups = group_scores(t, p, groups, mask)
    for _ in range(3):
        t2, p2 = t.copy(), p.copy()
        t2[~mask] = rng.integers(0, 2, (~mask).sum())
        p2[~mask] = rng.integers(0, 2, (~mask).sum())
        assert attribute_mean_f1(t2, p2, mask) == ref_mean
        assert attribute_macro_f1(t2, p2, mask) == ref_macro
        np.testing.assert_array_equal(per_attribute_mcc(t2, p2, mask), ref_mcc)
        assert group_scores(t2, p2, groups, mask) == ref_groups


def test_mask_equals_scoring_known_subset():
    t, p = random_labels(3)
    mask = np.ones(t.shape, bool)
    mask[:, 2] = False
    mask[10:20] = False
    keep = np.ones(len(t), bool)
    keep[10:20] = False
    sub_t = np.delete(t[keep], 2, axis=1)
    sub_p = np.delete(p[keep], 2, axis=1)
    assert attribute_mean_f1(t, p, mask) == pytest.approx(
        f1_score(sub_t, sub_p, average="samples", zero_division=1.0), abs=1e-12
    )
    # Column 2 has no known row: left out of the macro average.
    assert np.isnan(per_attribute_f1(t, p, mask)[2])
    assert attribute_macro_f1(t, p, mask) == pytest.approx(
        f1_score(sub_t, sub_p, average="macro", zero_division=0), abs=1e-12
    )


def test_nothing_known_is_nan():
    t, p = random_labels(0)
    assert np.isnan(attribute_mean_f1(t, p, np.zeros(t.shape, bool)))
    assert np.isnan(category_accuracy(np.full(4, -1), np.zeros(4, int)))


@pytest.mark.parametrize("seed", range(5))
def test_mcc_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, 50)
    p = np.where(rng.random(50) < 0.7, t, 1 - t)
    assert mcc(t, p) == pytest.approx(matthews_corrcoef(t, p), abs=1e-12)
    T = rng.integers(0, 2, (40, 6))
    P = rng.integers(0, 2, (40, 6))
    T[:, 0] = 1  # constant truth: undefined -> 0 like sklearn
    P[:, 1] = 0  # constant prediction
    expected = [matthews_corrcoef(T[:, j], P[:, j]) for j in range(6)]
    np.testing.assert_allclose(per_attribute_mcc(T, P), expected, atol=1e-12)


def test_mcc_perfect_and_inverse():
    t = np.array([0, 1, 1, 0, 1])
    assert mcc(t, t) == pytest.approx(1.0)
    assert mcc(t, 1 - t) == pytest.approx(-1.0)


def test_category_accuracy_ignores_unknown():
    y = np.array([0, 1, 2, -1, -1])
    pred = np.array([0, 1, 0, 2, 1])
    assert category_accuracy(y, pred) == pytest.approx(2 / 3)
    proba = np.eye(3)[pred]
    assert category_accuracy(y, proba) == pytest.approx(2 / 3)


def test_probabilities_are_rejected():
    with pytest.raises(ValueError):
        attribute_mean_f1(np.zeros((2, 2)), np.full((2, 2), 0.3))


@pytest.mark.parametrize("seed", range(4))
def test_group_scores(seed):
    rng = np.random.default_rng(seed)
    n = 80
    # Multiclass group over columns 0..2: one class or none per image.
    cls_t = rng.integers(0, 4, n)  # 3 = none
    cls_p = np.where(rng.random(n) < 0.6, cls_t, rng.integers(0, 4, n))
    t = np.zeros((n, 6), int)
    p = np.zeros((n, 6), int)
    t[np.arange(n), cls_t] = 1
    p[np.arange(n), cls_p] = 1
    t[:, 3] = 0  # column 3 held the "none" one-hot: wipe it, then fill columns 3..5 randomly
    p[:, 3] = 0
    t[:, 3:] = rng.random((n, 3)) < 0.3
    p[:, 3:] = rng.random((n, 3)) < 0.3
    groups = [AttributeGroup("colour", "multiclass", (0, 1, 2)), AttributeGroup("parts", "multilabel", (3, 4, 5))]
    s = group_scores(t, p, groups)
    assert s["colour"]["accuracy"] == pytest.approx(balanced_accuracy_score(cls_t, cls_p), abs=1e-12)
    assert s["colour"]["f1"] == pytest.approx(f1_score(t[:, :3], p[:, :3], average="macro", zero_division=0))
    assert s["parts"]["f1"] == pytest.approx(f1_score(t[:, 3:], p[:, 3:], average="macro", zero_division=0))
    assert s["parts"]["mean_f1"] == pytest.approx(
        f1_score(t[:, 3:], p[:, 3:], average="samples", zero_division=1.0)
    )


def test_score_all_keys_and_score():
    rng = np.random.default_rng(0)
    t, p = random_labels(1)
    cat = rng.integers(0, 4, len(t))
    cat[:5] = -1
    proba = rng.random((len(t), 4))
    groups = [AttributeGroup("colour", "multiclass", (0, 1)), AttributeGroup("parts", "multilabel", (2, 3))]
    s = score_all(cat, proba, t, p, groups)
    assert s["category_accuracy"] == pytest.approx(category_accuracy(cat, proba.argmax(1)))
    assert s["attribute_mean_f1"] == pytest.approx(attribute_mean_f1(t, p))
    assert s["attribute_macro_f1"] == pytest.approx(attribute_macro_f1(t, p))
    assert s["score"] == pytest.approx((s["category_accuracy"] + s["attribute_mean_f1"]) / 2)
    for key in ("group/colour/accuracy", "group/colour/f1", "group/parts/f1", "group/parts/mean_f1"):
        assert key in s
    assert all(isinstance(v, float) for v in s.values())


def test_score_all_is_fast():
    rng = np.random.default_rng(0)
    n, a = 5000, 200
    t = rng.random((n, a)) < 0.05
    p = rng.random((n, a)) < 0.05
    mask = rng.random((n, a)) < 0.9
    groups = [AttributeGroup(f"g{i}", "multiclass" if i % 2 else "multilabel", tuple(range(10 * i, 10 * i + 10)))
              for i in range(20)]
    start = time.perf_counter()
    score_all(rng.integers(0, 20, n), rng.random((n, 20)), t, p, groups, mask)
    assert time.perf_counter() - start < 1.0
