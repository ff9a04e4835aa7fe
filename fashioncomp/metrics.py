"""Evaluation metrics for category + attribute predictions.

Conventions (shared with the rest of the package):

* category targets: int array ``[N]``; ``-1`` means unknown and is ignored.
* attribute targets / predictions: 0/1 (or bool) arrays ``[N, A]``.
* optional attribute ``mask``: bool ``[N, A]``, True = label known. Masked entries are
  ignored everywhere: their target and prediction values never change a score.

All functions are vectorised (no Python loops over images) because ``score_all`` runs every
epoch on the validation set. A score with nothing to score (no known label) is ``nan``.

The assignment's "Mean F1" of the attributes is not defined further, so which F1 the leaderboard
uses is a choice (``metrics.attribute_f1``, see ``ATTRIBUTE_F1``): per image averaged over images
(``samples``, the default), per attribute averaged over attributes (``macro``) or pooled over
every image-attribute decision (``micro``). Checkpoint selection, threshold tuning and the report
all read it from there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fashioncomp.config import ConfigError
from fashioncomp.data.schema import AttributeGroup

__all__ = [
    "category_accuracy",
    "attribute_mean_f1",
    "attribute_macro_f1",
    "attribute_micro_f1",
    "ATTRIBUTE_F1",
    "AttributeF1",
    "attribute_f1_metric",
    "per_attribute_f1",
    "mcc",
    "per_attribute_mcc",
    "group_scores",
    "score_all",
]


# --------------------------------------------------------------------------- helpers


def _as_binary(x: np.ndarray, name: str) -> np.ndarray:
    """Bool view of a 0/1 array; refuses probabilities so they are not silently binarised."""
    x = np.asarray(x)
    if x.dtype == bool:
        return x
    if x.size and not np.isin(x, (0, 1)).all():
        raise ValueError(f"{name} must be 0/1 (decode probabilities first)")
    return x.astype(bool)


def _prepare(
    y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes; return (true, pred, known) as 2-D bool arrays with unknowns zeroed."""
    t = _as_binary(y_true, "y_true")
    p = _as_binary(y_pred, "y_pred")
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must be equal [N, A] shapes")
    if mask is None:
        known = np.ones(t.shape, dtype=bool)
        return t, p, known
    known = np.asarray(mask, dtype=bool)
    if known.shape != t.shape:
        raise ValueError(f"mask {known.shape} must have the shape of y_true {t.shape}")
    # Zeroing unknown entries makes every count below ignore them.
    return t & known, p & known, known


def _counts(t: np.ndarray, p: np.ndarray, known: np.ndarray, axis: int):
    """tp, fp, fn, tn summed along ``axis`` (inputs already masked), as float64."""
    tp = np.count_nonzero(t & p, axis=axis).astype(np.float64)
    n_t = np.count_nonzero(t, axis=axis)
    n_p = np.count_nonzero(p, axis=axis)
    n = np.count_nonzero(known, axis=axis)
    fp = n_p - tp
    fn = n_t - tp
    tn = n - tp - fp - fn
    return tp, fp, fn, tn


def _f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, empty: float) -> np.ndarray:
    """F1 = 2tp / (2tp + fp + fn); ``empty`` where the denominator is zero."""
    den = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), empty)


def _mcc_from_counts(tp, fp, fn, tn) -> np.ndarray:
    """Matthews correlation; 0 when undefined (constant truth or prediction), like sklearn."""
    num = tp * tn - fp * fn
    den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.sqrt(np.where(den > 0, den, 1)), 0.0)


# --------------------------------------------------------------------------- category


def category_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy over images with a known category (``y_true != -1``).

    ``y_pred`` is labels ``[N]`` or scores ``[N, C]`` (argmax taken). ``nan`` if none known.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    known = y_true != -1
    if not known.any():
        return float("nan")
    return float(np.mean(y_true[known] == y_pred[known]))


# --------------------------------------------------------------------------- attributes


def _per_image_f1(t: np.ndarray, p: np.ndarray, known: np.ndarray) -> np.ndarray:
    tp, fp, fn, _ = _counts(t, p, known, axis=1)
    f1 = _f1_from_counts(tp, fp, fn, empty=1.0)
    return f1[known.any(axis=1)]


