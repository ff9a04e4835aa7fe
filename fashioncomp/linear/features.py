"""Image features of the linear model: thumbnail pixels and an HSV colour histogram."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from fashioncomp.data.images import load_image

__all__ = ["THUMBNAIL", "HIST_SIZE", "HSV_BINS", "N_FEATURES", "features_of", "image_features", "array_features"]

THUMBNAIL = 24
HIST_SIZE = 64                  # resolution the colour histogram is taken at
HSV_BINS = (12, 4, 4)           # hue x saturation x value cells
N_FEATURES = THUMBNAIL * THUMBNAIL * 3 + int(np.prod(HSV_BINS))


def features_of(big: np.ndarray, thumb: np.ndarray) -> np.ndarray:
    """[24*24*3 + 192] float32: `thumb` (24 px RGB) in [0, 1], then the normalised HSV histogram of `big` (64 px RGB)."""
    hsv = np.asarray(Image.fromarray(big).convert("HSV")).reshape(-1, 3)
    hist, _ = np.histogramdd(hsv, bins=HSV_BINS, range=((0, 256),) * 3)
    return np.concatenate([np.asarray(thumb, np.float32).ravel() / 255.0,
                           hist.ravel().astype(np.float32) / hsv.shape[0]])


def image_features(root: Path, file_paths: Sequence[str]) -> np.ndarray:
    """[N, F]: the features of `root/file_path`, decoded from the files at both sizes."""
    return np.stack([features_of(load_image(root / rel, HIST_SIZE), load_image(root / rel, THUMBNAIL))
                     for rel in file_paths])


def array_features(images: Iterable[np.ndarray]) -> np.ndarray:
    """[N, F]: the features of decoded square RGB uint8 images (e.g. the pipeline's image cache),
    resized to both sizes."""
    def resized(image: np.ndarray, size: int) -> np.ndarray:
        return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.BILINEAR))

    rows = [features_of(resized(img, HIST_SIZE), resized(img, THUMBNAIL)) for img in images]
    return np.stack(rows) if rows else np.zeros((0, N_FEATURES), dtype=np.float32)
