"""Budgeted training: epochs and a time limit for each fold, from the plan and what was measured.

Before each fold starts, the epochs already trained (`fold_*/metrics.csv`: training, validation
and best checkpoint) give the real time per epoch; the slowdown it shows against the plan is
applied to the stages still to come (the refit, OOF, test prediction). The training time left is
then shared among the folds not yet trained and the refit in proportion to their planned time
(`replan_epochs`), so a slowdown costs every remaining model the same share of its epochs instead
of falling on the last fold alone. The refit, trained last, gets all the training time the folds
left and fills it (`fill_time`: its epoch count is set again from its own measured epochs),
so neither the folds' slowdown priced into it nor a faster machine leaves minutes unused. The
fold's epoch count is saved in `fold_<k>/budget.json`, so a fold that is interrupted resumes with
the same schedule. The fold also gets a time limit: if the machine slows down mid-fold, it stops
early and keeps its best checkpoint.
"""
from __future__ import annotations

import math
from pathlib import Path

from fashioncomp.budget.planner import Limits, Plan, replan_epochs
from fashioncomp.io import read_json, write_json

__all__ = ["schedule_fold"]

SCALES_WITH_COMPUTE = ("oof", "predict", "linear")  # the refit too: `refit_epoch` below


def schedule_fold(plan: Plan, limits: Limits, fold_dir: Path, train_seconds_spent: float, epochs_done: int,
                  fold_seconds_spent: float, folds_left: int, is_refit: bool = False,
                  rows_scale: float = 1.0) -> tuple[int, float]:
    """(epochs, time limit in seconds) for the fold (or, `is_refit`, the refit) in `fold_dir`.

    `train_seconds_spent` / `epochs_done`: seconds and count of all fold epochs trained so far;
    `fold_seconds_spent`: what this fold itself has used (if resumed); `folds_left` counts it too;
    `rows_scale`: the refit's rows against the training rows planned (pseudo-labels add rows).
    The refit's epoch count is a first guess for `train_fold(fill_time=True)`, which sets it again
    from the measured times of its epochs so that the refit fills its time limit.
    """
    measured = train_seconds_spent / epochs_done if epochs_done else None
    drift = measured / plan.epoch_seconds if measured else 1.0
    # prediction (and the refit, priced by its epochs) slows down as training did; start-ups were measured
    later = sum(v * (drift if k in SCALES_WITH_COMPUTE else 1.0) for k, v in plan.stage_seconds.items()
                if k not in ("train", "refit"))
    train_left = plan.budget_seconds * limits.safety - later - train_seconds_spent
    refit_epoch = plan.refit_epoch_seconds * drift * rows_scale
    if not is_refit:
        # the folds' share of what is left, in proportion to the planned time of the models still to train
        folds_planned = folds_left * plan.epochs * (measured or plan.epoch_seconds)
        train_left *= folds_planned / (folds_planned + plan.refit_epochs * refit_epoch)
    saved = fold_dir / "budget.json"
    if saved.is_file():
        epochs = int(read_json(saved)["epochs"])
    elif is_refit:
        epochs = max(limits.min_epochs, min(limits.max_epochs, math.floor(train_left / refit_epoch)))
    else:
        epochs = replan_epochs(plan, train_left, folds_left, measured, limits)
    if not saved.is_file():
        write_json(saved, {"epochs": epochs, "planned_epochs": plan.refit_epochs if is_refit else plan.epochs,
                           "measured_epoch_seconds": measured,
                           "train_seconds_left": train_left})
    if is_refit:
        return epochs, max(fold_seconds_spent + train_left, refit_epoch * limits.min_epochs)
    per_epoch = measured or plan.epoch_seconds
    # what this fold may spend: the folds' share, minus what the later folds need at this epoch count
    limit = fold_seconds_spent + train_left - (folds_left - 1) * epochs * per_epoch
    return epochs, max(limit, per_epoch * limits.min_epochs)
