"""PyTorch datasets, sampler and loader over decoded images.

Images travel as uint8 HWC arrays (4x less to copy than float); a collated batch [B, H, W, 3]
viewed as [B, 3, H, W] already has the channels_last layout the convnets run in, and is
normalised on the device by `to_model_input`.

Augmentation randomness is a function of (seed, epoch, row) alone: the sampler hands each
worker `(position, epoch)` keys and the dataset seeds the transform per sample from them. The
batches of an epoch are therefore the same with 0 or N workers, with workers that persist
across epochs, and after a resume.
"""
from __future__ import annotations

import mmap
import random
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

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


class StackedImages:
    """Array-like rows of `first` followed by those of `second` (e.g. training images, then the
    test images a refit learns from with pseudo-labels), without copying either."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    def __getitem__(self, i: int) -> np.ndarray:
        i = int(i)
        return self.first[i] if i < len(self.first) else self.second[i - len(self.first)]


class EpochSampler(Sampler[tuple[int, int]]):
    """A seeded shuffle per epoch (torch's DistributedSampler: permutation seeded by seed + epoch,
    one disjoint shard per rank) that yields `(position, epoch)` keys for ImageTargetsDataset."""

    def __init__(self, dataset: Dataset, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.shards = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.shards.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((i, self.epoch) for i in self.shards)

    def __len__(self) -> int:
        return len(self.shards)


class ImageTargetsDataset(Dataset):
    """Rows `index` of an image array (memmap cache or FileImages), with optional targets.

    A key is a position, or `(position, epoch)` (see EpochSampler): with `aug_seed` set, the
    transform is then seeded from (aug_seed, epoch, row), wherever and whenever it runs.
    """

    def __init__(
        self,
        images: Any,
        index: np.ndarray,
        targets: dict[str, np.ndarray] | None = None,
        masks: dict[str, np.ndarray] | None = None,
        transform: Callable[..., dict[str, np.ndarray]] | None = None,
        aug_seed: int | None = None,
    ) -> None:
        self.images, self.index = images, np.asarray(index)
        self.targets, self.masks, self.transform = targets, masks, transform
        self.aug_seed = aug_seed

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        position, epoch = key if isinstance(key, tuple) else (key, None)
        row = int(self.index[position])
        image = np.array(self.images[row])  # copy: the memmap is read-only
        if self.transform is not None:
            if epoch is not None and self.aug_seed is not None:
                self._seed_transform(epoch, row)
            image = self.transform(image=image)["image"]
        item: dict[str, Any] = {"image": torch.from_numpy(np.ascontiguousarray(image)), "row": row}
        if self.targets is not None and self.masks is not None:
            item["targets"] = {k: torch.from_numpy(v[row]) for k, v in self.targets.items()}
            item["masks"] = {k: torch.as_tensor(v[row]) for k, v in self.masks.items()}
        return item

    def _seed_transform(self, epoch: int, row: int) -> None:
        # one generator shared by all steps of the Compose (albumentations' set_random_seed would
        # build one per step, each with the same stream)
        rng = np.random.default_rng([int(self.aug_seed), epoch, row])
        self.transform.set_random_state(rng, random.Random(int(rng.integers(2**63))))

    def __getstate__(self) -> dict[str, Any]:
        # workers started by spawn/forkserver get the memmap's path, not a pickled copy of its data
        state = dict(self.__dict__)
        whole_file = isinstance(self.images, np.memmap) and isinstance(self.images.base, mmap.mmap)
        if whole_file and self.images.filename:
            state["images"] = _MemmapPath(str(self.images.filename))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["images"], _MemmapPath):
            state["images"] = np.load(state["images"].path, mmap_mode="r")
        self.__dict__.update(state)


class _MemmapPath:
    def __init__(self, path: str) -> None:
        self.path = path


def create_train_loader(dataset: ImageTargetsDataset, batch_size: int, num_workers: int, seed: int,
                        rank: int = 0, world_size: int = 1, pin_memory: bool = False) -> DataLoader:
    """Loader built once per fold: call `loader.sampler.set_epoch(epoch)` before each epoch.

    Workers persist across epochs; every rank gets its own shard of each epoch's permutation.
    """
    sampler = EpochSampler(dataset, seed=seed, rank=rank, world_size=world_size)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=num_workers,
        pin_memory=pin_memory, persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
        # the loader draws its workers' base seed from here, not from the global RNG (which
        # dropout and mixing use): so the training stream does not depend on num_workers
        generator=torch.Generator().manual_seed(seed),
    )


def to_model_input(images: torch.Tensor, device: torch.device, channels_last: bool = True) -> torch.Tensor:
    """uint8 [B, 3, H, W] (any strides) -> normalised float on `device`.

    An NHWC batch viewed as NCHW (`batch.permute(0, 3, 1, 2)`) is already channels_last and
    stays so without a copy.
    """
    x = images.to(device, non_blocking=True).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
