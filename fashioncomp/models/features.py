"""Backbone feature adaptation: any timm backbone's output -> what the task heads read.

timm backbones lay out their final features in one of these ways, and each model says which:

    NCHW    convnets (ResNet, ConvNeXt, EfficientNet, MaxViT, ...): timm's default convention
    NHWC    models that declare `output_fmt = 'NHWC'` (Swin v1/v2, MambaOut, Sequencer, ...)
    tokens  token models that declare `num_prefix_tokens` (ViT, DeiT, EVA, BEiT, ...): a class /
            distillation / register token prefix, then one token per patch
    NLC     a sequence without a patch grid (`output_fmt = 'NLC'`): only the pooled vector

The layout is read from those declarations, never guessed from a tensor's shape. Every layout is
turned into `Features`: the spatial map [B, C, H, W] (tokens reshaped onto their patch grid by
timm's own `forward_intermediates(..., output_fmt="NCHW")`) and the backbone's own pooled vector
(`forward_head(..., pre_logits=True)`: average pooling for convnets, the class token for a ViT,
ConvNeXt's head norm included). Pooling heads read `pooled`, query2label reads `map`.

Models with a fixed input size (timm's `fixed_input_size`: ViT, Swin, MaxViT, ...) are built for
the working image size (`img_size`), and where the family takes it also with
`dynamic_img_size`, so progressive resizing and other sizes work too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from timm.models import get_pretrained_cfg_value, is_model_in_modules
from torch import nn

# timm modules whose models take `dynamic_img_size=True` (read from timm 1.0's source): position
# embeddings are interpolated / attention masks rebuilt for each input size
DYNAMIC_SIZE_MODULES = ("vision_transformer", "deit", "eva", "swin_transformer", "swin_transformer_v2",
                        "swin_transformer_v2_cr")


@dataclass
class Features:
    """What the heads read from the backbone."""

    map: torch.Tensor | None   # [B, C, H, W]; None when the backbone's output has no spatial grid
    pooled: torch.Tensor       # [B, P]: the backbone's own pooled (pre-logits) vector

    @classmethod
    def from_map(cls, feature_map: torch.Tensor) -> "Features":
        """A bare NCHW feature map, average-pooled (how heads are used on their own, e.g. in tests)."""
        if feature_map.ndim != 4:
            raise ValueError(f"heads expect a feature map [B, F, H, W] or Features, "
                             f"got shape {tuple(feature_map.shape)}")
        return cls(feature_map, feature_map.mean(dim=(2, 3)))

    def with_channels(self, extra: torch.Tensor) -> "Features":
        """`extra` [B, E] appended to the pooled vector and, broadcast over space, to the map."""
        extra = extra.to(self.pooled.dtype)
        feature_map = None
        if self.map is not None:
            tiled = extra[:, :, None, None].expand(-1, -1, self.map.shape[2], self.map.shape[3])
            feature_map = torch.cat([self.map, tiled.to(self.map.dtype)], dim=1)
        return Features(feature_map, torch.cat([self.pooled, extra], dim=1))


def as_features(features: Features | torch.Tensor) -> Features:
    return features if isinstance(features, Features) else Features.from_map(features)


# --- layouts: forward pass + conversion to Features, one function each ------------------------------

def _read_nchw(backbone: nn.Module, images: torch.Tensor) -> Features:
    out = backbone.forward_features(images)
    return Features(out, backbone.forward_head(out, pre_logits=True))


def _read_nhwc(backbone: nn.Module, images: torch.Tensor) -> Features:
    out = backbone.forward_features(images)   # timm's NHWC heads pool this layout themselves
    return Features(out.permute(0, 3, 1, 2), backbone.forward_head(out, pre_logits=True))


def _read_tokens(backbone: nn.Module, images: torch.Tensor) -> Features:
    # one pass: the normed final tokens (for timm's own pooling) and the patch tokens on their
    # grid, prefix tokens dropped (timm knows how many, and the grid of this input size)
    tokens, (feature_map,) = backbone.forward_intermediates(images, indices=1, norm=True, output_fmt="NCHW")
    return Features(feature_map, backbone.forward_head(tokens, pre_logits=True))


def _read_pooled_only(backbone: nn.Module, images: torch.Tensor) -> Features:
    out = backbone.forward_features(images)
    return Features(None, backbone.forward_head(out, pre_logits=True))


LAYOUTS: dict[str, Callable[[nn.Module, torch.Tensor], Features]] = {
    "NCHW": _read_nchw,
    "NHWC": _read_nhwc,
    "tokens": _read_tokens,
    "NLC": _read_pooled_only,   # a sequence timm declares without a patch grid: pooling heads only
}


def layout_of(backbone: nn.Module) -> str:
    """How the backbone lays out its final features, from what the timm model declares."""
    if getattr(backbone, "num_prefix_tokens", None) is not None and hasattr(backbone, "forward_intermediates"):
        return "tokens"
    declared = str(getattr(backbone, "output_fmt", "NCHW"))   # NCHW: timm's convention for convnets
    return declared if declared in LAYOUTS else "NLC"


@dataclass(frozen=True)
class FeatureReader:
    """Reads a backbone's features in its layout; holds no weights (the state dict stays the model's)."""

    layout: str
    map_channels: int | None   # None: no spatial map (only pooling heads can be used)
    pooled_channels: int

    def __call__(self, backbone: nn.Module, images: torch.Tensor) -> Features:
        features = LAYOUTS[self.layout](backbone, images)
        return features if self.map_channels is not None else Features(None, features.pooled)


def size_kwargs(name: str, image_size: int | None) -> dict[str, object]:
    """timm.create_model kwargs that build `name` for `image_size` px inputs.

    timm marks models whose constructor fixes the input size with `fixed_input_size` (they then
    take `img_size`, see timm/models/_builder.py); convnets need nothing.
    """
    if image_size is None or not get_pretrained_cfg_value(name, "fixed_input_size"):
        return {}
    kwargs: dict[str, object] = {"img_size": int(image_size)}
    if is_model_in_modules(name, DYNAMIC_SIZE_MODULES):
        kwargs["dynamic_img_size"] = True
    return kwargs


def default_image_size(backbone: nn.Module) -> int:
    """The input side the model was built for (timm's `pretrained_cfg`), else 224."""
    size = (getattr(backbone, "pretrained_cfg", None) or {}).get("input_size") or (3, 224, 224)
    return int(size[-1])


def probe_reader(backbone: nn.Module, image_size: int) -> tuple[FeatureReader, str | None]:
    """The reader of `backbone`, checked on one blank `image_size` px image.

    Returns (reader, why there is no spatial map, or None). Raises ValueError with the reason when
    the backbone cannot take such images.
    """
    layout = layout_of(backbone)
    was_training = backbone.training
    backbone.eval()   # batch statistics of one blank image would be meaningless
    try:
        with torch.no_grad():
            blank = torch.zeros(1, 3, image_size, image_size, device=next(backbone.parameters()).device)
            features = LAYOUTS[layout](backbone, blank)
    except (AssertionError, RuntimeError, ValueError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"reading its features from a {image_size}x{image_size} px image failed: {reason}") from None
    finally:
        backbone.train(was_training)
    pooled_channels = int(features.pooled.shape[-1])
    channels, fmap = int(backbone.num_features), features.map
    if fmap is None:
        return FeatureReader(layout, None, pooled_channels), f"its output layout '{layout}' has no patch grid"
    if fmap.ndim != 4 or fmap.shape[1] != channels:
        # e.g. MLP-Mixer: tokens without a prefix-token declaration, so read as a convnet would be
        return (FeatureReader(layout, None, pooled_channels),
                f"its forward_features output {tuple(fmap.shape)} is not the {layout} map of {channels} "
                "channels it declares")
    return FeatureReader(layout, channels, pooled_channels), None
