"""Image decoding and the decoded-image cache.

Images are decoded once, converted to RGB (grayscale, palette, RGBA, CMYK and 16-bit inputs
handled), padded to square with white (product photos sit on white) and resized to the working
resolution. The result is kept as one uint8 array [N, S, S, 3] on disk, memory-mapped, keyed by
the files' paths, sizes, modification times and the resolution: every epoch, fold and stage
reads from it, and it is rebuilt when any image or the resolution changes.
"""
from __future__ import annotations

import errno
import hashlib
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from fashioncomp.errors import DataWarning, UserError
from fashioncomp.io import atomic_path, write_npy

BACKGROUND = (255, 255, 255)
JPEG_END_MARKER = b"\xff\xd9"
JPEG_TAIL_BYTES = 64  # encoders may pad a few bytes after the end-of-image marker
# what Pillow raises for files it cannot read (DecompressionBombError is none of the others)
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class ImageReadError(UserError, OSError):
    """An image file cannot be decoded at all."""


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode.startswith("I;16"):
        # 16-bit grey: scale 0..65535 to 0..255 (convert() would clip everything above 255 to white)
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.rint(arr / 257.0).clip(0, 255).astype(np.uint8))
    elif img.mode == "I":
        # 32-bit grey (some TIFF/PNG readers): its range is not recorded; values above 255 mean 16-bit
        arr = np.asarray(img, dtype=np.float64)
        scale = 257.0 if arr.max() > 255 else 1.0
        img = Image.fromarray(np.rint(arr / scale).clip(0, 255).astype(np.uint8))
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


def _decode(path: Path, size: int | None) -> Image.Image:
    with Image.open(path) as img:
        if size is not None and img.format == "JPEG":
            img.draft("RGB", (size, size))  # DCT-domain downscale: much faster decoding
        img.load()
        return _to_rgb(img)


def load_image(path: Path | str, size: int | None = None) -> np.ndarray:
    """Decode an image file to an RGB uint8 array (square `size` if given).

    A truncated file is decoded as far as it goes, with a warning; a file that cannot be
    decoded at all raises ImageReadError naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: image file not found")
    try:
        try:
            rgb = _decode(path, size)
        except OSError:
            # again, accepting a truncated stream (Pillow has only this global switch)
            previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, True
            try:
                rgb = _decode(path, size)
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous
            warnings.warn(f"{path}: image file is truncated; using the part that decodes", DataWarning, stacklevel=2)
    except _DECODE_ERRORS as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc.__class__.__name__}: {exc})") from None
    return _square_resize(rgb, size) if size is not None else np.asarray(rgb, dtype=np.uint8)


def _open_as_load_image_would(path: Path) -> Image.Image | None:
    """Image.open, or None if the file opens only when truncation is tolerated (as load_image does)."""
    try:
        return Image.open(path)
    except (UnidentifiedImageError, Image.DecompressionBombError, FileNotFoundError):
        raise
    except OSError:
        previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, True
        try:
            Image.open(path).close()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous
        return None


def probe_image(path: Path | str) -> str | None:
    """Cheap check of an image file without decoding its pixels (about 30 us per cached JPEG).

    Raises ImageReadError if the file is not a readable image at all (wrong format, empty,
    garbage, absurdly large). Returns a warning if it looks truncated or damaged (the decoder
    will use the part that decodes), else None. Damage inside the compressed data of a file
    with a valid header is only found when it is decoded.
    """
    path = Path(path)
    try:
        img = _open_as_load_image_would(path)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image file not found") from None
    except _DECODE_ERRORS as exc:
        raise ImageReadError(f"{path}: not a readable image ({exc.__class__.__name__}: {exc})") from None
    if img is None:
        return "looks truncated (its header is cut short)"
    with img:
        if img.format == "JPEG":
            img.fp.seek(0, 2)
            img.fp.seek(max(0, img.fp.tell() - JPEG_TAIL_BYTES))
            if JPEG_END_MARKER not in img.fp.read():
                return "looks truncated (no JPEG end-of-image marker)"
            return None
        try:
            img.verify()  # PNG: checks every chunk's CRC without decompressing
        except _DECODE_ERRORS as exc:
            return f"looks damaged ({exc.__class__.__name__}: {exc})"
    return None


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

    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
    readable = np.ones(len(file_paths), dtype=bool)
    with atomic_path(data_path) as tmp:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(file_paths), size, size, 3))
        _reserve_disk_space(tmp)
        for i, rel in enumerate(tqdm(file_paths, desc=f"decode {size}px", disable=not progress, leave=False)):
            try:
                images[i] = load_image(root / rel, size)
            except ImageReadError as exc:
                if on_error == "raise":
                    raise ImageReadError(f"row {i + 1} of the image list: {exc}") from None
                warnings.warn(f"row {i + 1} of the image list: {exc}; this row is predicted from the model prior",
                              DataWarning, stacklevel=2)
                readable[i] = False
                images[i] = 0
        images.flush()
        del images
    write_npy(ok_path, readable)
    return np.load(data_path, mmap_mode="r"), readable


def _reserve_disk_space(path: Path) -> None:
    """Allocate the memory-mapped file's blocks now, so a full disk is an OSError(ENOSPC) here
    rather than a SIGBUS crash when a page of the sparse file is first written."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # file system cannot: go on
                raise
