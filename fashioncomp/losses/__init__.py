"""Per-task losses with label masks, selected by name from LOSSES.

Every loss takes (logits [B, K], soft targets [B, K], mask) and returns a scalar; the mask is
[B] for softmax tasks and [B, K] for sigmoid tasks. Masked entries are removed with
`torch.where`, so they contribute exactly zero loss and zero gradient, and the mean is taken
over the labelled entries only. With reduction "per_output" (REDUCTIONS; asked for by the
`dwa_attribute` weighting) a loss returns a vector instead: a sigmoid task's [K] per-output means
over their labelled rows, a softmax task's one loss as [1].

    ce           soft-target cross-entropy (softmax), optional label smoothing
    weighted_ce  inverse-class-frequency weighted cross-entropy (softmax), or class-balanced BCE
                 (sigmoid): each attribute's positives and negatives weighted to equal mass
    focal        softmax focal loss (softmax) / sigmoid focal loss (sigmoid), loss.focal_gamma
    asl          asymmetric loss (Ridnik et al. 2021), sigmoid tasks only
    bce          binary cross-entropy (sigmoid)
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from timm.loss import AsymmetricLossMultiLabel
from torchvision.ops import sigmoid_focal_loss

from fashioncomp.config import ConfigError
from fashioncomp.tasks import CATEGORY, Task

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: dict[str, Callable[..., LossFn]] = {}
LOSS_KINDS: dict[str, tuple[str, ...]] = {}  # loss name -> task kinds it applies to
BOTH = ("multiclass", "multilabel")

# Loss-specific config keys of the `loss` section, passed to every loss factory.
LOSS_OPTIONS = ("asl_gamma_neg", "asl_gamma_pos", "asl_clip")

# Cap of the inverse-frequency weights: a class seen once in 10 000 images would otherwise get a
# weight of thousands and dominate every batch it appears in.
MAX_CLASS_WEIGHT = 50.0


def register_loss(name: str, kinds: tuple[str, ...] = BOTH) -> Callable[[Callable[..., LossFn]], Callable[..., LossFn]]:
    def wrap(factory: Callable[..., LossFn]) -> Callable[..., LossFn]:
        LOSSES[name] = factory
        LOSS_KINDS[name] = kinds
        return factory

    return wrap


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.bool()
    kept = torch.where(mask, values, torch.zeros_like(values))
    return kept.sum() / mask.sum().clamp(min=1)


def masked_output_means(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per output: [B, K] values -> [K] means over each column's labelled rows; [B] -> [1]."""
    if values.ndim == 1:
        return masked_mean(values, mask).reshape(1)
    mask = mask.bool()
    kept = torch.where(mask, values, torch.zeros_like(values))
    return kept.sum(dim=0) / mask.sum(dim=0).clamp(min=1)


Reduce = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# how a loss reduces its per-row / per-entry values; chosen by the task weighting
REDUCTIONS: dict[str, Reduce] = {"mean": masked_mean, "per_output": masked_output_means}


