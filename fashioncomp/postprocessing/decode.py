"""Turn predicted probabilities into labels."""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from fashioncomp.data.schema import AttributeGroup
from fashioncomp.postprocessing.thresholds import ThresholdResult

__all__ = ["decode_attributes", "decode_category"]

Thresholds = Union[float, np.ndarray, ThresholdResult]


def decode_attributes(
    proba: np.ndarray,
    thresholds: Thresholds,
    groups: Sequence[AttributeGroup] = (),
    at_least_one: bool = False,
) -> np.ndarray:
    """Binary attribute predictions ``[N, A]`` (bool) from probabilities ``[N, A]``.

    * attributes in multilabel groups or in no group: ``proba >= threshold``;
      ``thresholds`` is a scalar, an ``[A]`` array or a ``ThresholdResult``.
    * multiclass groups: the group's argmax attribute, unless p(none) = 1 - sum(group probs)
      is larger, so at most one attribute per group per image; thresholds are not used.
    * ``at_least_one``: an image with no predicted attribute gets its most probable one.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must be [N, A], got shape {p.shape}")
    if isinstance(thresholds, ThresholdResult):
        thresholds = thresholds.thresholds
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (p.shape[1],))
    out = p >= thr
    for g in groups:
        if not g.is_multiclass:
            continue
        cols = np.asarray(g.indices)
        gp = p[:, cols]
        best = gp.argmax(axis=1)
        p_none = 1.0 - gp.sum(axis=1)
        chosen = gp[np.arange(len(p)), best] >= p_none
        block = np.zeros(gp.shape, dtype=bool)
        block[np.arange(len(p)), best] = chosen
        out[:, cols] = block
    if at_least_one and p.shape[1]:
        empty = ~out.any(axis=1)
        out[empty, p[empty].argmax(axis=1)] = True
    return out


def decode_category(proba: np.ndarray) -> np.ndarray:
    """Category labels ``[N]`` (argmax of scores ``[N, C]``)."""
    return np.asarray(proba).argmax(axis=1)
