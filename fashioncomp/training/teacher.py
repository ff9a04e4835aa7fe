"""The fold ensemble as a teacher for the refit on every row: distillation and pseudo-labels.

- Distillation (`refit.distill: w`): each training row's target becomes (1 - w) x its label +
  w x the fold ensemble's out-of-fold probabilities for it. Out of fold: the teacher's view of a
  row comes from the one model that never trained on it, so the soft targets carry the
  ensemble's uncertainty between look-alike classes, not a memory of the label.
- Pseudo-labels (`refit.pseudo_label: t`): test images whose category the fold ensemble
  predicts at probability >= t join the refit's training rows with the ensemble's argmax labels;
  each other task of such an image is labelled only where the ensemble is as confident of it
  (a group's top probability >= t; an independent attribute p >= t or p <= 1 - t), else masked.

Both work on the per-task targets of `fashioncomp.tasks` (dense float arrays plus masks). The
teacher has no view of a sigmoid task's merged "other" output (the [N, A] probabilities have no
column for it): it is NaN there, so distillation keeps the label and a pseudo-label masks it.
"""
from __future__ import annotations

import numpy as np

from fashioncomp.tasks import CATEGORY, Task

__all__ = ["targets_from_probabilities", "distill_targets", "pseudo_labels"]


def targets_from_probabilities(category: np.ndarray, attributes: np.ndarray, tasks: list[Task]) -> dict[str, np.ndarray]:
    """Per-task soft targets from [N, C] category and [N, A] attribute probabilities (the inverse of
    `tasks.attribute_probabilities`: a single-choice group gets its members plus "none")."""
    out: dict[str, np.ndarray] = {}
    for task in tasks:
        if task.name == CATEGORY:
            probs = np.clip(category, 0.0, None)
            out[task.name] = (probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)
        elif task.is_multiclass:
            member = np.clip(attributes[:, list(task.attribute_indices)], 0.0, 1.0)
            member = member / np.maximum(member.sum(axis=1, keepdims=True), 1.0)
            out[task.name] = np.concatenate([member, 1.0 - member.sum(axis=1, keepdims=True)], axis=1).astype(np.float32)
        else:
            probs = np.clip(attributes[:, list(task.attribute_indices)], 0.0, 1.0).astype(np.float32)
            if task.has_other:  # no opinion on "other"
                probs = np.concatenate([probs, np.full((len(probs), 1), np.nan, dtype=np.float32)], axis=1)
            out[task.name] = probs
    return out


def distill_targets(targets: dict[str, np.ndarray], teacher: dict[str, np.ndarray], weight: float,
                    rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """(1 - weight) x targets + weight x teacher, on `rows` (bool [N], default all); other rows, and
    entries where the teacher is NaN (no opinion), unchanged."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"distillation weight must be in [0, 1], got {weight}")
    out = {}
    for name, target in targets.items():
        mixed = target.copy()
        use = np.ones(len(target), dtype=bool) if rows is None else rows
        view = teacher[name][use]
        mixed[use] = np.where(np.isnan(view), target[use], (1.0 - weight) * target[use] + weight * view)
        out[name] = mixed
    return out


def pseudo_labels(teacher: dict[str, np.ndarray], tasks: list[Task], threshold: float
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(rows to add [N] bool, hard targets, masks) from the teacher's per-task probabilities.

    A row is added when the teacher is confident of its category; each of its tasks is then
    labelled only where the teacher is confident of that task too (a single-choice task: its top
    probability >= threshold; an independent attribute: p >= threshold or p <= 1 - threshold), so
    a hard group (e.g. gender on a flat-lay photo) does not keep the rest of the image out.
    """
    if not 0.5 < threshold <= 1.0:
        raise ValueError(f"pseudo-label threshold must be in (0.5, 1], got {threshold}")
    n = len(next(iter(teacher.values())))
    targets: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    for task in tasks:
        probs = teacher[task.name]
        if task.name == CATEGORY or task.is_multiclass:
            hard = np.zeros_like(probs)
            hard[np.arange(n), probs.argmax(axis=1)] = 1.0
            targets[task.name], masks[task.name] = hard, probs.max(axis=1) >= threshold
        else:
            targets[task.name] = (probs >= 0.5).astype(np.float32)
            masks[task.name] = (probs >= threshold) | (probs <= 1.0 - threshold)
    return masks[CATEGORY].copy(), targets, masks
