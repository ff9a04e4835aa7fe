import numpy as np
import pytest

from fashioncomp.data.schema import AttributeGroup
from fashioncomp.metrics import attribute_mean_f1, mcc, per_attribute_f1
from fashioncomp.postprocessing.decode import decode_attributes, decode_category
from fashioncomp.postprocessing.thresholds import DEFAULT_GRID, ThresholdResult, tune_thresholds


def separable(n=200, cut=0.3, seed=0):
    """One attribute whose positives all have proba >= cut and negatives < cut."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    p = np.where(y == 1, rng.uniform(cut, 1.0, n), rng.uniform(0.0, cut - 0.02, n))
    p[np.argmax(y)] = cut  # a positive exactly at the cut: proba >= threshold counts
    return y[:, None], p[:, None]


def brute_force(y, p, grid, metric):
    """Reference per-attribute search with explicit loops."""
    out = []
    for j in range(y.shape[1]):
        scores = []
        for t in grid:
            pred = (p[:, j] >= t).astype(int)
            if metric == "mcc":
                scores.append(mcc(y[:, j], pred))
            else:
                scores.append(per_attribute_f1(y[:, [j]], pred[:, None])[0])
        scores = np.array(scores)
        cand = np.flatnonzero(scores >= scores.max() - 1e-12)
        out.append(grid[cand[np.argmin(np.abs(grid[cand] - 0.5))]])
    return np.array(out)


def calibrated(seed, n=400, a=8):
    rng = np.random.default_rng(seed)
    prior = rng.uniform(0.1, 0.5, a)
    y = (rng.random((n, a)) < prior).astype(int)
    logits = 2.0 * (y - 0.5) * rng.uniform(0.5, 2.0, a) + rng.normal(0, 1.0, (n, a))
    return y, 1 / (1 + np.exp(-logits - np.log(prior / (1 - prior))))


def test_default_grid():
    assert DEFAULT_GRID[0] == 0.05 and DEFAULT_GRID[-1] == 0.95 and len(DEFAULT_GRID) == 91
    assert 0.3 in DEFAULT_GRID


@pytest.mark.parametrize("metric", ["mcc", "f1"])
def test_separable_attribute_reaches_perfect_score(metric):
    y, p = separable(cut=0.3)
    res = tune_thresholds(y, p, metric=metric)
    assert isinstance(res, ThresholdResult)
    assert not res.fallback[0]
    pred = (p[:, 0] >= res.thresholds[0]).astype(int)
    assert mcc(y[:, 0], pred) == pytest.approx(1.0)
    assert res.per_attribute_score[0] == pytest.approx(1.0)
    # Every threshold in (0.28, 0.30] separates; the tie goes to the one closest to 0.5.
    assert res.thresholds[0] == pytest.approx(0.3)


@pytest.mark.parametrize("metric", ["mcc", "f1"])
@pytest.mark.parametrize("seed", range(3))
def test_matches_brute_force(metric, seed):
    y, p = calibrated(seed, n=150, a=5)
    res = tune_thresholds(y, p, metric=metric, min_positives=0)
    np.testing.assert_allclose(res.thresholds, brute_force(y, p, DEFAULT_GRID, metric))


def test_global_threshold_maximises_mean_f1():
    y, p = calibrated(7)
    res = tune_thresholds(y, p)
    scores = np.array([attribute_mean_f1(y, p >= t) for t in DEFAULT_GRID])
    assert attribute_mean_f1(y, p >= res.global_threshold) == pytest.approx(scores.max())


def test_rare_attribute_falls_back_to_global():
    y, p = calibrated(1)
    y[:, 2] = 0
    y[:5, 2] = 1  # 5 positives < min_positives=10
    res = tune_thresholds(y, p, min_positives=10)
    assert res.fallback.tolist() == [j == 2 for j in range(y.shape[1])]
    assert res.thresholds[2] == res.global_threshold
    assert not tune_thresholds(y, p, min_positives=5).fallback[2]


def test_mask_ignores_unknown_rows():
    y, p = calibrated(2)
    rng = np.random.default_rng(0)
    mask = rng.random(y.shape) < 0.6
    ref = tune_thresholds(y, p, mask=mask)
    y2, p2 = y.copy(), p.copy()
    y2[~mask] = 1 - y2[~mask]
    p2[~mask] = rng.random((~mask).sum())
    res = tune_thresholds(y2, p2, mask=mask)
    np.testing.assert_array_equal(res.thresholds, ref.thresholds)
    assert res.global_threshold == ref.global_threshold
    np.testing.assert_array_equal(res.fallback, ref.fallback)
    # Masked positives do not count towards min_positives.
    mask[:, 0] = False
    mask[:3, 0] = True
    assert tune_thresholds(y, p, mask=mask).fallback[0]


@pytest.mark.parametrize("metric", ["mcc", "f1"])
@pytest.mark.parametrize("seed", range(3))
def test_tuned_not_worse_than_half_on_training_data(metric, seed):
    y, p = calibrated(seed)
    y[:, 0] = 0
    y[:4, 0] = 1  # one rare attribute on the global threshold
    res = tune_thresholds(y, p, metric=metric)
    assert attribute_mean_f1(y, p >= res.thresholds) >= attribute_mean_f1(y, p >= 0.5)


def test_custom_grid_and_bad_metric():
    y, p = separable()
    res = tune_thresholds(y, p, grid=[0.7, 0.2, 0.3, 0.3])
    assert res.thresholds[0] == 0.3
    with pytest.raises(ValueError):
        tune_thresholds(y, p, metric="auc")


# --------------------------------------------------------------------------- decoding

GROUPS = (AttributeGroup("colour", "multiclass", (0, 1, 2)), AttributeGroup("parts", "multilabel", (3, 4)))


def test_multiclass_group_at_most_one_and_respects_none():
    proba = np.array([
        [0.5, 0.3, 0.1, 0.9, 0.1],   # argmax 0.5 > p(none) 0.1 -> attribute 0
        [0.3, 0.2, 0.1, 0.2, 0.6],   # p(none) 0.4 > 0.3 -> nothing in the group
        [0.9, 0.9, 0.9, 0.0, 0.0],   # unnormalised, p(none) < 0 -> still only one
        [0.4, 0.4, 0.1, 0.0, 0.0],   # tie inside the group -> the first
    ])
    out = decode_attributes(proba, 0.5, GROUPS)
    assert out.dtype == bool
    np.testing.assert_array_equal(out[:, :3], [[1, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(out[:, 3:], [[1, 0], [0, 1], [0, 0], [0, 0]])


def test_multiclass_ignores_thresholds_multilabel_uses_them():
    proba = np.array([[0.2, 0.1, 0.05, 0.4, 0.4]])  # argmax 0.2 < p(none) 0.65
    thr = np.array([0.01, 0.01, 0.01, 0.35, 0.45])
    out = decode_attributes(proba, thr, GROUPS)
    np.testing.assert_array_equal(out, [[0, 0, 0, 1, 0]])
    res = ThresholdResult(thr, 0.5, np.zeros(5, bool), np.zeros(5))
    np.testing.assert_array_equal(decode_attributes(proba, res, GROUPS), out)
    # Without groups every attribute is thresholded.
    np.testing.assert_array_equal(decode_attributes(proba, thr), [[1, 1, 1, 1, 0]])


@pytest.mark.parametrize("seed", range(3))
def test_random_softmax_groups_at_most_one(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (500, 4))  # 3 attributes + none
    soft = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    proba = np.concatenate([soft[:, :3], rng.random((500, 2))], axis=1)
    out = decode_attributes(proba, 0.5, GROUPS)
    assert out[:, :3].sum(1).max() <= 1
    picked_none = soft.argmax(1) == 3
    np.testing.assert_array_equal(out[:, :3].any(1), ~picked_none)
    np.testing.assert_array_equal(out[~picked_none, :3].argmax(1), soft[~picked_none, :3].argmax(1))


def test_at_least_one():
    proba = np.array([
        [0.1, 0.2, 0.05, 0.3, 0.2],   # nothing passes -> most probable (3)
        [0.1, 0.1, 0.1, 0.9, 0.8],    # already has attributes -> unchanged
    ])
    plain = decode_attributes(proba, 0.5, GROUPS)
    assert not plain[0].any()
    out = decode_attributes(proba, 0.5, GROUPS, at_least_one=True)
    np.testing.assert_array_equal(out[0], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(out[1], plain[1])


def test_decode_category():
    np.testing.assert_array_equal(decode_category(np.array([[0.1, 0.9], [0.7, 0.3]])), [1, 0])


# ------------------------------------------- thresholds for the per-image mean-F1 (metrics.attribute_f1: samples)
# (every choice of metrics.attribute_f1 is tested in test_attribute_metric.py)

from fashioncomp.postprocessing.metric_search import refine_thresholds  # noqa: E402


def _mean_f1_at(y, p, thr, groups=(), at_least_one=False):
    return attribute_mean_f1(y, decode_attributes(p, thr, groups, at_least_one=at_least_one))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("at_least_one", [False, True])
def test_mean_f1_search_matches_brute_force_over_every_threshold_pair(seed, at_least_one):
    y, p = calibrated(seed, n=300, a=3)
    group = AttributeGroup("g", "multiclass", (2,))  # decoded by argmax: its threshold is not searched
    grid = np.round(np.linspace(0.05, 0.95, 19), 2)
    found = refine_thresholds(y, p, np.full(3, 0.5), "samples", [group], at_least_one, grid=grid)
    assert found[2] == 0.5
    best = max(_mean_f1_at(y, p, np.array([a, b, 0.5]), [group], at_least_one) for a in grid for b in grid)
    assert _mean_f1_at(y, p, found, [group], at_least_one) == pytest.approx(best, abs=1e-12)


def test_mean_f1_search_beats_per_attribute_tuning_and_never_loses():
    y, p = calibrated(7, n=500, a=6)
    start = tune_thresholds(y, p, metric="f1").thresholds
    found = refine_thresholds(y, p, start)
    assert _mean_f1_at(y, p, found) > _mean_f1_at(y, p, start)
    assert _mean_f1_at(y, p, found) > _mean_f1_at(y, p, np.full(6, 0.5))
    # already optimal: nothing moves
    assert np.array_equal(refine_thresholds(y, p, found), found)