def smooth(target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    if label_smoothing <= 0:
        return target
    return target * (1 - label_smoothing) + label_smoothing / target.shape[1]


@register_loss("ce", kinds=("multiclass",))
def cross_entropy(label_smoothing: float = 0.0, reduce: Reduce = masked_mean, **_: Any) -> LossFn:
    """Soft-target cross-entropy (works for one-hot, smoothed and mixed targets)."""

    def loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_row = -(smooth(target, label_smoothing) * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
        return reduce(per_row, mask)

    return loss


def balanced_class_weights(frequencies: torch.Tensor) -> torch.Tensor:
    """n / (C * n_c) over the C classes that occur (sklearn's 'balanced'), capped.

    Weighted by the class frequencies these average to 1, so the loss keeps the scale of plain
    cross-entropy. Classes absent from the training rows get the largest weight.
    """
    present = frequencies > 0
    if not present.any():
        return torch.ones_like(frequencies)
    weights = 1.0 / (int(present.sum()) * frequencies.clamp(min=float(frequencies[present].min())))
    return weights.clamp(max=MAX_CLASS_WEIGHT)


def _require_frequencies(class_frequencies: torch.Tensor | None) -> torch.Tensor:
    if class_frequencies is None:
        raise ConfigError("loss 'weighted_ce' needs the training class frequencies (none were given)")
    return torch.as_tensor(class_frequencies, dtype=torch.float32)


@register_loss("weighted_ce")
def weighted_cross_entropy(label_smoothing: float = 0.0, class_frequencies: torch.Tensor | None = None,
                           multiclass: bool = True, reduce: Reduce = masked_mean, **_: Any) -> LossFn:
    """Inverse-frequency weighted cross-entropy.

    Softmax task: class c is weighted n / (C * n_c). Sigmoid task: attribute a with positive rate
    p_a weights positives 1 / (2 p_a) and negatives 1 / (2 (1 - p_a)).
    """
    freq = _require_frequencies(class_frequencies)
    if multiclass:
        class_weights = balanced_class_weights(freq)

        def loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            w = class_weights.to(logits.device)
            per_row = -(w * smooth(target, label_smoothing) * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
            return reduce(per_row, mask)

        return loss

    rate = freq.clamp(0.5 / MAX_CLASS_WEIGHT, 1 - 0.5 / MAX_CLASS_WEIGHT)
    pos_weight, neg_weight = 0.5 / rate, 0.5 / (1 - rate)

    def binary_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = target * pos_weight.to(logits.device) + (1 - target) * neg_weight.to(logits.device)
        per_entry = w * F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
        return reduce(per_entry, mask)

    return binary_loss


@register_loss("focal")
def focal(gamma: float = 2.0, label_smoothing: float = 0.0, multiclass: bool = True, reduce: Reduce = masked_mean,
          **_: Any) -> LossFn:
    """Focal loss (Lin et al. 2017): softmax -sum_c t_c (1 - p_c)^gamma log p_c for softmax tasks,
    torchvision's sigmoid focal loss (no alpha) for sigmoid tasks."""
    if multiclass:
        def loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            log_p = F.log_softmax(logits.float(), dim=1)
            focus = (1 - log_p.exp()).pow(gamma)
            per_row = -(smooth(target, label_smoothing) * focus * log_p).sum(dim=1)
            return reduce(per_row, mask)

        return loss

    def binary_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_entry = sigmoid_focal_loss(logits.float(), target.float(), alpha=-1, gamma=gamma, reduction="none")
        return reduce(per_entry, mask)

    return binary_loss


@register_loss("asl", kinds=("multilabel",))
def asymmetric(asl_gamma_neg: float = 4.0, asl_gamma_pos: float = 0.0, asl_clip: float = 0.05,
               reduce: Reduce = masked_mean, **_: Any) -> LossFn:
    """timm's asymmetric loss per entry (reduction 'none'), then the masked mean."""
    per_entry_loss = AsymmetricLossMultiLabel(gamma_neg=asl_gamma_neg, gamma_pos=asl_gamma_pos, clip=asl_clip,
                                              reduction="none")

    def loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return reduce(per_entry_loss(logits, target), mask)

    return loss


@register_loss("bce", kinds=("multilabel",))
def binary_cross_entropy(reduce: Reduce = masked_mean, **_: Any) -> LossFn:
    def loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_entry = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
        return reduce(per_entry, mask)

    return loss


def loss_key(task: Task) -> str:
    """The `loss.<key>` that chooses this task's loss."""
    return "category" if task.name == CATEGORY else ("group" if task.is_multiclass else "attribute")


def create_task_losses(loss_cfg: dict[str, Any], tasks: list[Task], class_frequencies: dict[str, torch.Tensor] | None = None,
                       reduction: str = "mean") -> dict[str, LossFn]:
    """One loss per task: `loss.category` for the category, `loss.group` for multiclass
    attribute groups, `loss.attribute` for the sigmoid tasks (the shared attributes and each
    multilabel group's own task); reduced as `reduction` says (REDUCTIONS)."""
    reduce = REDUCTIONS[reduction]
    options = {key: loss_cfg[key] for key in LOSS_OPTIONS if key in loss_cfg}
    losses: dict[str, LossFn] = {}
    for task in tasks:
        key = loss_key(task)
        name = loss_cfg[key]
        if name not in LOSSES:
            raise ConfigError(f"unknown loss.{key} '{name}'; choose one of {sorted(LOSSES)}")
        if task.kind not in LOSS_KINDS[name]:
            fitting = sorted(n for n, kinds in LOSS_KINDS.items() if task.kind in kinds)
            raise ConfigError(f"loss.{key}='{name}' does not apply to the {task.kind} task '{task.name}'; "
                              f"choose one of {fitting}")
        freq = (class_frequencies or {}).get(task.name)
        losses[task.name] = LOSSES[name](
            label_smoothing=loss_cfg["label_smoothing"] if task.is_multiclass else 0.0,
            gamma=loss_cfg["focal_gamma"],
            class_frequencies=freq,
            multiclass=task.is_multiclass,
            reduce=reduce,
            **options,
        )
    return losses
