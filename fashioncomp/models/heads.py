"""Task heads: turn the backbone's features into logits per task.

A head reads `Features` (fashioncomp.models.features): the backbone's own pooled vector
[B, P] and, for heads that attend over space (`needs_map`), the feature map [B, F, H, W]. A bare
map tensor also works (it is average-pooled), which is how heads are used on their own.

Heads are registered by name in HEADS; `model.head` in the config picks one and
`create_head` builds it. Every head is called with `in_features` (map channels),
`pooled_features`, `tasks`, `drop_rate` and `hidden` (plus its own options, see HEAD_OPTIONS),
returns {task name: logits [B, task.size]} and has `regularization()` (an extra loss term, or
None) and `schedule_gradients(epoch, step)` (drops the gradients of parts not trained this step).

    linear       pooled features -> one linear layer per task
    shared_mlp   pooled features -> a dense stack shared by all tasks -> one linear layer per task
    private_mlp  pooled features -> a private dense stack and output layer per task
    latent       factorised multi-task layer (Abdulnabi et al. 2015): W_t = L S_t
    query2label  learned queries, transformer (encoder and) decoder over the spatial feature map
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from fashioncomp.config import ConfigError
from fashioncomp.models.features import Features, as_features
from fashioncomp.tasks import ATTRIBUTES, Task

HEADS: dict[str, Callable[..., nn.Module]] = {}

# Head-specific config keys of the `model` section, passed to every head (each takes its own).
HEAD_OPTIONS = ("latent_k", "latent_l1", "latent_l2", "latent_alternate",
                "mlp_layers", "mlp_width_per_label", "mlp_dropout",
                "encoder_layers", "decoder_layers", "decoder_heads", "decoder_ffn", "decoder_dropout",
                "decoder_queries")


def register_head(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        HEADS[name] = cls
        return cls

    return wrap


def create_head(model_cfg: dict[str, Any], in_features: int, tasks: list[Task],
                pooled_features: int | None = None) -> nn.Module:
    """The head named by `model.head`, configured from the `model` section."""
    name = model_cfg["head"]
    if name not in HEADS:
        raise ConfigError(f"unknown model.head '{name}'; choose one of {sorted(HEADS)}")
    options = {key: model_cfg[key] for key in HEAD_OPTIONS if key in model_cfg}
    return HEADS[name](in_features=in_features, pooled_features=pooled_features, tasks=tasks,
                       drop_rate=model_cfg["drop_rate"], hidden=model_cfg["head_hidden"], **options)


def pooled_of(features: Features | torch.Tensor) -> torch.Tensor:
    return as_features(features).pooled


def dense_stack(in_features: int, width: int, layers: int, drop_rate: float) -> nn.Sequential:
    """`layers` x (Linear, GELU, Dropout), each `width` wide (one layer: the former `mlp`)."""
    if int(layers) < 1:
        raise ConfigError(f"model.mlp_layers must be >= 1, got {layers}")
    modules: list[nn.Module] = []
    for _ in range(int(layers)):
        modules += [nn.Linear(in_features, width), nn.GELU(), nn.Dropout(drop_rate)]
        in_features = width
    return nn.Sequential(*modules)


def stack_width(hidden: int, width_per_label: int, labels: int) -> int:
    """`model.head_hidden`, or `mlp_width_per_label` x the labels the stack serves (the source's
    16n shared / 8n private)."""
    return int(width_per_label) * labels if width_per_label else int(hidden)


class TaskHeads(nn.Module):
    """Base of every head: `forward(features) -> {task: logits}`, plus optional training hooks."""

    needs_map = False   # True: reads the spatial map, so the backbone must give one

    def regularization(self) -> torch.Tensor | None:
        """A term added to the training loss (e.g. the latent head's sparsity), or None."""
        return None

    def schedule_gradients(self, epoch: int, step: int) -> None:
        """Called after backward and before the optimizer step (0-based epoch and global step): a
        head that trains some of its parts on a schedule drops the others' gradients here, so
        AdamW leaves them (and their weight decay) alone this step."""


@register_head("linear")
class LinearHeads(TaskHeads):
    """The backbone's pooled features, dropout, then one linear layer per task."""

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 pooled_features: int | None = None, **_: Any) -> None:
        super().__init__()
        width = pooled_features or in_features
        self.dropout = nn.Dropout(drop_rate)
        self.heads = nn.ModuleDict({t.name: nn.Linear(width, t.size) for t in tasks})

    def forward(self, features: Features | torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.dropout(pooled_of(features))
        return {name: head(pooled) for name, head in self.heads.items()}


@register_head("shared_mlp")
class SharedMLPHeads(TaskHeads):
    """Pooled features -> a dense stack shared by every task -> one linear layer per task.

    Default: one layer `head_hidden` wide. The source's stack: `mlp_layers=2`,
    `mlp_width_per_label=16` (16n wide, n = the outputs of all tasks it serves), `mlp_dropout=0.5`.
    """

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 pooled_features: int | None = None, mlp_layers: int = 1, mlp_width_per_label: int = 0,
                 mlp_dropout: float | None = None, **_: Any) -> None:
        super().__init__()
        width = stack_width(hidden, mlp_width_per_label, sum(t.size for t in tasks))
        self.dropout = nn.Dropout(drop_rate)
        self.shared = dense_stack(pooled_features or in_features, width, mlp_layers,
                                  drop_rate if mlp_dropout is None else float(mlp_dropout))
        self.heads = nn.ModuleDict({t.name: nn.Linear(width, t.size) for t in tasks})

    def forward(self, features: Features | torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.shared(self.dropout(pooled_of(features)))
        return {name: head(shared) for name, head in self.heads.items()}


@register_head("private_mlp")
class PrivateMLPHeads(TaskHeads):
    """Pooled features -> a private dense stack and output layer per task.

    Default: one layer `head_hidden` wide. The source's stacks: `mlp_layers=2`,
    `mlp_width_per_label=8` (8n wide, n = the task's outputs), `mlp_dropout=0.5`.
    """

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 pooled_features: int | None = None, mlp_layers: int = 1, mlp_width_per_label: int = 0,
                 mlp_dropout: float | None = None, **_: Any) -> None:
        super().__init__()
        stack_drop = drop_rate if mlp_dropout is None else float(mlp_dropout)
        widths = {t.name: stack_width(hidden, mlp_width_per_label, t.size) for t in tasks}
        self.dropout = nn.Dropout(drop_rate)
        self.heads = nn.ModuleDict({
            t.name: nn.Sequential(dense_stack(pooled_features or in_features, widths[t.name], mlp_layers, stack_drop),
                                  nn.Linear(widths[t.name], t.size))
            for t in tasks
        })

    def forward(self, features: Features | torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.dropout(pooled_of(features))
        return {name: head(pooled) for name, head in self.heads.items()}


# `model.latent_alternate`: which factor of W_t = L S_t trains at (epoch, global step); None = both
LATENT_SCHEDULES: dict[str, Callable[[int, int], str | None]] = {
    "off": lambda epoch, step: None,
    "epoch": lambda epoch, step: "L" if epoch % 2 == 0 else "S",
    "step": lambda epoch, step: "L" if step % 2 == 0 else "S",
}


@register_head("latent")
class LatentTaskHeads(TaskHeads):
    """Factorised multi-task layer after Abdulnabi et al. 2015 ("Multi-task CNN model for
    attribute prediction").

    Every output's weight vector is a combination of k shared latent task vectors: with
    L [F, k] shared by all tasks and S_t [k, size_t] per task, task t's weights are W_t = L S_t,
    so logits_t = (x L) S_t + b_t. `regularization()` returns
    latent_l1 * ||S||_1 (each output uses few latent tasks) + latent_l2 * ||L||_F^2.

    `latent_alternate` = epoch | step alternates the factors as the paper's optimisation does:
    L trains in even epochs / steps with S fixed, S (and the biases) in odd ones with L fixed; the
    backbone trains throughout. `off` (default) trains both jointly.
    """

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 pooled_features: int | None = None, latent_k: int = 16, latent_l1: float = 1e-4,
                 latent_l2: float = 1e-4, latent_alternate: str = "off", **_: Any) -> None:
        super().__init__()
        if int(latent_k) < 1:
            raise ConfigError(f"model.latent_k must be >= 1, got {latent_k}")
        if latent_alternate not in LATENT_SCHEDULES:
            raise ConfigError(f"model.latent_alternate must be one of {', '.join(LATENT_SCHEDULES)}, "
                              f"got {latent_alternate!r}")
        self.dropout = nn.Dropout(drop_rate)
        self.latent = nn.Linear(pooled_features or in_features, int(latent_k), bias=False)  # weight = L^T [k, F]
        self.combine = nn.ModuleDict({t.name: nn.Linear(int(latent_k), t.size) for t in tasks})  # S_t^T, b_t
        self.l1, self.l2 = float(latent_l1), float(latent_l2)
        self.schedule = LATENT_SCHEDULES[latent_alternate]

    def forward(self, features: Features | torch.Tensor) -> dict[str, torch.Tensor]:
        latent = self.latent(self.dropout(pooled_of(features)))
        return {name: combine(latent) for name, combine in self.combine.items()}

    def task_weight(self, name: str) -> torch.Tensor:
        """W_t = L S_t as an [F, size_t] matrix (for inspection and tests)."""
        return self.latent.weight.t() @ self.combine[name].weight.t()

    def regularization(self) -> torch.Tensor | None:
        if self.l1 == 0 and self.l2 == 0:
            return None
        sparsity = sum(c.weight.abs().sum() for c in self.combine.values())
        return self.l1 * sparsity + self.l2 * self.latent.weight.pow(2).sum()

    def schedule_gradients(self, epoch: int, step: int) -> None:
        # gradients are dropped rather than requires_grad toggled: DDP fixes the trained set at wrapping
        fixed = {"L": self.combine.parameters(), "S": self.latent.parameters(), None: ()}[self.schedule(epoch, step)]
        for param in fixed:
            param.grad = None


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


