"""The prediction tasks of one network and how labels map onto them.

One network predicts every task from shared features:
- `category`: softmax over the categories;
- `group/<name>`: one softmax per multiclass attribute group, over the group's attributes plus a
  final "none of these" class (when `data.use_groups` is on);
- `attributes`: independent sigmoids for every other attribute.

Targets are dense, soft-able arrays per task (so MixUp/CutMix can mix every task with one
lambda) with a mask per task: [N] for softmax tasks (row labelled?), [N, K] for sigmoid tasks
(entry labelled?).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.data.schema import Schema

CATEGORY = "category"
ATTRIBUTES = "attributes"


@dataclass(frozen=True)
class Task:
    name: str
    kind: str                          # "multiclass" (softmax) or "multilabel" (sigmoids)
    size: int                          # number of logits
    attribute_indices: tuple[int, ...] = ()  # attribute columns this task predicts

    @property
    def is_multiclass(self) -> bool:
        return self.kind == "multiclass"


def build_tasks(schema: Schema, use_groups: bool = True) -> list[Task]:
    tasks = [Task(CATEGORY, "multiclass", schema.num_categories)]
    grouped: set[int] = set()
    if use_groups:
        for group in schema.multiclass_groups:
            tasks.append(Task(f"group/{group.name}", "multiclass", len(group.indices) + 1, group.indices))
            grouped.update(group.indices)
    rest = tuple(i for i in range(schema.num_attributes) if i not in grouped)
    if rest:
        tasks.append(Task(ATTRIBUTES, "multilabel", len(rest), rest))
    return tasks


def encode_targets(data: LabelledData, tasks: list[Task]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per task: dense float32 targets and a bool mask of what is labelled."""
    targets: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    n = len(data)
    for task in tasks:
        if task.name == CATEGORY:
            known = data.categories >= 0
            onehot = np.zeros((n, task.size), dtype=np.float32)
            onehot[np.flatnonzero(known), data.categories[known]] = 1.0
            targets[task.name], masks[task.name] = onehot, known
        elif task.is_multiclass:
            cols = list(task.attribute_indices)
            member = data.attributes[:, cols].astype(np.float32)
            # a row with several members (label noise in a discovered group) splits its mass
            member /= np.maximum(member.sum(axis=1, keepdims=True), 1.0)
            none = 1.0 - member.sum(axis=1, keepdims=True)
            targets[task.name] = np.concatenate([member, none], axis=1)
            masks[task.name] = data.attribute_known[:, cols].all(axis=1)
        else:
            cols = list(task.attribute_indices)
            targets[task.name] = data.attributes[:, cols].astype(np.float32)
            masks[task.name] = data.attribute_known[:, cols].copy()
    return targets, masks


def attribute_probabilities(logits: dict[str, torch.Tensor], tasks: list[Task], num_attributes: int) -> torch.Tensor:
    """Assemble [B, A] attribute probabilities from every attribute task's logits.

    For a multiclass group this is the softmax probability of each member (the "none" class is
    dropped, so a group's probabilities sum to at most 1).
    """
    batch = next(iter(logits.values())).shape[0]
    device = next(iter(logits.values())).device
    out = torch.zeros(batch, num_attributes, device=device, dtype=torch.float32)
    for task in tasks:
        if task.name == CATEGORY:
            continue
        z = logits[task.name].float()
        probs = z.softmax(dim=1)[:, :-1] if task.is_multiclass else z.sigmoid()
        out[:, list(task.attribute_indices)] = probs
    return out
