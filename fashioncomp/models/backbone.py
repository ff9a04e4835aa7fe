"""The timm backbone: built from scratch for the working image size, or from a local checkpoint.

The competition forbids downloaded weights, so `model.pretrained` is refused and a local
`model.checkpoint` is loaded loudly: what was loaded (file, tensors matched) is printed, and a
warning says that the assignment scores pretrained weights as 0.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import load_state_dict
from torch import nn

from fashioncomp.errors import DataWarning, UserError
from fashioncomp.models.features import size_kwargs

PRETRAINED_WARNING = ("model.checkpoint holds pretrained weights: the assignment scores a submission that uses "
                      "pretrained weights as 0 (train from scratch for a scored run)")


class ModelConfigError(UserError, ValueError):
    pass


def create_backbone(cfg: dict[str, Any], image_size: int | None = None) -> nn.Module:
    """The `model.backbone` timm model without classifier, for `image_size` px inputs (None: its default)."""
    name = cfg["backbone"]
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        raise ModelConfigError(f"unknown timm backbone '{name}'. Similar names: {', '.join(close) or 'none'}")
    if cfg.get("pretrained"):
        raise ModelConfigError(
            "model.pretrained=true would download weights, which this setting forbids; "
            "train from scratch or give a local file as model.checkpoint"
        )
    # the model's own global pooling stays: forward_head(pre_logits=True) is how heads pool
    kwargs = dict(num_classes=0, **size_kwargs(name, image_size), **(cfg.get("backbone_kwargs") or {}))
    try:
        backbone = timm.create_model(name, pretrained=False, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise ModelConfigError(f"model.backbone '{name}' with {kwargs}: timm cannot build it: "
                               f"{first_line(exc)}") from None
    if cfg.get("checkpoint"):
        load_backbone_checkpoint(backbone, Path(cfg["checkpoint"]), name)
    return backbone


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_backbone_checkpoint(backbone: nn.Module, path: Path, name: str) -> int:
    """Copy the tensors of `path` that fit `backbone` (same name and shape) into it; return their count.

    Reads timm / PyTorch checkpoints (.pth, .pt, .bin, .safetensors, plain or under 'state_dict' /
    'model') and a fashioncomp run's best.pt (its 'backbone.' prefix is dropped).
    """
    if not path.is_file():
        raise ModelConfigError(f"model.checkpoint: file not found: {path}")
    try:
        state = load_state_dict(str(path), use_ema=True, device="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, KeyError, AttributeError, AssertionError,
            pickle.UnpicklingError) as exc:   # whatever the file holds, it is not weights of a model
        raise ModelConfigError(f"model.checkpoint: {path} is not a readable checkpoint "
                               f"({type(exc).__name__}: {str(exc).strip()[:200]})") from None
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if any(k.startswith("backbone.") for k in state):   # a fashioncomp checkpoint: the backbone's part
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    own = backbone.state_dict()
    matched = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    other_shape = sum(1 for k, v in state.items() if k in own and v.shape != own[k].shape)
    if not matched:
        example = next(iter(state), "none")
        raise ModelConfigError(f"model.checkpoint: none of the {len(state)} tensors of {path} fits backbone "
                               f"'{name}' (first key: '{example}'); is it a checkpoint of this backbone?")
    backbone.load_state_dict(matched, strict=False)
    skipped = f"; {other_shape} of another shape skipped" if other_shape else ""
    print(f"model.checkpoint: loaded {path} into backbone '{name}': {len(matched)} of its {len(own)} tensors "
          f"matched ({len(state)} in the file{skipped})", flush=True)
    warnings.warn(PRETRAINED_WARNING, DataWarning, stacklevel=3)
    return len(matched)
