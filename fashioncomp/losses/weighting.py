"""Task weighting: how per-task losses combine into the one loss that is optimised.

Strategies are registered in WEIGHTINGS; `loss.weighting` picks one. Each keeps the current
weights visible (`weights()`) so they can be logged per epoch, and keeps whatever it learns or
remembers in parameters/buffers, so `state_dict()` carries it across a resume.

    fixed          loss = sum_k c_k L_k with c_k from loss.task_weights
    dwa            Dynamic Weight Average (Liu et al. 2019) over whole tasks, times c_k
    dwa_attribute  Dynamic Weight Average over each attribute's own loss (the multi-task CNN
                   paper): every sigmoid output, the category and each multiclass group is a unit
    uncertainty    learned homoscedastic uncertainty (Kendall et al. 2018), times c_k

`loss.task_weights` maps a task name (`category`, `attributes`, `group/<name>`) or a kind
(`category` / `attributes`, the latter covering every attribute task) to c_k; a weight of 0
switches a task's training signal off (single-task baselines). It may also name a preset of
fashioncomp.task_weight_presets (`decay_0.95`: 1, 0.95, 0.95^2, ... in task order).

A weighting says how fine-grained the losses it combines are (`reduction`): "mean" (one scalar
per task, the default) or "per_output" (a vector per task: a sigmoid task's per-output losses,
a softmax task's one loss), and `loss_sizes()` gives the length per task.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from fashioncomp.config import ConfigError
from fashioncomp.task_weight_presets import TASK_WEIGHT_PRESETS, resolve_task_weights
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


def task_weights_for(setting: dict[str, float] | str, tasks: list[Task]) -> dict[str, float]:
    """`loss.task_weights` as a mapping: a preset name is expanded over these tasks in their order."""
    if isinstance(setting, str) and setting not in TASK_WEIGHT_PRESETS:
        raise ConfigError(f"loss.task_weights: unknown preset '{setting}'; choose a mapping of task name -> weight "
                          f"or one of {sorted(TASK_WEIGHT_PRESETS)}")
    return resolve_task_weights(setting, [t.name for t in tasks])


def check_task_weights(task_weights: dict[str, float], tasks: list[Task]) -> None:
    known = {CATEGORY, ATTRIBUTES} | {t.name for t in tasks}
    unknown = sorted(set(task_weights) - known)
    if unknown:
        raise ConfigError(f"loss.task_weights: {unknown} name(s) no task; tasks here are {sorted(known)}")


@register_weighting("fixed")
class TaskWeighting(nn.Module):
    """Fixed weights c_k (e.g. main task 1 and auxiliary tasks 0.95^k: loss.task_weights=decay_0.95)."""

    reduction = "mean"  # the task losses it combines: one scalar per task

    def __init__(self, tasks: list[Task], task_weights: dict[str, float] | str, **_: Any) -> None:
        super().__init__()
        task_weights = task_weights_for(task_weights, tasks)
        check_task_weights(task_weights, tasks)
        self.names = [t.name for t in tasks]
        self.base = {t.name: configured_weight(task_weights, t) for t in tasks}

    def loss_sizes(self) -> dict[str, int]:
        """Length of each task's loss as this weighting combines it (1: a scalar)."""
        return {name: 1 for name in self.names}

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.base[name] * losses[name] for name in self.names)

    def end_epoch(self, mean_losses: dict[str, float], output_losses: dict[str, list[float]] | None = None) -> None:
        """Called after every epoch with each task's mean training loss (and, per task, the mean of
        each entry of its loss vector: what a "per_output" weighting needs)."""

    def weights(self) -> dict[str, float]:
        return dict(self.base)


