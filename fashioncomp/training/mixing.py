"""MixUp and CutMix for multi-task targets.

timm's Mixup mixes one class-index target; here every task's soft target is mixed with the same
lambda as the images (the batch is paired with its reverse, as timm does). A mixed row counts as
labelled only where both source rows are labelled.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from timm.data.mixup import cutmix_bbox_and_lam

Targets = dict[str, torch.Tensor]


def mix_targets(targets: Targets, masks: Targets, lam: float) -> tuple[Targets, Targets]:
    mixed = {k: lam * t + (1.0 - lam) * t.flip(0) for k, t in targets.items()}
    both = {k: m.bool() & m.flip(0).bool() for k, m in masks.items()}
    return mixed, both


def mix_batch(images: torch.Tensor, targets: Targets, masks: Targets, train_cfg: dict[str, Any],
              rng: np.random.Generator) -> tuple[torch.Tensor, Targets, Targets]:
    """Apply MixUp or CutMix (chosen at random when both are on) with probability mix_prob."""
    mixup_alpha, cutmix_alpha = train_cfg["mixup_alpha"], train_cfg["cutmix_alpha"]
    if (mixup_alpha <= 0 and cutmix_alpha <= 0) or images.shape[0] < 2 or rng.random() >= train_cfg["mix_prob"]:
        return images, targets, masks
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < 0.5)
    if use_cutmix:
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
        (y0, y1, x0, x1), lam = cutmix_bbox_and_lam(images.shape, lam)
        images = images.clone()
        images[:, :, y0:y1, x0:x1] = images.flip(0)[:, :, y0:y1, x0:x1]
    else:
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        images = lam * images + (1.0 - lam) * images.flip(0)
    mixed, both = mix_targets(targets, masks, lam)
    return images, mixed, both
