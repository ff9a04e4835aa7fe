"""Image decoding and the decoded-image cache.

Images are decoded once, converted to RGB (grayscale, palette, RGBA, CMYK and 16-bit inputs
handled), padded to square with white (product photos sit on white) and resized to the working
resolution. The result is kept as one uint8 array [N, S, S, 3] on disk, memory-mapped, keyed by
the files' paths, sizes, modification times and the resolution: every epoch, fold and stage
reads from it, and it is rebuilt when any image or the resolution changes.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from fashioncomp.io import atomic_path
from fashioncomp.errors import UserError

BACKGROUND = (255, 255, 255)


class ImageReadError(UserError, OSError):
    """An image file cannot be decoded at all."""


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale the real value range to 8 bits instead of clipping at 255
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        img = Image.fromarray((arr * (255.0 / (65535.0 if hi > 255 else 255.0))).clip(0, 255).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        canvas = Image.new("RGB", img.size, BACKGROUND)
        canvas.paste(img, mask=img.getchannel("A"))
        return canvas
    return img.convert("RGB")


def _square_resize(img: Image.Image, size: int) -> np.ndarray:
    w, h = img.size
    if w != h:
        side = max(w, h)
        canvas = Image.new("RGB", (side, side), BACKGROUND)
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
    return np.asarray(img, dtype=np.uint8)


def load_image(path: Path | str, size: int | None = None) -> np.ndarray:
    """Decode an image file to an RGB uint8 array (square `size` if given).

    A truncated file is decoded as far as it goes, with a warning; a file that cannot be
    decoded at all raises ImageReadError naming it.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            if size is not None and img.format == "JPEG":
                img.draft("RGB", (size, size))  # DCT-domain downscale: much faster decoding
            try:
                img.load()
            except OSError:
                ImageFile.LOAD_TRUNCATED_IMAGES = True
                try:
                    with Image.open(path) as again:
                        again.load()
                        img = again.copy()
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = False
                warnings.warn(f"{path}: image file is truncated; using the part that decodes", stacklevel=2)
            rgb = _to_rgb(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc.__class__.__name__}: {exc})") from None
    return _square_resize(rgb, size) if size is not None else np.asarray(rgb, dtype=np.uint8)


def cache_key(root: Path, file_paths: Sequence[str], size: int) -> str:
    digest = hashlib.sha1(f"v1|{size}".encode())
    for rel in file_paths:
        full = root / rel
        try:
            st = full.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(f"|{rel}|{stamp}".encode())
    return digest.hexdigest()[:16]


def build_image_cache(
    root: Path | str,
    file_paths: Sequence[str],
    size: int,
    cache_dir: Path | str,
    on_error: str = "raise",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images [N, size, size, 3] uint8 memmap, readable [N] bool).

    on_error="raise": an undecodable image is an error naming the file and row.
    on_error="warn": it is warned about, left black and marked unreadable (used for test images).
    """
    root, cache_dir = Path(root), Path(cache_dir)
    key = cache_key(root, file_paths, size)
    data_path = cache_dir / f"images-{size}px-{key}.npy"
    ok_path = cache_dir / f"images-{size}px-{key}.ok.npy"
    if data_path.is_file() and ok_path.is_file():
        return np.load(data_path, mmap_mode="r"), np.load(ok_path)

    from tqdm import tqdm

    readable = np.ones(len(file_paths), dtype=bool)
    with atomic_path(data_path) as tmp:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(file_paths), size, size, 3))
        for i, rel in enumerate(tqdm(file_paths, desc=f"decode {size}px", disable=not progress, leave=False)):
            try:
                images[i] = load_image(root / rel, size)
            except (ImageReadError, FileNotFoundError) as exc:
                if on_error == "raise":
                    raise ImageReadError(f"row {i + 1} of the image list: {exc}") from None
                warnings.warn(f"{exc}; this row is predicted from the model prior", stacklevel=2)
                readable[i] = False
                images[i] = 0
        images.flush()
        del images
    with atomic_path(ok_path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, readable)
    return np.load(data_path, mmap_mode="r"), readable
