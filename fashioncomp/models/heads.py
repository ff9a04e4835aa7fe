"""Task heads: turn the backbone's feature map [B, F, H, W] into logits per task.

Heads are registered by name in HEADS; `model.head` in the config picks one and
`create_head` builds it. Every head is called with `in_features`, `tasks`, `drop_rate` and
`hidden` (plus its own options, see HEAD_OPTIONS), returns {task name: logits [B, task.size]}
and has `regularization()`: an extra loss term added to the training loss, or None.

    linear       pooled features -> one linear layer per task
    shared_mlp   pooled features -> one MLP shared by all tasks -> one linear layer per task
    private_mlp  pooled features -> a private MLP per task
    latent       factorised multi-task layer (Abdulnabi et al. 2015): W_t = L S_t
    query2label  one learned query per task, transformer decoder over the spatial feature map
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from fashioncomp.config import ConfigError
from fashioncomp.tasks import Task

HEADS: dict[str, Callable[..., nn.Module]] = {}

# Head-specific config keys of the `model` section, passed to every head (each takes its own).
HEAD_OPTIONS = ("latent_k", "latent_l1", "latent_l2", "decoder_layers", "decoder_heads")


def register_head(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        HEADS[name] = cls
        return cls

    return wrap


def create_head(model_cfg: dict[str, Any], in_features: int, tasks: list[Task]) -> nn.Module:
    """The head named by `model.head`, configured from the `model` section."""
    name = model_cfg["head"]
    if name not in HEADS:
        raise ConfigError(f"unknown model.head '{name}'; choose one of {sorted(HEADS)}")
    options = {key: model_cfg[key] for key in HEAD_OPTIONS if key in model_cfg}
    return HEADS[name](in_features=in_features, tasks=tasks, drop_rate=model_cfg["drop_rate"],
                       hidden=model_cfg["head_hidden"], **options)


def global_pool(features: torch.Tensor) -> torch.Tensor:
    if features.ndim != 4:
        raise ValueError(f"heads expect a feature map [B, F, H, W], got shape {tuple(features.shape)}")
    return features.mean(dim=(2, 3))


def mlp(in_features: int, hidden: int, drop_rate: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Dropout(drop_rate))


class TaskHeads(nn.Module):
    """Base of every head: `forward(features) -> {task: logits}`, plus an optional extra loss."""

    def regularization(self) -> torch.Tensor | None:
        """A term added to the training loss (e.g. the latent head's sparsity), or None."""
        return None


@register_head("linear")
class LinearHeads(TaskHeads):
    """Global average pooling, dropout, then one linear layer per task."""

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 **_: Any) -> None:
        super().__init__()
        self.dropout = nn.Dropout(drop_rate)
        self.heads = nn.ModuleDict({t.name: nn.Linear(in_features, t.size) for t in tasks})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.dropout(global_pool(features))
        return {name: head(pooled) for name, head in self.heads.items()}


@register_head("shared_mlp")
class SharedMLPHeads(TaskHeads):
    """Pooled features -> one hidden layer shared by every task -> one linear layer per task."""

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 **_: Any) -> None:
        super().__init__()
        self.dropout = nn.Dropout(drop_rate)
        self.shared = mlp(in_features, hidden, drop_rate)
        self.heads = nn.ModuleDict({t.name: nn.Linear(hidden, t.size) for t in tasks})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.shared(self.dropout(global_pool(features)))
        return {name: head(shared) for name, head in self.heads.items()}


@register_head("private_mlp")
class PrivateMLPHeads(TaskHeads):
    """Pooled features -> a private hidden layer and output layer per task."""

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 **_: Any) -> None:
        super().__init__()
        self.dropout = nn.Dropout(drop_rate)
        self.heads = nn.ModuleDict({
            t.name: nn.Sequential(mlp(in_features, hidden, drop_rate), nn.Linear(hidden, t.size)) for t in tasks
        })

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.dropout(global_pool(features))
        return {name: head(pooled) for name, head in self.heads.items()}


