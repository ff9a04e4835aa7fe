"""Task heads: turn the backbone's feature map [B, F, H, W] into logits per task.

Heads are registered by name in HEADS; `model.head` in the config picks one.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from fashioncomp.tasks import Task

HEADS: dict[str, Callable[..., nn.Module]] = {}


def register_head(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        HEADS[name] = cls
        return cls

    return wrap


@register_head("linear")
class LinearHeads(nn.Module):
    """Global average pooling, dropout, then one linear layer per task."""

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, **_: Any) -> None:
        super().__init__()
        self.dropout = nn.Dropout(drop_rate)
        self.heads = nn.ModuleDict({t.name: nn.Linear(in_features, t.size) for t in tasks})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.dropout(features.mean(dim=(2, 3)))
        return {name: head(pooled) for name, head in self.heads.items()}

    def regularization(self) -> torch.Tensor | None:
        return None
