"""Model factory: one shared timm backbone with a head per task.

The backbone (fashioncomp.models.backbone) is any timm model; fashioncomp.models.features reads
its output in the layout the model declares (NCHW, NHWC or tokens) as a spatial map plus the
model's own pooled vector, which the heads (fashioncomp.models.heads) turn into logits per task.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fashioncomp.data.torch_dataset import IMAGENET_MEAN, IMAGENET_STD
from fashioncomp.models.backbone import ModelConfigError, create_backbone
from fashioncomp.models.features import FeatureReader, Features, default_image_size, probe_reader
from fashioncomp.models.heads import HEADS, create_head
from fashioncomp.tasks import Task

__all__ = ["ColourHistogram", "MultiTaskNet", "ModelConfigError", "create_backbone", "create_model"]


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
    """Backbone features (optionally with colour-histogram channels) -> task heads."""

    def __init__(self, backbone: nn.Module, head: nn.Module, colour: ColourHistogram | None = None,
                 reader: FeatureReader | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.colour = colour
        self.head = head
        # how to read this backbone's output (no weights: the state dict is unchanged by it)
        self.reader = reader or FeatureReader("NCHW", backbone.num_features, backbone.num_features)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features: Features = self.reader(self.backbone, images)
        if self.colour is not None:
            features = features.with_channels(self.colour(images))
        return self.head(features)


def create_model(cfg: dict[str, Any], tasks: list[Task], image_size: int | None = None) -> MultiTaskNet:
    """Build the network described by the config's `model` section for these tasks, for
    `image_size` px inputs (`data.image_size`; None: the backbone's default size).

    The backbone is read once on a blank image here, so an image size it cannot take or a head
    it cannot feed is a ModelConfigError now rather than a shape error inside training.
    """
    head_name = cfg["head"]
    if head_name not in HEADS:
        raise ModelConfigError(f"unknown model.head '{head_name}'; choose one of {sorted(HEADS)}")
    backbone = create_backbone(cfg, image_size)
    try:
        reader, no_map = probe_reader(backbone, int(image_size or default_image_size(backbone)))
    except ValueError as exc:
        raise ModelConfigError(f"model.backbone '{cfg['backbone']}': {exc}") from None
    if no_map and getattr(HEADS[head_name], "needs_map", False):
        pooling = sorted(n for n, h in HEADS.items() if not getattr(h, "needs_map", False))
        raise ModelConfigError(
            f"model.head={head_name} reads a spatial feature map, which backbone '{cfg['backbone']}' does not give "
            f"({no_map}); use a pooling head ({', '.join(pooling)}) or a convnet, NHWC or patch-token backbone")
    bins = int(cfg["colour_bins"])
    colour = ColourHistogram(bins, int(cfg["colour_dim"])) if bins > 0 else None
    extra = int(cfg["colour_dim"]) if colour is not None else 0
    head = create_head(cfg, (reader.map_channels or reader.pooled_channels) + extra, tasks,
                       pooled_features=reader.pooled_channels + extra)
    return MultiTaskNet(backbone, head, colour, reader)
