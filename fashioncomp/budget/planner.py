"""Fit a whole run into a wall-clock budget, from measured speeds.

The time of every stage is modelled from two speeds measured on this machine for this recipe
(training and inference images/s at one image size, see probe.py) and the dataset's size:

    one epoch of a fold   train rows / train_ips x progressive-resizing factor
                          +  held-out rows / infer_ips   (validation; with train.validate_last N,
                             only N epochs of a fold pay it)
    one epoch of refit    all rows / train_ips x the same factor (refit.epochs_ratio per fold epoch)
    OOF                   train rows x TTA views / infer_ips
    linear model          its folds' fits and the full fit, timed on a sample (linear.enabled)
    test prediction       test rows x TTA views x folds / infer_ips
    fixed                 process start-ups, the image cache, thresholds, submission, report

Speeds scale with the pixel count when the image size changes. Among the fold counts and image
sizes the user allows (one value pins it), the plan takes the largest image size, then the most
folds, that still afford `target_epochs` per fold; if none does, the combination with the most
epochs. Epochs fill what is left of `safety` x budget. During training the measured epoch time
replaces the probe's, and the epochs of the folds not yet started are planned again
(`replan_epochs`), so a machine slower or busier than the probe saw still ends in time.

The plan divides time, not score: no metric can be read before training, so none is modelled
here; each fold's best.pt and the thresholds then follow `metrics.attribute_f1`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from fashioncomp.budget.duration import BudgetError, parse_duration
from fashioncomp.training.progressive import cost_factor

if TYPE_CHECKING:  # the planner runs in inference kernels too, which have no scikit-learn
    from fashioncomp.linear.cost import LinearCost

__all__ = ["BudgetError", "Speeds", "Workload", "Limits", "Plan", "plan_budget", "replan_epochs", "parse_duration",
           "refit_epoch_count"]


@dataclass(frozen=True)
class Speeds:
    """Images per second at `image_size`: training (one step, augmentation included) and inference (one view)."""

    train_ips: float
    infer_ips: float
    image_size: int

    def at(self, image_size: int) -> "Speeds":
        scale = (self.image_size / image_size) ** 2  # convnet cost grows with the pixel count
        return Speeds(self.train_ips * scale, self.infer_ips * scale, image_size)


@dataclass(frozen=True)
class Workload:
    n_train: int
    n_test: int
    tta_views: int
    fixed_seconds: float = 60.0  # stage start-ups, image cache, thresholds, submission, report
    refit: bool = False          # one more network on every row after the folds (refit.enabled)
    refit_ratio: float = 1.0     # its epochs per fold epoch (refit.epochs_ratio)
    progressive: tuple[int, float] = (0, 0.5)  # (train.progressive_from, train.progressive_until)
    validated_epochs: int | None = None  # train.validate_last: epochs of a fold that validate (None: all)
    linear: LinearCost | None = None  # the linear model's costs, timed by the plan stage (linear.enabled)


@dataclass(frozen=True)
class Limits:
    folds: tuple[int, ...]           # allowed fold counts (one value pins it)
    image_sizes: tuple[int, ...]     # allowed image sizes (one value pins it)
    min_epochs: int = 1
    max_epochs: int = 100
    target_epochs: int = 15          # epochs per fold worth more than a larger image or more folds
    safety: float = 0.92             # share of the budget planned; the rest absorbs drift


@dataclass
class Plan:
    budget_seconds: float
    folds: int
    image_size: int
    epochs: int
    speeds: dict[str, float]                     # the probe's speeds at the chosen size
    stage_seconds: dict[str, float] = field(default_factory=dict)  # planned seconds per stage
    refit_epochs: int = 0                        # epochs of the refit on every row (0: no refit)

    @property
    def epoch_seconds(self) -> float:
        """Planned seconds of one epoch of one fold."""
        return self.stage_seconds["train"] / max(1, self.folds * self.epochs)

    @property
    def refit_epoch_seconds(self) -> float:
        """Planned seconds of one epoch of the refit on every row (0 without a refit)."""
        return self.stage_seconds.get("refit", 0.0) / max(1, self.refit_epochs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> "Plan":
        if "refit_epochs" not in raw and "refit" in raw.get("stage_seconds", {}):
            raw = {**raw, "refit_epochs": raw["epochs"]}  # plans written before refit.epochs_ratio
        return Plan(**raw)

    def describe(self) -> str:
        minutes = ", ".join(f"{k} {v / 60:.1f}" for k, v in self.stage_seconds.items())
        refit = f" + refit {self.refit_epochs} epochs on every row" if self.refit_epochs else ""
        return (f"budget {self.budget_seconds / 60:.1f} min -> {self.folds} folds x {self.epochs} epochs{refit} at "
                f"{self.image_size} px (train {self.speeds['train_ips']:.0f} img/s, inference "
                f"{self.speeds['infer_ips']:.0f} img/s); planned minutes: {minutes}")


def epoch_seconds(speeds: Speeds, n_train: int, folds: int, train_cost: float = 1.0,
                  validated_share: float = 1.0) -> float:
    """One epoch of one fold: training on its rows (x `train_cost`, see `cost_factor`), validating the
    rest (in `validated_share` of the epochs, on average)."""
    val_rows = n_train / folds
    return (n_train - val_rows) / speeds.train_ips * train_cost + validated_share * val_rows / speeds.infer_ips


def _fixed_stages(speeds: Speeds, work: Workload, folds: int) -> dict[str, float]:
    models = folds + int(work.refit)
    return {
        "setup and report": work.fixed_seconds,
        "oof": work.n_train * work.tta_views / speeds.infer_ips,
        "predict": work.n_test * work.tta_views * models / speeds.infer_ips,
        **({"linear": work.linear.stage_seconds(work.n_train, work.n_test, folds)} if work.linear else {}),
    }


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def refit_epoch_count(fold_epochs: int, ratio: float) -> int:
    """Epochs of the refit on every row: `refit.epochs_ratio` x the folds' epochs, at least 1."""
    return max(1, round(fold_epochs * ratio))


