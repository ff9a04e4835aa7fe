"""Budgeted training: epochs and a time limit for each fold, from the plan and what was measured.

Before each fold starts, the epochs already trained (`fold_*/metrics.csv`: training, validation
and best checkpoint) give the real time per epoch; the slowdown it shows against the plan is
applied to the prediction stages still to come (OOF, test), and the training time left
is shared among the folds not yet trained (`replan_epochs`); the refit, trained last, gets what
the folds left (more epochs than planned when they ran faster than the probe). The fold's epoch count is saved
in `fold_<k>/budget.json`, so a fold that is interrupted resumes with the same schedule. The
fold also gets a time limit: if the machine slows down mid-fold, it stops early and keeps its
best checkpoint.
"""
from __future__ import annotations

import math
from pathlib import Path

from fashioncomp.budget.planner import Limits, Plan, replan_epochs
from fashioncomp.io import read_json, write_json

__all__ = ["schedule_fold"]

SCALES_WITH_COMPUTE = ("oof", "predict", "refit", "linear")
EXTRA_EPOCH_MARGIN = 1.10  # a refit's epochs beyond the plan must fit 10% slower than priced


def schedule_fold(plan: Plan, limits: Limits, fold_dir: Path, train_seconds_spent: float, epochs_done: int,
                  fold_seconds_spent: float, folds_left: int, is_refit: bool = False,
                  rows_scale: float = 1.0) -> tuple[int, float]:
    """(epochs, time limit in seconds) for the fold (or, `is_refit`, the refit) in `fold_dir`.

    `train_seconds_spent` / `epochs_done`: seconds and count of all fold epochs trained so far;
    `fold_seconds_spent`: what this fold itself has used (if resumed); `folds_left` counts it too;
    `rows_scale`: the refit's rows against the training rows planned (pseudo-labels add rows).
    """
    measured = train_seconds_spent / epochs_done if epochs_done else None
    drift = measured / plan.epoch_seconds if measured else 1.0
    # prediction (and a refit still to come) slows down as training did; start-ups were measured
    still_to_come = sum(v * (drift if k in SCALES_WITH_COMPUTE else 1.0) for k, v in plan.stage_seconds.items()
                        if k != "train" and not (is_refit and k == "refit"))
    train_left = plan.budget_seconds * limits.safety - still_to_come - train_seconds_spent
    refit_epoch = plan.refit_epoch_seconds * drift * rows_scale
    saved = fold_dir / "budget.json"
    if saved.is_file():
        epochs = int(read_json(saved)["epochs"])
    elif is_refit:
        # the refit is last: it takes what the folds left, more than planned if they ran faster; the
        # extra epochs keep a margin, as a refit epoch is priced from the folds' drift, not measured
        affordable = math.floor(train_left / refit_epoch)
        if affordable > plan.refit_epochs:
            affordable = max(plan.refit_epochs, math.floor(train_left / (refit_epoch * EXTRA_EPOCH_MARGIN)))
        epochs = max(limits.min_epochs, min(limits.max_epochs, affordable))
    else:
        epochs = replan_epochs(plan, train_left, folds_left, measured, limits)
    if not saved.is_file():
        write_json(saved, {"epochs": epochs, "planned_epochs": plan.refit_epochs if is_refit else plan.epochs,
                           "measured_epoch_seconds": measured,
                           "train_seconds_left": train_left})
    if is_refit:
        return epochs, max(fold_seconds_spent + train_left, refit_epoch * limits.min_epochs)
    per_epoch = measured or plan.epoch_seconds
    # what this fold may spend: what is left, minus what the later folds need at this epoch count
    limit = fold_seconds_spent + train_left - (folds_left - 1) * epochs * per_epoch
    return epochs, max(limit, per_epoch * limits.min_epochs)
