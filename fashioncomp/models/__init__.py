"""Model factory: one shared timm backbone with a head per task."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from fashioncomp.data.torch_dataset import IMAGENET_MEAN, IMAGENET_STD
from fashioncomp.models.heads import HEADS, create_head
from fashioncomp.tasks import Task
from fashioncomp.errors import UserError


class ColourHistogram(nn.Module):
    """Embedded RGB colour histogram of the input image.

    A direct path for colour attributes: convnets trained briefly from scratch learn absolute
    colour slowly (normalisation layers and pooled features keep little of it), while a
    histogram carries it exactly. The square root damps the white-background peak.
    """

    def __init__(self, bins: int, dim: int) -> None:
        super().__init__()
        self.bins = bins
        self.embed = nn.Sequential(nn.Linear(bins**3, dim), nn.ReLU(inplace=True))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rgb = (images.float() * self.std + self.mean).clamp(0, 1)
        level = (rgb * self.bins).long().clamp_(max=self.bins - 1)
        cell = (level[:, 0] * self.bins + level[:, 1]) * self.bins + level[:, 2]
        flat = cell.flatten(1)
        hist = torch.zeros(flat.shape[0], self.bins**3, device=images.device)
        hist.scatter_add_(1, flat, torch.ones_like(flat, dtype=hist.dtype))
        return self.embed((hist / flat.shape[1]).sqrt())


class MultiTaskNet(nn.Module):
    """Backbone feature map (optionally with colour-histogram channels) -> task heads."""

    def __init__(self, backbone: nn.Module, head: nn.Module, colour: ColourHistogram | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.colour = colour
        self.head = head

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone.forward_features(images)
        if self.colour is not None:
            colour = self.colour(images).to(features.dtype)
            colour = colour[:, :, None, None].expand(-1, -1, features.shape[2], features.shape[3])
            features = torch.cat([features, colour], dim=1)
        return self.head(features)


class ModelConfigError(UserError, ValueError):
    pass


def create_backbone(cfg: dict[str, Any]) -> nn.Module:
    name = cfg["backbone"]
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        raise ModelConfigError(f"unknown timm backbone '{name}'. Similar names: {', '.join(close) or 'none'}")
    kwargs = dict(num_classes=0, global_pool="", **cfg.get("backbone_kwargs", {}))
    checkpoint = cfg.get("checkpoint")
    if checkpoint:
        path = Path(checkpoint)
        if not path.is_file():
            raise ModelConfigError(f"model.checkpoint: file not found: {path}")
        # timm's own loader: reads the local file, never the network
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs)
    if cfg.get("pretrained"):
        raise ModelConfigError(
            "model.pretrained=true would download weights, which this setting forbids; "
            "train from scratch or give a local file as model.checkpoint"
        )
    return timm.create_model(name, pretrained=False, **kwargs)


def create_model(cfg: dict[str, Any], tasks: list[Task]) -> MultiTaskNet:
    """Build the network described by the config's `model` section for these tasks."""
    head_name = cfg["head"]
    if head_name not in HEADS:
        raise ModelConfigError(f"unknown model.head '{head_name}'; choose one of {sorted(HEADS)}")
    backbone = create_backbone(cfg)
    bins = int(cfg["colour_bins"])
    colour = ColourHistogram(bins, int(cfg["colour_dim"])) if bins > 0 else None
    in_features = backbone.num_features + (int(cfg["colour_dim"]) if colour is not None else 0)
    head = create_head(cfg, in_features, tasks)
    return MultiTaskNet(backbone, head, colour)
