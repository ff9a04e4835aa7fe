"""Batched inference with test-time augmentation (TTA).

All TTA views of a batch go through the network as one larger batch; the probabilities of the
views are averaged.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from fashioncomp.config import ConfigError
from fashioncomp.data.torch_dataset import to_model_input
from fashioncomp.tasks import CATEGORY, Task, attribute_probabilities

TTA_VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda x: x,
    "hflip": lambda x: x.flip(3),
    "vflip": lambda x: x.flip(2),
}


def check_tta(views: Sequence[str]) -> None:
    unknown = [v for v in views if v not in TTA_VIEWS]
    if unknown or not views:
        raise ConfigError(f"predict.tta: unknown or empty views {unknown or views}; choose from {sorted(TTA_VIEWS)}")


def read_rows(images: Any, rows: np.ndarray) -> np.ndarray:
    """Images `rows` as one [B, S, S, 3] array: one fancy-index read from an array or memmap,
    one decode per row from FileImages."""
    if isinstance(images, np.ndarray):
        return np.ascontiguousarray(images[rows])
    return np.stack([np.asarray(images[int(r)]) for r in rows])


@torch.inference_mode()
def predict_probs(
    model: nn.Module,
    images: Any,
    index: np.ndarray,
    tasks: list[Task],
    num_attributes: int,
    device: torch.device,
    tta: Sequence[str] = ("none",),
    batch_size: int = 256,
    channels_last: bool = True,
    amp_dtype: torch.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Category probabilities [N, C] and attribute probabilities [N, A] for rows `index`."""
    check_tta(tta)
    model.eval()
    cat_out, attr_out = [], []
    n_views = len(tta)
    for start in range(0, len(index), batch_size):
        rows = index[start:start + batch_size]
        batch = torch.from_numpy(read_rows(images, rows)).permute(0, 3, 1, 2)  # NHWC viewed as NCHW
        x = to_model_input(batch, device, channels_last)
        x = torch.cat([TTA_VIEWS[v](x) for v in tta]) if n_views > 1 else TTA_VIEWS[tta[0]](x)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x)
        cat = logits[CATEGORY].float().softmax(dim=1)
        attr = attribute_probabilities(logits, tasks, num_attributes)
        cat_out.append(cat.view(n_views, -1, cat.shape[1]).mean(0).cpu().numpy())
        attr_out.append(attr.view(n_views, -1, attr.shape[1]).mean(0).cpu().numpy())
    return np.concatenate(cat_out), np.concatenate(attr_out)
