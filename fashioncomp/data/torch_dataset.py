"""PyTorch datasets over decoded images.

Images travel as uint8 CHW tensors (4x less to copy than float) and are normalised on the
device by `to_model_input`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from fashioncomp.data.images import load_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FileImages:
    """Array-like view that decodes `root/file_path` on every access (no cache)."""

    def __init__(self, root: Path | str, file_paths: Sequence[str], size: int) -> None:
        self.root, self.file_paths, self.size = Path(root), list(file_paths), size

    def __len__(self) -> int:
        return len(self.file_paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return load_image(self.root / self.file_paths[int(i)], self.size)


class ImageTargetsDataset(Dataset):
    """Rows `index` of an image array (memmap cache or FileImages), with optional targets."""

    def __init__(
        self,
        images: Any,
        index: np.ndarray,
        targets: dict[str, np.ndarray] | None = None,
        masks: dict[str, np.ndarray] | None = None,
        transform: Callable[..., dict[str, np.ndarray]] | None = None,
    ) -> None:
        self.images, self.index = images, np.asarray(index)
        self.targets, self.masks, self.transform = targets, masks, transform

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = int(self.index[i])
        image = np.array(self.images[row])  # copy: the memmap is read-only
        if self.transform is not None:
            image = self.transform(image=image)["image"]
        item: dict[str, Any] = {"image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), "row": row}
        if self.targets is not None and self.masks is not None:
            item["targets"] = {k: torch.from_numpy(v[row]) for k, v in self.targets.items()}
            item["masks"] = {k: torch.as_tensor(v[row]) for k, v in self.masks.items()}
        return item


def to_model_input(images: torch.Tensor, device: torch.device, channels_last: bool = True) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> normalised float on `device`."""
    x = images.to(device, non_blocking=True).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
