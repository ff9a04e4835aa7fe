"""Checkpoints: written atomically, read without unpickling code (weights_only=True)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fashioncomp.io import write_atomic
from fashioncomp.errors import UserError


class CheckpointError(UserError, RuntimeError):
    pass


def save_checkpoint(path: Path | str, state: dict[str, Any]) -> Path:
    return write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{path}: cannot be loaded as a checkpoint ({exc.__class__.__name__}: {exc})") from None
