"""The prediction tasks of one network and how labels map onto them.

One network predicts every task from shared features:
- `category`: softmax over the categories;
- `group/<name>`: one softmax per multiclass attribute group, over the group's attributes plus a
  final "none of these" class (when `data.use_groups` is on);
- `group/<name>` of a multilabel group: its own independent sigmoids, loss and task weight (only
  with `data.multilabel_group_tasks`, the local multi-task learning of one task per group);
- `attributes`: independent sigmoids for every other attribute.

With `data.merge_rare_below`, each task merges its rare attributes (fashioncomp.data.rare_labels):
a sigmoid task gets a last output "other", a multiclass group folds them into its "none" class.

Targets are dense, soft-able arrays per task (so MixUp/CutMix can mix every task with one
lambda) with a mask per task: [N] for softmax tasks (row labelled?), [N, K] for sigmoid tasks
(entry labelled?).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    attribute_indices: tuple[int, ...] = ()  # attribute columns this task predicts (its first outputs)
    # rare attributes merged into one output: a sigmoid task's last output "other", a multiclass
    # group's "none" class; they have no output of their own and are never predicted
    merged: tuple[int, ...] = ()

    @property
    def is_multiclass(self) -> bool:
        return self.kind == "multiclass"

    @property
    def has_other(self) -> bool:
        """Whether the last output is the merged rare attributes' "other" (sigmoid tasks only)."""
        return not self.is_multiclass and bool(self.merged)


def _sigmoid_task(name: str, indices: tuple[int, ...], rare: set[int]) -> Task:
    kept = tuple(i for i in indices if i not in rare)
    merged = tuple(i for i in indices if i in rare)
    return Task(name, "multilabel", len(kept) + bool(merged), kept, merged)


def build_tasks(schema: Schema, use_groups: bool = True, multilabel_group_tasks: bool = False) -> list[Task]:
    """The tasks in their fixed order: category, the attribute groups in schema order, the rest."""
    rare = set(schema.merged)
    tasks = [Task(CATEGORY, "multiclass", schema.num_categories)]
    grouped: set[int] = set()
    for group in schema.groups if use_groups else ():
        if group.is_multiclass:
            grouped.update(group.indices)
            kept = tuple(i for i in group.indices if i not in rare)
            if kept:  # a group whose members are all rare keeps no task: "none" is all it could say
                tasks.append(Task(f"group/{group.name}", "multiclass", len(kept) + 1, kept,
                                  tuple(i for i in group.indices if i in rare)))
        elif multilabel_group_tasks:
            grouped.update(group.indices)
            tasks.append(_sigmoid_task(f"group/{group.name}", group.indices, rare))
    rest = tuple(i for i in range(schema.num_attributes) if i not in grouped)
    if rest:
        tasks.append(_sigmoid_task(ATTRIBUTES, rest, rare))
    return tasks


def tasks_from_config(schema: Schema, data_cfg: dict[str, Any]) -> list[Task]:
    """The tasks a recipe's `data` section asks for."""
    return build_tasks(schema, bool(data_cfg["use_groups"]), bool(data_cfg["multilabel_group_tasks"]))


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
            none = 1.0 - member.sum(axis=1, keepdims=True)  # merged rare members count as "none"
            targets[task.name] = np.concatenate([member, none], axis=1)
            masks[task.name] = data.attribute_known[:, cols + list(task.merged)].all(axis=1)
        else:
            cols = list(task.attribute_indices)
            targets[task.name] = data.attributes[:, cols].astype(np.float32)
            masks[task.name] = data.attribute_known[:, cols].copy()
            if task.has_other:
                rare = list(task.merged)
                other = data.attributes[:, rare].any(axis=1)
                # known when every rare member is, or when one is present (then "other" is surely on)
                other_known = data.attribute_known[:, rare].all(axis=1) | other
                targets[task.name] = np.concatenate([targets[task.name], other[:, None].astype(np.float32)], axis=1)
                masks[task.name] = np.concatenate([masks[task.name], other_known[:, None]], axis=1)
    return targets, masks


def attribute_probabilities(logits: dict[str, torch.Tensor], tasks: list[Task], num_attributes: int) -> torch.Tensor:
    """Assemble [B, A] attribute probabilities from every attribute task's logits.

    For a multiclass group this is the softmax probability of each member (the "none" class is
    dropped, so a group's probabilities sum to at most 1). A sigmoid task's "other" output is
    dropped too: merged rare attributes keep probability 0.
    """
    batch = next(iter(logits.values())).shape[0]
    device = next(iter(logits.values())).device
    out = torch.zeros(batch, num_attributes, device=device, dtype=torch.float32)
    for task in tasks:
        if task.name == CATEGORY:
            continue
        z = logits[task.name].float()
        probs = z.softmax(dim=1) if task.is_multiclass else z.sigmoid()
        cols = list(task.attribute_indices)
        out[:, cols] = probs[:, :len(cols)]  # the first outputs; "none" / "other" come last
    return out
