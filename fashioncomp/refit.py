"""The refit stage: after cross-validation, one more network trained on every training row.

Each fold model learns from (k-1)/k of the rows; the refit learns from all of them, with the
recipe's schedule (`refit.epochs`, by default `refit.epochs_ratio` x the folds' epoch count,
under a budget what the plan gives it). It has no held-out rows, so it keeps its last epoch, and CV cannot score
it: the OOF scores and the thresholds stay those of the fold models, and the refit only enters
the test prediction, blended with the fold ensemble (`refit.blend`).

    runs/<name>/refit/   best.pt (the last epoch), last.pt, metrics.csv, done.json[, budget.json]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fashioncomp.pipeline import Run
from fashioncomp.training.train import TRAINING_OUTPUTS, FoldInputs, pick_device, train_fold

__all__ = ["stage_refit", "refit_epochs"]


def refit_epochs(cfg: dict) -> int:
    """`refit.epochs`, else `refit.epochs_ratio` x the folds' epochs (at least 1)."""
    rcfg = cfg["refit"]
    if rcfg["epochs"]:
        return int(rcfg["epochs"])
    return max(1, round(float(rcfg["epochs_ratio"]) * int(cfg["train"]["epochs"])))


def stage_refit(run: Run, force: bool = False, progress: bool = True) -> Path | None:
    """Train `refit/best.pt` on every row; None when the recipe has no refit."""
    cfg = run.config
    if not cfg["refit"]["enabled"]:
        print("refit: off (refit.enabled: false)")
        return None
    out = run.refit_dir
    if force:
        for name in TRAINING_OUTPUTS:
            (out / name).unlink(missing_ok=True)
    if (out / "done.json").is_file() and (out / "best.pt").is_file():
        print(f"refit: already trained ({out})")
        return out / "best.pt"
    data = run.train_data()
    images, _ = run.images(data.file_paths)
    epochs, time_limit = refit_epochs(cfg), None
    if run.plan is not None:
        epochs, time_limit = run.budget_schedule(out, 0, is_refit=True)
    inputs = FoldInputs(images, data, run.schema, run.tasks, np.arange(len(data)), np.zeros(0, dtype=np.int64))
    print(f"refit: {len(data)} images (every row), {epochs} epoch(s)"
          + (f", at most {time_limit / 60:.1f} min" if time_limit is not None else ""))
    # its own seed stream: numbered after the folds
    train_fold({**cfg, "train": {**cfg["train"], "epochs": epochs}}, inputs, run.n_folds, out, pick_device(),
               progress=progress, time_limit=time_limit)
    return out / "best.pt"