@dataclass(frozen=True)
class AttributeF1:
    """One reading of the attribute "Mean F1": an F1 per unit, averaged over the units.

    A unit is an image (``axis=1``: counts pooled over its attributes), an attribute (``axis=0``:
    pooled over its images) or the whole matrix (``axis=None``: every decision pooled). Only
    known cells count; a unit with no known cell is left out. ``empty`` is the F1 of a unit with
    no true and no predicted positive (the conventions of sklearn's ``zero_division``).
    Calling it scores 0/1 predictions; ``from_counts`` scores counts, which lets the threshold
    search score every grid value of one attribute at once.
    """

    name: str            # the value of metrics.attribute_f1
    key: str             # its key in score_all's dict (and oof_scores.json, metrics.csv)
    label: str           # its name in printouts and the report
    meaning: str         # what it averages, in words
    axis: int | None
    empty: float

    def units(self, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
        """The unit of every cell ``[N, A]`` (int) and the number of units."""
        n, a = shape
        if self.axis == 1:
            return np.broadcast_to(np.arange(n)[:, None], shape), n
        if self.axis == 0:
            return np.broadcast_to(np.arange(a)[None, :], shape), a
        return np.zeros(shape, dtype=np.intp), 1

    def from_counts(self, tp: np.ndarray, n_pred: np.ndarray, n_true: np.ndarray, scored: np.ndarray) -> np.ndarray:
        """Mean F1 over the ``scored`` units from per-unit counts ``[U]`` or ``[U, G]`` (a column per
        candidate); ``nan`` when no unit is scored."""
        den = n_pred + n_true
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), self.empty)
        if not scored.any():
            return np.full(f1.shape[1:], np.nan)
        return f1[scored].mean(axis=0)

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> float:
        t, p, known = _prepare(y_true, y_pred, mask)
        counts = [np.atleast_1d(np.count_nonzero(x, axis=self.axis)).astype(np.float64) for x in (t & p, p, t)]
        return float(self.from_counts(*counts, np.atleast_1d(known.any(axis=self.axis))))


# metrics.attribute_f1 -> the metric; equal to sklearn's f1_score(average=name) with the zero_division given
ATTRIBUTE_F1: dict[str, AttributeF1] = {
    # the image's set: an image with no true and no predicted attribute scores 1 (zero_division=1)
    "samples": AttributeF1("samples", "attribute_mean_f1", "attribute mean-F1",
                           "F1 of each image's attribute set, averaged over images", axis=1, empty=1.0),
    # an attribute with no true and no predicted positive scores 0 (zero_division=0)
    "macro": AttributeF1("macro", "attribute_macro_f1", "attribute macro-F1",
                         "F1 of each attribute over the images, averaged over attributes", axis=0, empty=0.0),
    # one pooled set of decisions, empty only if nothing is true or predicted: 1, like an image
    "micro": AttributeF1("micro", "attribute_micro_f1", "attribute micro-F1",
                         "F1 of every image-attribute decision pooled together", axis=None, empty=1.0),
}
DEFAULT_ATTRIBUTE_F1 = "samples"


def attribute_f1_metric(name: str) -> AttributeF1:
    """The attribute F1 named by ``metrics.attribute_f1``; a ConfigError listing the choices otherwise."""
    if name not in ATTRIBUTE_F1:
        raise ConfigError(f"'metrics.attribute_f1' must be one of {', '.join(ATTRIBUTE_F1)}, got {name!r}")
    return ATTRIBUTE_F1[name]


