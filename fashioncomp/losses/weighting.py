"""Task weighting: how per-task losses combine into the one loss that is optimised.

Strategies are registered in WEIGHTINGS; `loss.weighting` picks one. Each keeps the current
weights visible (`weights()`) so they can be logged per epoch, and keeps whatever it learns or
remembers in parameters/buffers, so `state_dict()` carries it across a resume.

    fixed        loss = sum_k c_k L_k with c_k from loss.task_weights
    dwa          Dynamic Weight Average (Liu et al. 2019), times c_k
    uncertainty  learned homoscedastic uncertainty (Kendall et al. 2018), times c_k

`loss.task_weights` maps a task name (`category`, `attributes`, `group/<name>`) or a kind
(`category` / `attributes`, the latter covering every attribute task) to c_k; a weight of 0
switches a task's training signal off (single-task baselines).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from fashioncomp.config import ConfigError
from fashioncomp.tasks import ATTRIBUTES, CATEGORY, Task

WEIGHTINGS: dict[str, Callable[..., "TaskWeighting"]] = {}


def register_weighting(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        WEIGHTINGS[name] = cls
        return cls

    return wrap


def configured_weight(task_weights: dict[str, float], task: Task) -> float:
    """A task's fixed weight: its own name, else 'category' / 'attributes' for its kind."""
    if task.name in task_weights:
        return float(task_weights[task.name])
    return float(task_weights.get(CATEGORY if task.name == CATEGORY else ATTRIBUTES, 1.0))


def check_task_weights(task_weights: dict[str, float], tasks: list[Task]) -> None:
    known = {CATEGORY, ATTRIBUTES} | {t.name for t in tasks}
    unknown = sorted(set(task_weights) - known)
    if unknown:
        raise ConfigError(f"loss.task_weights: {unknown} name(s) no task; tasks here are {sorted(known)}")


@register_weighting("fixed")
class TaskWeighting(nn.Module):
    """Fixed weights c_k (e.g. main task 1 and auxiliary tasks 0.95^k via loss.task_weights)."""

    def __init__(self, tasks: list[Task], task_weights: dict[str, float], **_: Any) -> None:
        super().__init__()
        check_task_weights(task_weights, tasks)
        self.names = [t.name for t in tasks]
        self.base = {t.name: configured_weight(task_weights, t) for t in tasks}

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.base[name] * losses[name] for name in self.names)

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        """Called with each task's mean training loss after every epoch."""

    def weights(self) -> dict[str, float]:
        return dict(self.base)


@register_weighting("dwa")
class DynamicWeightAverage(TaskWeighting):
    """Dynamic Weight Average (Liu, Johns & Davison 2019, "End-to-end multi-task learning with
    attention").

    w_k(t) = K exp(r_k(t-1) / T) / sum_i exp(r_i(t-1) / T) with r_k(t-1) = L_k(t-1) / L_k(t-2),
    the ratio of task k's mean training loss over the last two epochs; w_k = 1 for the first two
    epochs. A task whose loss falls more slowly gets more weight. The loss is sum_k c_k w_k L_k.
    """

    def __init__(self, tasks: list[Task], task_weights: dict[str, float], temperature: float = 2.0,
                 **_: Any) -> None:
        super().__init__(tasks, task_weights)
        if temperature <= 0:
            raise ConfigError(f"loss.dwa_temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        k = len(self.names)
        # buffers, so the loss history is saved with state_dict() and a resumed run goes on exactly
        self.register_buffer("last_losses", torch.zeros(2, k, dtype=torch.float64))  # rows: L(t-2), L(t-1)
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("dynamic", torch.ones(k, dtype=torch.float64))

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        dynamic = self.dynamic.float()
        return sum(self.base[name] * dynamic[i] * losses[name] for i, name in enumerate(self.names))

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        latest = torch.tensor([float(mean_losses[name]) for name in self.names], dtype=torch.float64,
                              device=self.last_losses.device)
        self.last_losses.copy_(torch.stack([self.last_losses[1], latest]))
        self.epochs_seen += 1
        if int(self.epochs_seen) >= 2:
            before, last = self.last_losses
            # a task with no loss two epochs ago (nothing labelled) keeps a neutral ratio of 1
            ratio = torch.where(before > 0, last / before.clamp(min=1e-12), torch.ones_like(last))
            self.dynamic.copy_(len(self.names) * torch.softmax(ratio / self.temperature, dim=0))

    def weights(self) -> dict[str, float]:
        return {name: self.base[name] * w for name, w in zip(self.names, self.dynamic.tolist())}


@register_weighting("uncertainty")
class UncertaintyWeighting(TaskWeighting):
    """Homoscedastic task uncertainty (Kendall, Gal & Cipolla 2018).

    One learned log-variance s_k per task; loss = sum_k c_k (exp(-s_k) L_k + s_k). This is the
    classification form without the 1/2 factors of the regression derivation: at the optimum
    s_k = log L_k, i.e. each task is scaled to unit loss. s_k starts at 0 (weight 1) and is
    optimised with the network (train.py adds `parameters()` to the optimizer, without weight
    decay); `weights()` reports c_k exp(-s_k).
    """

    def __init__(self, tasks: list[Task], task_weights: dict[str, float], **_: Any) -> None:
        super().__init__(tasks, task_weights)
        self.log_vars = nn.Parameter(torch.zeros(len(self.names)))

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        # c_k also multiplies s_k: a switched-off task (c_k = 0) leaves its s_k untouched
        return sum(self.base[name] * (torch.exp(-s) * losses[name] + s)
                   for name, s in zip(self.names, self.log_vars))

    def weights(self) -> dict[str, float]:
        precision = torch.exp(-self.log_vars.detach()).tolist()
        return {name: self.base[name] * p for name, p in zip(self.names, precision)}


def create_weighting(loss_cfg: dict[str, Any], tasks: list[Task]) -> TaskWeighting:
    name = loss_cfg["weighting"]
    if name not in WEIGHTINGS:
        raise ConfigError(f"unknown loss.weighting '{name}'; choose one of {sorted(WEIGHTINGS)}")
    return WEIGHTINGS[name](tasks, loss_cfg["task_weights"], temperature=loss_cfg["dwa_temperature"])
