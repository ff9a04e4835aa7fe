"""The refit stage: after cross-validation, one more network trained on every training row.

Each fold model learns from (k-1)/k of the rows; the refit learns from all of them, with the
recipe's schedule (`refit.epochs`, by default `refit.epochs_ratio` x the folds' epoch count,
under a budget what the plan gives it). It has no held-out rows, so it keeps its last epoch, and
CV cannot score it: the OOF scores and the thresholds stay those of the fold models, and the
refit only enters the test prediction, blended with the fold ensemble (`refit.blend`).

The fold ensemble can teach it (fashioncomp.training.teacher): `refit.distill` mixes the folds'
out-of-fold probabilities into its targets (so the oof stage runs first), `refit.pseudo_label`
adds the test images the folds are confident about, with their predicted labels.

    runs/<name>/refit/   best.pt (the last epoch), last.pt, metrics.csv, done.json[, budget.json]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fashioncomp.budget.planner import refit_epoch_count
from fashioncomp.config import ConfigError
from fashioncomp.data.dataset_reader import LabelledData, read_test
from fashioncomp.data.torch_dataset import StackedImages
from fashioncomp.io import read_npz
from fashioncomp import stamps
from fashioncomp.pipeline import TRAINING_CONFIG, Run, fold_test_probs, trained_folds
from fashioncomp.tasks import encode_targets
from fashioncomp.training.teacher import distill_targets, pseudo_labels, targets_from_probabilities
from fashioncomp.training.train import TRAINING_OUTPUTS, FoldInputs, pick_device, train_fold

__all__ = ["stage_refit", "refit_epochs"]


def refit_epochs(cfg: dict[str, Any]) -> int:
    """`refit.epochs`, else `refit.epochs_ratio` x the folds' epochs (at least 1)."""
    rcfg = cfg["refit"]
    if rcfg["epochs"]:
        return int(rcfg["epochs"])
    return refit_epoch_count(int(cfg["train"]["epochs"]), float(rcfg["epochs_ratio"]))


def refit_stamp_inputs(run: Run, data: LabelledData) -> dict[str, str]:
    """What the refit learns from: the rows, the recipe and, when taught, the folds' outputs."""
    rcfg = run.config["refit"]
    inputs = {**run.training_data_digests(data), "config": run.config_digest(*TRAINING_CONFIG, "refit")}
    if rcfg["distill"] > 0:
        inputs["oof.npz"] = stamps.digest_file(run.dir / "oof.npz")
    if rcfg["pseudo_label"]:
        inputs["test.csv"] = stamps.digest_arrays(read_test(run.data_root))
        inputs.update(run.checkpoint_digests(trained_folds(run)))
    return inputs


def taught_inputs(run: Run, data: LabelledData) -> FoldInputs:
    """The refit's rows and targets: every training row of `data` (labels, distilled if asked)
    plus the confident test images under pseudo-labels."""
    rcfg = run.config["refit"]  # its ranges are checked when the config is loaded (config_ranges)
    images, _ = run.images(data.file_paths)
    targets, masks = encode_targets(data, run.tasks)
    n_train = len(data)
    if rcfg["distill"] > 0:
        oof = read_npz(run.dir / "oof.npz", hint=f" (refit.distill needs the out-of-fold predictions: run "
                                                  f"`python -m fashioncomp oof --run {run.dir}` first)")
        if list(oof["file_path"]) != data.file_paths:
            raise ConfigError(f"{run.dir / 'oof.npz'} does not match {run.data_root / 'train.csv'}; rerun the oof stage "
                              "with --force")
        covered = ~np.isnan(oof["category"][:, 0])
        teacher = targets_from_probabilities(np.nan_to_num(oof["category"]), np.nan_to_num(oof["attributes"]), run.tasks)
        targets = distill_targets(targets, teacher, float(rcfg["distill"]), rows=covered)
        print(f"refit: targets = {1 - rcfg['distill']:g} x labels + {rcfg['distill']:g} x the folds' out-of-fold "
              f"probabilities ({int(covered.sum())} of {n_train} rows)")
    if not rcfg["pseudo_label"]:
        return FoldInputs(images, data, run.schema, run.tasks, np.arange(n_train), np.zeros(0, dtype=np.int64),
                          targets=(targets, masks))
    test_paths = read_test(run.data_root)
    test_images, readable = run.images(test_paths, on_error="warn")
    cat, attr = fold_test_probs(run, test_paths, test_images, readable)
    keep, pseudo_targets, pseudo_masks = pseudo_labels(targets_from_probabilities(cat, attr, run.tasks), run.tasks,
                                                       float(rcfg["pseudo_label"]))
    keep &= readable
    print(f"refit: {int(keep.sum())} of {len(test_paths)} test images join with pseudo-labels (the folds' "
          f"confidence >= {rcfg['pseudo_label']:g})")
    targets = {k: np.concatenate([v, pseudo_targets[k]]) for k, v in targets.items()}
    masks = {k: np.concatenate([v, pseudo_masks[k]]) for k, v in masks.items()}
    index = np.concatenate([np.arange(n_train), n_train + np.flatnonzero(keep)])
    return FoldInputs(StackedImages(images, test_images), data, run.schema, run.tasks, index,
                      np.zeros(0, dtype=np.int64), targets=(targets, masks))


def stage_refit(run: Run, force: bool = False, progress: bool = True) -> Path | None:
    """Train `refit/best.pt` on every row; None when the recipe has no refit."""
    cfg = run.config
    if not cfg["refit"]["enabled"]:
        print("refit: off (refit.enabled: false)")
        return None
    out = run.refit_dir
    data = run.train_data()
    if stamps.training_up_to_date("refit", run.stamp("refit"), refit_stamp_inputs(run, data), out, TRAINING_OUTPUTS,
                                  force):
        print(f"refit: already trained ({out})")
        return out / "best.pt"
    inputs = taught_inputs(run, data)
    rows = len(inputs.train_index)
    epochs, time_limit = refit_epochs(cfg), None
    if run.plan is not None:
        # pseudo-labelled rows make its epochs longer than planned
        epochs, time_limit = run.budget_schedule(out, 0, is_refit=True, rows_scale=rows / len(inputs.data))
    print(f"refit: {rows} images ({len(inputs.data)} training rows), {epochs} epoch(s)"
          + (f", at most {time_limit / 60:.1f} min" if time_limit is not None else ""))
    # its own seed stream: numbered after the folds
    train_fold({**cfg, "train": {**cfg["train"], "epochs": epochs}}, inputs, run.n_folds, out, pick_device(),
               progress=progress, time_limit=time_limit, fill_time=time_limit is not None)
    return out / "best.pt"