@register_head("latent")
class LatentTaskHeads(TaskHeads):
    """Factorised multi-task layer after Abdulnabi et al. 2015 ("Multi-task CNN model for
    attribute prediction").

    Every output's weight vector is a combination of k shared latent task vectors: with
    L [F, k] shared by all tasks and S_t [k, size_t] per task, task t's weights are W_t = L S_t,
    so logits_t = (x L) S_t + b_t. `regularization()` returns
    latent_l1 * ||S||_1 (each output uses few latent tasks) + latent_l2 * ||L||_F^2.
    """

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 latent_k: int = 16, latent_l1: float = 1e-4, latent_l2: float = 1e-4, **_: Any) -> None:
        super().__init__()
        if int(latent_k) < 1:
            raise ConfigError(f"model.latent_k must be >= 1, got {latent_k}")
        self.dropout = nn.Dropout(drop_rate)
        self.latent = nn.Linear(in_features, int(latent_k), bias=False)  # weight = L^T [k, F]
        self.combine = nn.ModuleDict({t.name: nn.Linear(int(latent_k), t.size) for t in tasks})  # S_t^T, b_t
        self.l1, self.l2 = float(latent_l1), float(latent_l2)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        latent = self.latent(self.dropout(global_pool(features)))
        return {name: combine(latent) for name, combine in self.combine.items()}

    def task_weight(self, name: str) -> torch.Tensor:
        """W_t = L S_t as an [F, size_t] matrix (for inspection and tests)."""
        return self.latent.weight.t() @ self.combine[name].weight.t()

    def regularization(self) -> torch.Tensor | None:
        if self.l1 == 0 and self.l2 == 0:
            return None
        sparsity = sum(c.weight.abs().sum() for c in self.combine.values())
        return self.l1 * sparsity + self.l2 * self.latent.weight.pow(2).sum()


def sine_position_encoding(height: int, width: int, dim: int, device: torch.device,
                           temperature: float = 10000.0) -> torch.Tensor:
    """2-D sine/cosine position encoding [dim, H, W]: first half encodes y, second half x."""
    if dim % 4:
        raise ConfigError(f"the 2-D sine position encoding needs model.head_hidden divisible by 4, got {dim}")
    quarter = dim // 4
    freq = temperature ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter)
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height * 2 * math.pi
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width * 2 * math.pi
    y = ys[:, None] / freq                                   # [H, dim/4]
    x = xs[:, None] / freq                                   # [W, dim/4]
    y = torch.cat([y.sin(), y.cos()], dim=1)[:, None, :].expand(height, width, dim // 2)
    x = torch.cat([x.sin(), x.cos()], dim=1)[None, :, :].expand(height, width, dim // 2)
    return torch.cat([y, x], dim=2).permute(2, 0, 1)


@register_head("query2label")
class Query2LabelHeads(TaskHeads):
    """Query2Label-style head (Liu et al. 2021), with one learned query per task.

    The feature map is projected to d_model = `hidden`, a 2-D sine position encoding is added,
    and a small transformer decoder lets every task query attend over the spatial positions;
    each query's output goes through its task's linear layer.
    """

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 decoder_layers: int = 1, decoder_heads: int = 4, **_: Any) -> None:
        super().__init__()
        if hidden % 4 or hidden % int(decoder_heads):
            raise ConfigError(f"query2label: model.head_hidden ({hidden}) must be divisible by 4 and by "
                              f"model.decoder_heads ({decoder_heads})")
        if int(decoder_layers) < 1:
            raise ConfigError(f"model.decoder_layers must be >= 1, got {decoder_layers}")
        self.names = [t.name for t in tasks]
        self.hidden = hidden
        self.project = nn.Conv2d(in_features, hidden, kernel_size=1)
        self.queries = nn.Parameter(torch.randn(len(tasks), hidden) * 0.02)
        layer = nn.TransformerDecoderLayer(hidden, int(decoder_heads), dim_feedforward=2 * hidden,
                                           dropout=drop_rate, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, int(decoder_layers), norm=nn.LayerNorm(hidden))
        self.heads = nn.ModuleDict({t.name: nn.Linear(hidden, t.size) for t in tasks})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        if features.ndim != 4:
            raise ValueError(f"query2label expects a feature map [B, F, H, W], got shape {tuple(features.shape)}")
        memory = self.project(features)
        _, _, height, width = memory.shape
        memory = memory + sine_position_encoding(height, width, self.hidden, memory.device).to(memory.dtype)
        memory = memory.flatten(2).transpose(1, 2)                     # [B, H*W, d]
        queries = self.queries.to(memory.dtype).unsqueeze(0).expand(memory.shape[0], -1, -1)
        decoded = self.decoder(queries, memory)                        # [B, tasks, d]
        return {name: self.heads[name](decoded[:, i]) for i, name in enumerate(self.names)}
