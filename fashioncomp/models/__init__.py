"""Model factory: one shared timm backbone with a head per task."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from fashioncomp.models.heads import HEADS
from fashioncomp.tasks import Task
from fashioncomp.errors import UserError


class MultiTaskNet(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.backbone.forward_features(images))


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
    head = HEADS[head_name](
        in_features=backbone.num_features, tasks=tasks, drop_rate=cfg["drop_rate"], hidden=cfg["head_hidden"]
    )
    return MultiTaskNet(backbone, head)