class PerQueryLinear(nn.Module):
    """Query2Label's GroupWiseLinear: query k's output -> logit k, each with its own weights and bias."""

    def __init__(self, count: int, dim: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(dim)
        self.weight = nn.Parameter(torch.empty(count, dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(count).uniform_(-bound, bound))

    def forward(self, decoded: torch.Tensor) -> torch.Tensor:   # [B, count, d] -> [B, count]
        return (decoded * self.weight).sum(dim=-1) + self.bias


def query_per_task(tasks: list[Task]) -> list[bool]:
    """One query per task: the `attributes` task's attributes share one."""
    return [False for _ in tasks]


def query_per_group(tasks: list[Task]) -> list[bool]:
    """One query per label group, as the source has it: the category and each attribute-group task
    get one; every attribute of the ungrouped `attributes` task is a group of its own (as in
    Query2Label's one query per label)."""
    return [t.name == ATTRIBUTES for t in tasks]


# `model.decoder_queries`: per task, whether it gets a query per output (True) or one query
QUERY_PLANS: dict[str, Callable[[list[Task]], list[bool]]] = {"task": query_per_task, "group": query_per_group}


@register_head("query2label")
class Query2LabelHeads(TaskHeads):
    """Query2Label-style head (Liu et al. 2021).

    The feature map is projected to d_model = `hidden` by a 1x1 convolution and a 2-D sine
    position encoding is added; an optional transformer encoder (`encoder_layers`) mixes the
    positions; a transformer decoder (`decoder_layers`, `decoder_heads`, feed-forward
    `decoder_ffn`, dropout `decoder_dropout`) lets the learned queries attend over them. A task
    with one query reads it with a linear layer; a task with a query per output (the ungrouped
    attributes under `decoder_queries=group`) reads each with its own weight vector.
    Defaults (1 decoder layer, no encoder, FFN 2 d_model, dropout `drop_rate`, a query per task)
    are the original setting; the source: encoder + 2 decoder layers, d_model 768, FFN 3072,
    4 heads, dropout 0.3, a query per group.
    """

    needs_map = True

    def __init__(self, in_features: int, tasks: list[Task], drop_rate: float = 0.0, hidden: int = 256,
                 decoder_layers: int = 1, decoder_heads: int = 4, encoder_layers: int = 0, decoder_ffn: int = 0,
                 decoder_dropout: float | None = None, decoder_queries: str = "task", **_: Any) -> None:
        super().__init__()
        if hidden % 4 or hidden % int(decoder_heads):
            raise ConfigError(f"query2label: model.head_hidden ({hidden}) must be divisible by 4 and by "
                              f"model.decoder_heads ({decoder_heads})")
        if int(decoder_layers) < 1:
            raise ConfigError(f"model.decoder_layers must be >= 1, got {decoder_layers}")
        if int(encoder_layers) < 0:
            raise ConfigError(f"model.encoder_layers must be >= 0, got {encoder_layers}")
        if decoder_queries not in QUERY_PLANS:
            raise ConfigError(f"model.decoder_queries must be one of {', '.join(QUERY_PLANS)}, got {decoder_queries!r}")
        per_output = QUERY_PLANS[decoder_queries](tasks)
        counts = [t.size if each else 1 for t, each in zip(tasks, per_output)]
        starts = [sum(counts[:i]) for i in range(len(counts))]
        # (task, its first query, its query count, one query per output?)
        self.slots = list(zip([t.name for t in tasks], starts, counts, per_output))
        self.hidden = hidden
        dropout = drop_rate if decoder_dropout is None else float(decoder_dropout)
        ffn = int(decoder_ffn) or 2 * hidden

        def layer_args() -> dict[str, Any]:
            return dict(d_model=hidden, nhead=int(decoder_heads), dim_feedforward=ffn, dropout=dropout,
                        batch_first=True, norm_first=True)

        self.project = nn.Conv2d(in_features, hidden, kernel_size=1)
        # no encoder by default: its keys then stay out of the state dict (older checkpoints load)
        self.encoder = (nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer_args()), int(encoder_layers),
                                              norm=nn.LayerNorm(hidden), enable_nested_tensor=False)
                        if int(encoder_layers) else None)
        self.queries = nn.Parameter(torch.randn(sum(counts), hidden) * 0.02)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer_args()), int(decoder_layers),
                                             norm=nn.LayerNorm(hidden))
        self.heads = nn.ModuleDict({
            name: PerQueryLinear(count, hidden) if each else nn.Linear(hidden, task.size)
            for (name, _, count, each), task in zip(self.slots, tasks)
        })

    def forward(self, features: Features | torch.Tensor) -> dict[str, torch.Tensor]:
        feature_map = as_features(features).map
        if feature_map is None:
            raise ValueError("query2label needs a spatial feature map")   # create_model refuses this earlier
        memory = self.project(feature_map)
        _, _, height, width = memory.shape
        memory = memory + sine_position_encoding(height, width, self.hidden, memory.device).to(memory.dtype)
        memory = memory.flatten(2).transpose(1, 2)                     # [B, H*W, d]
        if self.encoder is not None:
            memory = self.encoder(memory)
        queries = self.queries.to(memory.dtype).unsqueeze(0).expand(memory.shape[0], -1, -1)
        decoded = self.decoder(queries, memory)                        # [B, queries, d]
        return {name: self.heads[name](decoded[:, start:start + count] if each else decoded[:, start])
                for name, start, count, each in self.slots}