def _training_seconds(speeds: Speeds, work: Workload, folds: int, epochs: int) -> tuple[float, float, int]:
    """(seconds of the folds' epochs, seconds of the refit's, refit epochs) for `epochs` per fold.

    Progressive resizing makes a training epoch cheaper on average (`cost_factor`); validation
    always runs at the full size.
    """
    start, until = work.progressive
    validated = epochs if work.validated_epochs is None else min(epochs, work.validated_epochs)
    fold_epoch = epoch_seconds(speeds, work.n_train, folds, cost_factor(epochs, speeds.image_size, start, until),
                               validated / epochs if epochs else 1.0)
    folds_seconds = folds * epochs * fold_epoch
    if not work.refit or epochs == 0:
        return folds_seconds, 0.0, 0
    refit_epochs = refit_epoch_count(epochs, work.refit_ratio)
    refit_pass = work.n_train / speeds.train_ips * cost_factor(refit_epochs, speeds.image_size, start, until)
    return folds_seconds, refit_epochs * refit_pass, refit_epochs


def plan_budget(budget_seconds: float, probe: Speeds, work: Workload, limits: Limits) -> Plan:
    """The plan for `budget_seconds`; BudgetError if not even one epoch per fold fits."""
    usable = budget_seconds * limits.safety
    candidates = []
    for size in sorted(set(limits.image_sizes)):
        speeds = probe.at(size)
        for folds in sorted(set(limits.folds)):
            stages = _fixed_stages(speeds, work, folds)
            fixed = sum(stages.values())
            # the most epochs per fold whose training, with the refit's share, fits what is left
            epochs = max((e for e in range(1, limits.max_epochs + 1)
                          if fixed + sum(_training_seconds(speeds, work, folds, e)[:2]) <= usable), default=0)
            need = (fixed + sum(_training_seconds(speeds, work, folds, limits.min_epochs)[:2])) / limits.safety
            candidates.append((epochs, size, folds, speeds, stages, need))
    feasible = [c for c in candidates if c[0] >= limits.min_epochs]
    if not feasible:
        need = min(c[5] for c in candidates)
        raise BudgetError(
            f"a budget of {_duration(budget_seconds)} is too small: at this machine's measured speed, "
            f"{limits.min_epochs} epoch(s) per fold plus prediction and report need at least {_duration(need)} "
            f"(fewer folds via budget.folds or a smaller image via budget.image_sizes need less)")
    rich = [c for c in feasible if c[0] >= limits.target_epochs]
    epochs, size, folds, speeds, stages, _ = (
        max(rich, key=lambda c: (c[1], c[2])) if rich else max(feasible, key=lambda c: (c[0], c[1], c[2])))
    folds_seconds, refit_seconds, refit_epochs = _training_seconds(speeds, work, folds, epochs)
    refit = {"refit": refit_seconds} if work.refit else {}
    stages = {"train": folds_seconds, **refit, **stages}
    return Plan(budget_seconds, folds, size, epochs,
                {"train_ips": speeds.train_ips, "infer_ips": speeds.infer_ips}, stages, refit_epochs)


def replan_epochs(plan: Plan, train_seconds_left: float, folds_left: int, measured_epoch_seconds: float | None,
                  limits: Limits) -> int:
    """Epochs for each fold not yet started, from the training time left and the measured epoch time.

    Never more than planned (a faster machine keeps the plan), never below `min_epochs`.
    """
    per_epoch = measured_epoch_seconds if measured_epoch_seconds else plan.epoch_seconds
    if folds_left <= 0:
        return plan.epochs
    affordable = math.floor(train_seconds_left / (per_epoch * folds_left) + 1e-9)  # an exact fit is a fit
    return max(limits.min_epochs, min(plan.epochs, affordable))


def limits_from_config(budget_cfg: dict[str, Any], n_folds: int, image_size: int) -> Limits:
    """`budget` config section -> Limits; empty lists pin the recipe's own folds / image size."""
    folds: Sequence[int] = budget_cfg["folds"] or [n_folds]
    sizes: Sequence[int] = budget_cfg["image_sizes"] or [image_size]
    return Limits(tuple(int(f) for f in folds), tuple(int(s) for s in sizes), int(budget_cfg["min_epochs"]),
                  int(budget_cfg["max_epochs"]), int(budget_cfg["target_epochs"]), float(budget_cfg["safety"]))


def apply_plan(config: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The recipe `config` with the plan's folds, image size and epochs."""
    return {**config, "split": {**config["split"], "n_folds": plan.folds},
            "data": {**config["data"], "image_size": plan.image_size},
            "train": {**config["train"], "epochs": plan.epochs}}