def attribute_mean_f1(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Per-image F1 of the attribute sets, averaged over images (``metrics.attribute_f1: samples``).

    An image whose true and predicted sets are both empty scores 1.0, i.e. this equals
    ``sklearn.metrics.f1_score(y_true, y_pred, average='samples', zero_division=1.0)``.
    With ``mask``, each image is scored on its known attributes only; images with no known
    attribute are skipped. ``nan`` if no image is left.
    """
    return ATTRIBUTE_F1["samples"](y_true, y_pred, mask)


def attribute_micro_f1(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """F1 of every known image-attribute decision pooled (sklearn ``average='micro'``).

    1.0 if nothing is true and nothing predicted (sklearn ``zero_division=1``); ``nan`` if no
    cell is known.
    """
    return ATTRIBUTE_F1["micro"](y_true, y_pred, mask)


def per_attribute_f1(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """F1 of each attribute column ``[A]`` over its known rows.

    0 where an attribute has neither true nor predicted positives (sklearn ``zero_division=0``);
    ``nan`` where it has no known row at all.
    """
    t, p, known = _prepare(y_true, y_pred, mask)
    tp, fp, fn, _ = _counts(t, p, known, axis=0)
    f1 = _f1_from_counts(tp, fp, fn, empty=0.0)
    return np.where(known.any(axis=0), f1, np.nan)


def attribute_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Per-attribute F1 averaged over attributes (sklearn ``average='macro', zero_division=0``).

    Attributes with no known row are left out of the average.
    """
    return ATTRIBUTE_F1["macro"](y_true, y_pred, mask)


def per_attribute_mcc(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Matthews correlation of each attribute column ``[A]`` over its known rows (0 if undefined)."""
    t, p, known = _prepare(y_true, y_pred, mask)
    return _mcc_from_counts(*_counts(t, p, known, axis=0))


def mcc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Matthews correlation of one binary column; equals ``sklearn.metrics.matthews_corrcoef``."""
    t = np.asarray(y_true).reshape(-1, 1)
    p = np.asarray(y_pred).reshape(-1, 1)
    return float(per_attribute_mcc(t, p)[0])


# --------------------------------------------------------------------------- groups


def _group_class(x: np.ndarray) -> np.ndarray:
    """Class index within a multiclass group: first positive column, or k (= "none")."""
    k = x.shape[1]
    return np.where(x.any(axis=1), x.argmax(axis=1), k)


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean per-class recall over classes present in ``y_true`` (sklearn balanced_accuracy)."""
    if y_true.size == 0:
        return float("nan")
    support = np.bincount(y_true, minlength=n_classes)
    hits = np.bincount(y_true[y_true == y_pred], minlength=n_classes)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


def group_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: Sequence[AttributeGroup],
    mask: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Scores per attribute group, keyed by group name.

    * multiclass group: ``accuracy`` = mean class accuracy (balanced accuracy over the group's
      classes plus "none"), on rows where every attribute of the group is known; ``f1`` =
      macro-F1 over the group's attributes.
    * multilabel group: ``f1`` = macro-F1 and ``mean_f1`` = per-image mean-F1, restricted to
      the group's attributes.
    """
    t, p, known = _prepare(y_true, y_pred, mask)
    out: dict[str, dict[str, float]] = {}
    for g in groups:
        cols = list(g.indices)
        gt, gp, gk = t[:, cols], p[:, cols], known[:, cols]
        f1 = _f1_from_counts(*_counts(gt, gp, gk, axis=0)[:3], empty=0.0)
        f1 = f1[gk.any(axis=0)]
        macro = float(f1.mean()) if f1.size else float("nan")
        if g.is_multiclass:
            rows = gk.all(axis=1)  # a class label needs the whole group known
            acc = _balanced_accuracy(_group_class(gt[rows]), _group_class(gp[rows]), len(cols) + 1)
            out[g.name] = {"accuracy": acc, "f1": macro}
        else:
            per_image = _per_image_f1(gt, gp, gk)
            mean = float(per_image.mean()) if per_image.size else float("nan")
            out[g.name] = {"f1": macro, "mean_f1": mean}
    return out


# --------------------------------------------------------------------------- all together


def score_all(
    cat_true: np.ndarray,
    cat_proba: np.ndarray,
    attr_true: np.ndarray,
    attr_pred: np.ndarray,
    groups: Sequence[AttributeGroup] = (),
    mask: np.ndarray | None = None,
    attribute_metric: str = DEFAULT_ATTRIBUTE_F1,
) -> dict[str, float]:
    """All validation scores in one flat dict.

    Keys: ``category_accuracy``, ``attribute_mean_f1``, ``attribute_macro_f1``,
    ``attribute_micro_f1``, ``score`` (mean of category accuracy and the attribute F1 named by
    ``attribute_metric``, see ``ATTRIBUTE_F1``, ignoring a ``nan`` component; used for checkpoint
    selection) and ``group/<name>/<metric>`` for each group (see ``group_scores``).
    ``cat_proba`` may be scores ``[N, C]`` or labels ``[N]``; ``attr_pred`` is decoded 0/1.
    """
    chosen = attribute_f1_metric(attribute_metric)
    # Convert once so the per-metric validation below is a no-op on bool arrays.
    attr_true = _as_binary(attr_true, "attr_true")
    attr_pred = _as_binary(attr_pred, "attr_pred")
    out: dict[str, float] = {"category_accuracy": category_accuracy(cat_true, cat_proba)}
    out.update({metric.key: metric(attr_true, attr_pred, mask) for metric in ATTRIBUTE_F1.values()})
    parts = [v for v in (out["category_accuracy"], out[chosen.key]) if not np.isnan(v)]
    out["score"] = float(np.mean(parts)) if parts else float("nan")
    for name, scores in group_scores(attr_true, attr_pred, groups, mask).items():
        for metric, value in scores.items():
            out[f"group/{name}/{metric}"] = value
    return out
