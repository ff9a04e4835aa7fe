"""What early stopping and checkpoint selection watch on the held-out fold.

`train.early_stop_on` and `train.checkpoint_on` each name a quantity of MONITORS:

    score   the validation score (mean of category accuracy and the chosen attribute F1,
            metrics.attribute_f1), higher is better
    loss    the validation loss, sum_k c_k L_k over the held-out rows with each task's own loss and
            its fixed weight c_k (iMaterialist report: early stopping on the validation loss)

The rule is Keras's EarlyStopping: an epoch improves when the quantity beats the best so far by
more than `train.min_delta`; any smaller change counts as no change, and training stops once
`patience` epochs in a row (config.patience_for: int(max(6, 1 + sqrt(epochs)))) brought none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from fashioncomp.config import ConfigError

# quantity -> True if higher is better
MONITORS: dict[str, bool] = {"score": True, "loss": False}


@dataclass
class Plateau:
    """The best value of one monitored quantity so far and the epochs since it last improved."""

    name: str              # a key of MONITORS; the metrics carry it as `name`, history rows as `val/<name>`
    min_delta: float
    higher_is_better: bool = True
    best: float = math.nan
    bad_epochs: int = 0
    epochs_seen: int = 0
    best_index: int = 0    # the validated epoch (0-based, among those) that set `best`: its checkpoint was kept

    def __post_init__(self) -> None:
        self.best = -math.inf if self.higher_is_better else math.inf

    def update(self, value: float) -> bool:
        """Record one epoch's value; True if it improved on the best by more than min_delta."""
        gain = value - self.best if self.higher_is_better else self.best - value
        self.epochs_seen += 1
        if gain > self.min_delta:
            self.best, self.bad_epochs, self.best_index = value, 0, self.epochs_seen - 1
            return True
        self.bad_epochs += 1
        return False

    def replay(self, history: Sequence[dict[str, Any]]) -> None:
        """Bring the state up to date with the logged epochs of a resumed run."""
        for row in validated(history, self.name):
            self.update(row[f"val/{self.name}"])

    def best_row(self, history: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The logged epoch that set the best value: the checkpoint kept as best.pt (a later epoch
        within min_delta of it is no improvement and was not kept)."""
        return validated(history, self.name)[self.best_index]


def validated(history: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The logged epochs that were validated (train.validate_last skips the earlier ones)."""
    return [row for row in history if f"val/{name}" in row]


def plateau_for(key: str, name: str, min_delta: float) -> Plateau:
    """A Plateau for the quantity `name` given in config key `key` (a ConfigError if unknown)."""
    if name not in MONITORS:
        raise ConfigError(f"{key} must be one of {', '.join(MONITORS)}, got {name!r}")
    return Plateau(name, float(min_delta), MONITORS[name])