@register_weighting("dwa")
class DynamicWeightAverage(TaskWeighting):
    """Dynamic Weight Average (Liu, Johns & Davison 2019, "End-to-end multi-task learning with
    attention").

    w_k(t) = K exp(r_k(t-1) / T) / sum_i exp(r_i(t-1) / T) with r_k(t-1) = L_k(t-1) / L_k(t-2),
    the ratio of task k's mean training loss over the last two epochs; w_k = 1 for the first two
    epochs. A task whose loss falls more slowly gets more weight. The loss is sum_k c_k w_k L_k.
    The K units are the tasks here; `dwa_attribute` makes them the attributes.
    """

    def __init__(self, tasks: list[Task], task_weights: dict[str, float] | str, temperature: float = 2.0,
                 **_: Any) -> None:
        super().__init__(tasks, task_weights)
        if temperature <= 0:
            raise ConfigError(f"loss.dwa_temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.sizes = self.unit_counts(tasks)
        k = sum(self.sizes.values())
        # buffers, so the loss history is saved with state_dict() and a resumed run goes on exactly
        self.register_buffer("last_losses", torch.zeros(2, k, dtype=torch.float64))  # rows: L(t-2), L(t-1)
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("dynamic", torch.ones(k, dtype=torch.float64))

    def unit_counts(self, tasks: list[Task]) -> dict[str, int]:
        """How many DWA units each task is: one (whole tasks)."""
        return {t.name: 1 for t in tasks}

    def unit_weights(self) -> dict[str, list[float]]:
        """Per task, the dynamic weight w_u of each of its units."""
        out, offset = {}, 0
        dynamic = self.dynamic.tolist()
        for name in self.names:
            out[name] = dynamic[offset:offset + self.sizes[name]]
            offset += self.sizes[name]
        return out

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        dynamic = self.dynamic.float()
        total, offset = 0, 0
        for name in self.names:
            size = self.sizes[name]
            # one unit: w_k L_k; several: the mean over the task's outputs of w_u L_u
            total = total + self.base[name] * (dynamic[offset:offset + size] * losses[name]).mean()
            offset += size
        return total

    def unit_losses(self, mean_losses: dict[str, float], output_losses: dict[str, list[float]] | None) -> list[float]:
        return [float(mean_losses[name]) for name in self.names]

    def end_epoch(self, mean_losses: dict[str, float], output_losses: dict[str, list[float]] | None = None) -> None:
        latest = torch.tensor(self.unit_losses(mean_losses, output_losses), dtype=torch.float64,
                              device=self.last_losses.device)
        self.last_losses.copy_(torch.stack([self.last_losses[1], latest]))
        self.epochs_seen += 1
        if int(self.epochs_seen) >= 2:
            before, last = self.last_losses
            # a unit with no loss two epochs ago (nothing labelled) keeps a neutral ratio of 1
            ratio = torch.where(before > 0, last / before.clamp(min=1e-12), torch.ones_like(last))
            self.dynamic.copy_(len(latest) * torch.softmax(ratio / self.temperature, dim=0))

    def weights(self) -> dict[str, float]:
        """c_k w_k; for a task of several units, c_k times the mean of their w_u."""
        return {name: self.base[name] * sum(w) / len(w) for name, w in self.unit_weights().items()}


@register_weighting("dwa_attribute")
class AttributeDynamicWeightAverage(DynamicWeightAverage):
    """Dynamic Weight Average over each attribute's own loss (the multi-task CNN paper), not whole tasks.

    The units are the attributes: every output of a sigmoid task (each attribute, and "other"
    when rare labels are merged) and every softmax task as one unit (the category, and each
    multiclass group, which is one attribute with several values). Each unit u gets
    w_u(t) = U exp(r_u(t-1) / T) / sum_i exp(r_i(t-1) / T), r_u = L_u(t-1) / L_u(t-2), over all U
    units; a sigmoid task's loss becomes the mean over its outputs of w_u L_u (its per-output
    losses are masked means over the labelled rows), so with every w_u = 1 (the first two epochs)
    each task's loss is the mean of its attributes' losses. The loss is sum_k c_k of those.
    """

    reduction = "per_output"

    def unit_counts(self, tasks: list[Task]) -> dict[str, int]:
        return {t.name: 1 if t.is_multiclass else t.size for t in tasks}

    def loss_sizes(self) -> dict[str, int]:
        return dict(self.sizes)

    def unit_losses(self, mean_losses: dict[str, float], output_losses: dict[str, list[float]] | None) -> list[float]:
        if output_losses is None:
            raise ValueError("dwa_attribute needs each output's mean loss (output_losses) at the end of an epoch")
        return [float(v) for name in self.names for v in output_losses[name]]


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
