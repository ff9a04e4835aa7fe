"""Per-task losses with label masks, selected by name from LOSSES.

Every loss takes (logits [B, K], soft targets [B, K], mask) and returns a scalar; the mask is
[B] for softmax tasks and [B, K] for sigmoid tasks. Masked entries are removed with
`torch.where`, so they contribute exactly zero loss and zero gradient.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from fashioncomp.config import ConfigError
from fashioncomp.tasks import CATEGORY, Task

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: dict[str, Callable[..., LossFn]] = {}


def register_loss(name: str) -> Callable[[Callable[..., LossFn]], Callable[..., LossFn]]:
    def wrap(factory: Callable[..., LossFn]) -> Callable[..., LossFn]:
        LOSSES[name] = factory
        return factory

    return wrap


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.bool()
    kept = torch.where(mask, values, torch.zeros_like(values))
    return kept.sum() / mask.sum().clamp(min=1)


@register_loss("ce")
def cross_entropy(label_smoothing: float = 0.0, **_: Any) -> LossFn:
    """Soft-target cross-entropy (works for one-hot, smoothed and mixed targets)."""

    def loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / target.shape[1]
        per_row = -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
        return masked_mean(per_row, mask)

    return loss


@register_loss("bce")
def binary_cross_entropy(**_: Any) -> LossFn:
    def loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_entry = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
        return masked_mean(per_entry, mask)

    return loss


def create_task_losses(loss_cfg: dict[str, Any], tasks: list[Task], class_frequencies: dict[str, torch.Tensor] | None = None) -> dict[str, LossFn]:
    """One loss per task: `loss.category` for the category, `loss.group` for multiclass
    attribute groups, `loss.attribute` for the sigmoid attributes."""
    losses: dict[str, LossFn] = {}
    for task in tasks:
        key = "category" if task.name == CATEGORY else ("group" if task.is_multiclass else "attribute")
        name = loss_cfg[key]
        if name not in LOSSES:
            raise ConfigError(f"unknown loss.{key} '{name}'; choose one of {sorted(LOSSES)}")
        freq = (class_frequencies or {}).get(task.name)
        losses[task.name] = LOSSES[name](
            label_smoothing=loss_cfg["label_smoothing"] if task.is_multiclass else 0.0,
            gamma=loss_cfg["focal_gamma"],
            class_frequencies=freq,
            multiclass=task.is_multiclass,
        )
    return losses
