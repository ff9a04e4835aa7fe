"""Progressive resizing: small images in the early epochs, the full size at the end.

Early epochs learn coarse shapes, which small images carry as well as large ones at a fraction
of the cost (a convnet's cost grows with the pixel count); the last epochs train at the size
the model is validated and tested at. With `train.progressive_from: S0` (0 = off) the side grows
linearly from S0 to `data.image_size` over the first `train.progressive_until` of the epochs, in
steps of 16 px, then stays there. Batches are cut from the full-size image cache by
antialiased downscaling on the device, so no second cache is built.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["epoch_image_size", "cost_factor", "progressive_settings", "resize_batch"]

STEP = 16  # sizes are multiples of this: few distinct shapes, each a whole number of stride-16 cells


def epoch_image_size(epoch: int, epochs: int, full_size: int, start: int, until: float) -> int:
    """Training side in pixels for 0-based `epoch` of `epochs`."""
    if not start or start >= full_size or epochs <= 1:
        return full_size
    ramp = max(1, round(until * (epochs - 1)))  # the epoch at which the full size is reached
    if epoch >= ramp:
        return full_size
    side = start + (full_size - start) * epoch / ramp
    return int(min(full_size, max(STEP, round(side / STEP) * STEP)))


def cost_factor(epochs: int, full_size: int, start: int, until: float) -> float:
    """Mean training cost of an epoch relative to one at the full size (pixel count)."""
    sizes = [epoch_image_size(e, epochs, full_size, start, until) for e in range(max(1, epochs))]
    return sum((s / full_size) ** 2 for s in sizes) / len(sizes)


def progressive_settings(train_cfg: dict[str, Any]) -> tuple[int, float]:
    """(start side, share of the epochs to reach the full size) from the `train` config section."""
    return int(train_cfg.get("progressive_from") or 0), float(train_cfg.get("progressive_until", 0.5))


def resize_batch(x: torch.Tensor, side: int) -> torch.Tensor:
    """A normalised float batch [B, 3, H, W] downscaled to `side` (unchanged if already that size)."""
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    memory_format = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    out = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return out.contiguous(memory_format=memory_format)
