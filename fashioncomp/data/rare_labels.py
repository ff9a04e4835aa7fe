"""Rare-label merging (`data.merge_rare_below`), after the iMaterialist report: attributes seen
on fewer than that share of the training images are merged into one "other" label for training.

Which attributes are rare is decided once, at init, from train.csv (the share of the images
where the attribute is labelled that have it) and recorded in the run's schema.json
(`merged_rare`), so every stage builds the same network. Inside the network (fashioncomp.tasks)
each task merges its own rare members:

- a sigmoid task (the ungrouped attributes, or a multilabel group's own task) gets one extra
  output "other": positive when any of its rare members is;
- a multiclass group folds them into its "none" class, which then means "none of the kept
  members"; its softmax and its argmax decoding are otherwise unchanged. A group left with no
  kept member loses its task.

"other" has no attribute index: it is dropped from the [N, A] probabilities, whose merged
columns stay 0, so a merged attribute is never predicted and never written to a submission.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.data.schema import Schema

__all__ = ["attribute_frequencies", "rare_attributes", "with_rare_merged", "describe_merged"]


def attribute_frequencies(data: LabelledData) -> np.ndarray:
    """[A] share of the images labelled for each attribute that have it (0 if none is labelled)."""
    known = data.attribute_known.sum(axis=0)
    positive = (data.attributes.astype(bool) & data.attribute_known).sum(axis=0)
    return positive / np.maximum(known, 1)


def rare_attributes(data: LabelledData, below: float) -> tuple[int, ...]:
    """Attributes whose frequency is under `below` (none when `below` is 0: merging off)."""
    if below <= 0:
        return ()
    return tuple(int(i) for i in np.flatnonzero(attribute_frequencies(data) < below))


def with_rare_merged(schema: Schema, data: LabelledData, below: float) -> Schema:
    """`schema` with its merged attributes decided afresh from `data` (replacing any it listed)."""
    return replace(schema, merged=rare_attributes(data, below))


def describe_merged(schema: Schema, data: LabelledData, below: float) -> str:
    """One line for the init printout: which attributes are merged, at which frequency."""
    freq = attribute_frequencies(data)
    names = ", ".join(f"{schema.attributes[i]} ({100 * freq[i]:.2f}%)" for i in schema.merged)
    return (f"rare labels: {len(schema.merged)} attribute(s) under {100 * below:g}% of the training images merged "
            f"into 'other' for training (data.merge_rare_below: {below:g}); they are never predicted: {names}")
