"""Checkpoints: written atomically, read without unpickling code (weights_only=True)."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from fashioncomp.errors import UserError
from fashioncomp.io import explain_os_error, is_environment_error, write_stream

ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is missing, damaged, or holds objects other than tensors and plain data."""


def save_checkpoint(path: Path | str, state: dict[str, Any]) -> Path:
    # through a Python file object: given a path, torch reports a full disk as a cryptic
    # RuntimeError from its zip writer instead of OSError(ENOSPC)
    return write_stream(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load tensors and plain containers only: a pickled object of any other type is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(ZIP_MAGIC))
        # a zip cut short anywhere has lost its central directory; torch would report that, or
        # an OS error, or (one byte left) an unpickling error, depending on where it was cut
        if ZIP_MAGIC.startswith(head) and not zipfile.is_zipfile(path):
            raise CheckpointError(_damaged(path, f"an incomplete archive of {path.stat().st_size} bytes, cut short?"))
        state = torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as exc:  # what weights_only raises for a disallowed global
        raise CheckpointError(
            f"{path}: refused to load: it contains pickled objects that are not plain tensors/data "
            f"({_unsafe_detail(exc)}). Only load checkpoints you trust and that fashioncomp wrote."
        ) from None
    except OSError as exc:
        if is_environment_error(exc):  # permissions and the like: the file may be fine
            raise CheckpointError(explain_os_error(exc, path, action="read")) from None
        raise CheckpointError(_damaged(path, f"{exc.__class__.__name__}: {exc}")) from None
    except Exception as exc:  # torch raises several types for truncated or corrupt files
        raise CheckpointError(_damaged(path, f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dictionary, found {type(state).__name__}")
    return state


def _damaged(path: Path, detail: str) -> str:
    return (f"{path}: damaged or not a checkpoint ({detail}); delete it or rerun the stage that wrote it "
            "with --force")


def _unsafe_detail(exc: Exception) -> str:
    # torch's message is a paragraph; the line naming the refused global is the useful part
    lines = [line.strip() for line in str(exc).splitlines() if "GLOBAL" in line or "Unsupported" in line]
    return lines[0].rstrip(".") if lines else exc.__class__.__name__
