"""Task weighting: how per-task losses combine into the one loss that is optimised.

Strategies are registered in WEIGHTINGS; `loss.weighting` picks one. Each keeps the current
weights visible (`weights()`) so they can be logged per epoch.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from fashioncomp.config import ConfigError
from fashioncomp.tasks import CATEGORY, Task

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
    return float(task_weights.get(CATEGORY if task.name == CATEGORY else "attributes", 1.0))


class TaskWeighting(nn.Module):
    def __init__(self, tasks: list[Task], task_weights: dict[str, float], **_: Any) -> None:
        super().__init__()
        self.names = [t.name for t in tasks]
        self.base = {t.name: configured_weight(task_weights, t) for t in tasks}

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.base[name] * losses[name] for name in self.names)

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        """Called with each task's mean training loss after every epoch."""

    def weights(self) -> dict[str, float]:
        return dict(self.base)


register_weighting("fixed")(TaskWeighting)


def create_weighting(loss_cfg: dict[str, Any], tasks: list[Task]) -> TaskWeighting:
    name = loss_cfg["weighting"]
    if name not in WEIGHTINGS:
        raise ConfigError(f"unknown loss.weighting '{name}'; choose one of {sorted(WEIGHTINGS)}")
    return WEIGHTINGS[name](tasks, loss_cfg["task_weights"], temperature=loss_cfg["dwa_temperature"])
