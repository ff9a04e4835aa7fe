"""Named presets of `loss.task_weights`: fixed task weights computed from the task order.

`loss.task_weights` is a mapping of task name -> weight, or the name of a preset registered here:

    decay_0.95   the main task (the category, first in the task order) 1, each later task 0.95
                 times the one before it: 1, 0.95, 0.9025, ... (the iMaterialist report)

The task order is fashioncomp.tasks.build_tasks's: category, the attribute groups in schema
order, then the shared sigmoid attributes. Kept free of torch so the config can check names.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

Preset = Callable[[Sequence[str]], dict[str, float]]
TASK_WEIGHT_PRESETS: dict[str, Preset] = {}


def register_preset(name: str) -> Callable[[Preset], Preset]:
    def wrap(fn: Preset) -> Preset:
        TASK_WEIGHT_PRESETS[name] = fn
        return fn

    return wrap


def geometric_decay(task_names: Sequence[str], rate: float) -> dict[str, float]:
    """Task k (0-based, in task order) gets rate**k."""
    return {name: rate ** k for k, name in enumerate(task_names)}


@register_preset("decay_0.95")
def decay_095(task_names: Sequence[str]) -> dict[str, float]:
    return geometric_decay(task_names, 0.95)


def resolve_task_weights(setting: Mapping[str, float] | str, task_names: Sequence[str]) -> dict[str, float]:
    """`loss.task_weights` as a mapping: a preset is expanded over `task_names`, a mapping is copied."""
    if isinstance(setting, str):
        if setting not in TASK_WEIGHT_PRESETS:
            # the config rejects unknown names when it is loaded; this guards direct calls
            raise ValueError(f"loss.task_weights: unknown preset {setting!r}; presets: {sorted(TASK_WEIGHT_PRESETS)}")
        return TASK_WEIGHT_PRESETS[setting](task_names)
    return dict(setting)
