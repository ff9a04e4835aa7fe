"""The pipeline's stages, each reading and writing files in one run directory.

    runs/<name>/config.yaml       resolved config (data root included)
    runs/<name>/schema.json       the label schema used
    runs/<name>/folds.csv         file_path,fold
    runs/<name>/fold_<k>/         best.pt, last.pt, metrics.csv, done.json
    runs/<name>/oof.npz           out-of-fold probabilities (+ oof_scores.json)
    runs/<name>/linear.npz        the linear model: OOF probabilities, blend weights, its fit on every row (linear.enabled)
    runs/<name>/thresholds.json   tuned per-attribute thresholds
    runs/<name>/fold_test_probs.npz  the fold models' mean TTA test probabilities (pseudo-labels, predict)
    runs/<name>/test_probs.npz    fold-ensemble + TTA test probabilities, blended with the refit's

    runs/<name>/stamps/           what each stage consumed (fashioncomp.stamps)

A stage whose outputs exist and whose inputs (rows, config keys, upstream artefacts: content
hashes, never modification times) are those it recorded is skipped, so an interrupted run resumes
where it stopped and an edited train.csv redoes exactly what depends on it; `force=True` redoes it.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import yaml

from fashioncomp.budget.planner import Plan, apply_plan, limits_from_config
from fashioncomp.budget.schedule import schedule_fold
from fashioncomp.config import ConfigError, dump_config, load_config
from fashioncomp.data.dataset_reader import DatasetError, LabelledData, read_test, read_train
from fashioncomp.data.images import ImageReadError, build_image_cache, probe_image
from fashioncomp.data.torch_dataset import FileImages
from fashioncomp.errors import DataWarning
from fashioncomp.data.group_discovery import read_train_for_recipe
from fashioncomp.data.schema import Schema
from fashioncomp.data.split import fold_balance, make_folds
from fashioncomp.inference.predict import check_tta, predict_probs
from fashioncomp.io import read_json, read_npz, write_csv, write_json, write_npz, write_text
from fashioncomp.linear.apply import PARAMS as LINEAR_PARAMS, linear_probs
from fashioncomp.linear.blend import weighted_blend
from fashioncomp.linear.features import array_features
from fashioncomp.metrics import ATTRIBUTE_F1, attribute_f1_metric, per_attribute_f1, score_all
from fashioncomp.models import create_model
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp.postprocessing.metric_search import choose_decoding
from fashioncomp.postprocessing.thresholds import tune_thresholds
from fashioncomp import stamps
from fashioncomp.tasks import tasks_from_config
from fashioncomp.training import distributed
from fashioncomp.training.checkpoint import CheckpointError, load_checkpoint
from fashioncomp.training.train import (TRAINING_OUTPUTS, FoldInputs, amp_dtype_for, logged_epoch_seconds,
                                        pick_device, train_fold)


# the config a trained network depends on (its schedule, augmentation, loss, input size, and the
# attribute F1 that picks its best.pt)
TRAINING_CONFIG = ("seed", "data", "model", "loss", "train", "augment", "metrics")
LINEAR_NPZ = "linear.npz"


def labels_digest(data: LabelledData) -> str:
    """The training rows as read: paths and labels (so a re-encoded or touched train.csv is the same)."""
    return stamps.digest_arrays(data.file_paths, data.categories, data.attributes, data.attribute_known)


def linear_outputs(run: "Run") -> dict[str, np.ndarray] | None:
    """The linear stage's `linear.npz` when the recipe blends the linear model (`linear.enabled`), else None."""
    if not run.config["linear"]["enabled"]:
        return None
    return read_npz(run.dir / LINEAR_NPZ, hint=f" (linear.enabled: run `python -m fashioncomp linear --run {run.dir}` first)")


class Run:
    """A run directory and the files its stages exchange."""

    def __init__(self, run_dir: Path | str) -> None:
        self.dir = Path(run_dir)
        config_path = self.dir / "config.yaml"
        if not config_path.is_file():
            raise ConfigError(f"{self.dir} is not a run directory (no config.yaml); create it with `python -m fashioncomp init`")
        # the recipe as saved; a budget plan (plan.json) sets its folds, image size and epochs
        self.recipe_config: dict[str, Any] = load_config(config_path)
        plan_path = self.dir / "plan.json"
        self.plan = Plan.from_dict(read_json(plan_path)) if plan_path.is_file() else None
        self.config = apply_plan(self.recipe_config, self.plan) if self.plan else self.recipe_config
        self.data_root = Path(self.config["data"]["root"])
        self.schema = Schema.from_dict(read_json(self.dir / "schema.json"), str(self.dir / "schema.json"))
        self.tasks = tasks_from_config(self.schema, self.config["data"])

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def cache_dir(self) -> Path:
        return self.dir.parent / ".cache"

    @property
    def folds_csv(self) -> Path:
        return self.dir / "folds.csv"

    def fold_dir(self, fold: int) -> Path:
        return self.dir / f"fold_{fold}"

    @property
    def n_folds(self) -> int:
        return int(self.config["split"]["n_folds"])

    @property
    def decode_groups(self) -> tuple:
        return self.schema.multiclass_groups if self.config["data"]["use_groups"] else ()

    @property
    def attribute_metric(self) -> str:
        """`metrics.attribute_f1`: the attribute F1 the leaderboard is taken to use."""
        return self.config["metrics"]["attribute_f1"]

    def train_data(self) -> LabelledData:
        data, _ = read_train(self.data_root, self.schema, check_images=False)  # init probed them
        return data

    def images(self, file_paths: Sequence[str], on_error: str = "raise") -> tuple[np.ndarray, np.ndarray]:
        size = int(self.config["data"]["image_size"])
        if self.config["data"]["cache"]:
            return build_image_cache(self.data_root, file_paths, size, self.cache_dir, on_error=on_error)
        readable = np.ones(len(file_paths), dtype=bool)
        if on_error == "warn":  # without a cache, find unreadable files now rather than mid-prediction
            for i, rel in enumerate(file_paths):
                try:
                    probe_image(self.data_root / rel)
                except ImageReadError as exc:
                    warnings.warn(f"{exc}; this row is predicted from the model prior", DataWarning, stacklevel=2)
                    readable[i] = False
        return FileImages(self.data_root, file_paths, size), readable

    def folds(self, data: LabelledData) -> np.ndarray:
        if not self.folds_csv.is_file():
            raise DatasetError(f"{self.folds_csv}: file not found (run `python -m fashioncomp split --run {self.dir}` first)")
        frame = pd.read_csv(self.folds_csv, dtype={"file_path": str})
        if list(frame["file_path"]) != data.file_paths:
            raise DatasetError(f"{self.folds_csv} does not match {self.data_root / 'train.csv'} (rows changed?); rerun the split stage with --force")
        return frame["fold"].to_numpy()

    @property
    def refit_dir(self) -> Path:
        return self.dir / "refit"

    def budget_schedule(self, out_dir: Path, folds_left: int, is_refit: bool = False,
                        rows_scale: float = 1.0) -> tuple[int, float]:
        """(epochs, time limit) under the budget plan for the fold or refit in `out_dir`."""
        assert self.plan is not None, "only a run with a budget plan has a schedule"
        limits = limits_from_config(self.recipe_config["budget"], self.n_folds, self.plan.image_size)
        logged = [s for k in range(self.n_folds) for s in logged_epoch_seconds(self.fold_dir(k))]
        return schedule_fold(self.plan, limits, out_dir, sum(logged), len(logged),
                             sum(logged_epoch_seconds(out_dir)), folds_left, is_refit, rows_scale)

    def config_digest(self, *sections: str) -> str:
        """Digest of these config sections as this run resolves them (plan applied); the dataset
        root is left out: the digests of the rows stand for the data."""
        picked = {s: self.config[s] for s in sections}
        if "data" in picked:
            picked["data"] = {k: v for k, v in picked["data"].items() if k != "root"}
        return stamps.digest_value(picked)

    def stamp(self, stage: str) -> Path:
        return stamps.stamp_path(self.dir, stage)

    def training_data_digests(self, data: LabelledData) -> dict[str, str]:
        """The rows a network learns from and the shape of its outputs."""
        return {"train.csv": labels_digest(data), "schema": stamps.digest_value(self.schema.structure())}

    def fold_inputs(self, data: LabelledData, folds: np.ndarray, fold: int) -> dict[str, str]:
        """What fold `fold`'s network is trained from."""
        return {**self.training_data_digests(data),
                "folds.csv": stamps.digest_arrays(folds == fold), "config": self.config_digest(*TRAINING_CONFIG)}

    def checkpoint_digests(self, folds: Sequence[int], refit: bool = False) -> dict[str, str]:
        named = {f"fold_{k}/best.pt": self.fold_dir(k) / "best.pt" for k in folds}
        if refit:
            named["refit/best.pt"] = self.refit_dir / "best.pt"
        return {name: stamps.digest_file(path) for name, path in named.items()}

    def oof_inputs(self, data: LabelledData, folds: np.ndarray, trained: Sequence[int]) -> dict[str, str]:
        return {**self.checkpoint_digests(trained), "train.csv": labels_digest(data),
                "folds.csv": stamps.digest_arrays(folds),
                "config": self.config_digest("data", "model", "predict", "metrics")}

    def load_fold_model(self, fold: int, device: torch.device) -> torch.nn.Module:
        return self.load_model(self.fold_dir(fold) / "best.pt", device)

    def load_model(self, checkpoint: Path, device: torch.device) -> torch.nn.Module:
        model = create_model({**self.config["model"], "checkpoint": None}, self.tasks,
                             image_size=int(self.config["data"]["image_size"]))
        try:
            model.load_state_dict(load_checkpoint(checkpoint, device)["model"])
        except (KeyError, RuntimeError) as exc:  # another schema or network: keys or shapes differ
            raise CheckpointError(f"{checkpoint}: does not fit this run's network ({self.schema.num_categories} "
                                  f"categories, {self.schema.num_attributes} attributes, {self.config['model']['backbone']}): "
                                  f"{str(exc).splitlines()[0][:200]}; retrain it with --force") from None
        model = model.to(device)
        return model.to(memory_format=torch.channels_last) if self.config["train"]["channels_last"] else model


def init_run(run_dir: Path | str, data_root: Path | str, config_path: Path | str | None,
             overrides: Sequence[str] = (), force: bool = False) -> Run:
    """Create (or reopen, if the config is unchanged) a run directory.

    Reopened, it says which dataset files changed since the last init (the stages that depend on
    them redo themselves), and refuses a schema of another shape while trained networks exist:
    they could not be loaded. `force` accepts the new schema; every training stage then retrains."""
    run_dir = Path(run_dir)
    config = load_config(config_path, overrides)
    config["data"]["root"] = str(Path(data_root).resolve())
    check_tta(config["predict"]["tta"])
    data_root = Path(config["data"]["root"])
    if config["data"]["schema"] is not None:
        config["data"]["schema"] = str(Path(config["data"]["schema"]).resolve())
    # validates every row before anything is written
    data, schema = read_train_for_recipe(data_root, config["data"], note=f"edit {run_dir / 'schema.json'} and pass it "
                                      "back with --set data.schema=FILE to override")
    test_paths = read_test(data_root) if (data_root / "test.csv").is_file() else []  # before any training
    text = dump_config(config)
    config_file = run_dir / "config.yaml"
    if config_file.is_file():
        old = yaml.safe_load(config_file.read_text())
        if old != config:
            changed = sorted(_diff_keys(old, config))
            raise ConfigError(
                f"{run_dir} already exists with a different config (changed: {', '.join(changed)}). "
                "Use another --name, or delete that directory to start it again."
            )
    else:
        write_text(config_file, text)
    schema_file = run_dir / "schema.json"
    if schema_file.is_file():
        _check_schema_change(run_dir, Schema.from_dict(read_json(schema_file), str(schema_file)), schema, force)
    write_json(schema_file, schema.to_dict())
    run = Run(run_dir)
    _note_dataset_changes(run, data, test_paths)
    return run


def _trained_networks(run_dir: Path) -> list[Path]:
    return sorted(p for pattern in ("fold_*/*.pt", "refit/*.pt") for p in run_dir.glob(pattern))


def _check_schema_change(run_dir: Path, old: Schema, new: Schema, force: bool) -> None:
    changes = old.structure_changes(new)
    trained = _trained_networks(run_dir)
    if changes and trained and not force:
        raise ConfigError(
            f"the dataset's schema changed since {run_dir} trained ({'; '.join(changes)}): its networks have the old "
            "shape and cannot be reused. Start the run again with --force (run_all.sh --force), or use a new --name.")
    if changes and trained:
        print(f"init: schema changed ({'; '.join(changes)}): accepted (--force); the stages that depend on it are redone")


def _note_dataset_changes(run: Run, data: LabelledData, test_paths: Sequence[str]) -> None:
    """Print which dataset files changed since the last init, and what they make the stages redo."""
    now = {**run.training_data_digests(data), "test.csv": stamps.digest_arrays(test_paths)}
    path = run.stamp("init")
    changes = stamps.changed_inputs(path, now)
    if path.is_file() and changes:
        redo = "split, train, oof, refit, thresholds, predict" if set(changes) - {"test.csv"} else "predict (and a pseudo-labelled refit)"
        print(f"init: {', '.join(changes)} changed since the last run: {redo} will be redone where their inputs differ")
    stamps.record(path, now)


def _diff_keys(a: Any, b: Any, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for key in set(a) | set(b):
            out |= _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}


def stage_split(run: Run, force: bool = False) -> np.ndarray:
    data = run.train_data()
    inputs = {"train.csv": labels_digest(data), "config": run.config_digest("split")}
    if stamps.up_to_date("split", run.stamp("split"), inputs, [run.folds_csv], force):
        print(f"split: {run.folds_csv} is up to date")
        return run.folds(data)
    cfg = run.config["split"]
    folds = make_folds(data, run.schema.num_categories, cfg["n_folds"], cfg["seed"])
    write_csv(run.folds_csv, pd.DataFrame({"file_path": data.file_paths, "fold": folds}))
    stamps.record(run.stamp("split"), inputs)
    names = list(run.schema.categories) + list(run.schema.attributes)
    print(f"split: {cfg['n_folds']} folds -> {run.folds_csv}\nlabel counts per fold:")
    with pd.option_context("display.width", 200, "display.max_columns", 60):
        print(fold_balance(data, folds, names).T.to_string())
    return folds


def stage_train(run: Run, folds_to_train: Sequence[int] | None = None, force: bool = False,
                progress: bool = True) -> None:
    dist = distributed.setup()  # no-op unless started by torchrun
    data = run.train_data()
    folds = run.folds(data)
    with distributed.main_first():  # rank 0 builds the image cache, then the other ranks open it
        images, _ = run.images(data.file_paths)
    device = dist.device()
    wanted = list(range(run.n_folds)) if folds_to_train is None else list(folds_to_train)
    for fold in wanted:
        if not 0 <= fold < run.n_folds:
            raise ConfigError(f"--folds: fold {fold} does not exist (this run has folds 0..{run.n_folds - 1})")
        out = run.fold_dir(fold)
        done = stamps.training_up_to_date(f"train: fold {fold}", run.stamp(f"fold_{fold}"),
                                          run.fold_inputs(data, folds, fold), out, TRAINING_OUTPUTS, force,
                                          is_main=dist.is_main)
        distributed.barrier()
        if done:
            distributed.print_main(f"train: fold {fold} already trained ({out})")
            continue
        inputs = FoldInputs(images, data, run.schema, run.tasks, np.flatnonzero(folds != fold), np.flatnonzero(folds == fold))
        distributed.print_main(f"train: fold {fold}: {len(inputs.train_index)} train / {len(inputs.val_index)} val "
                               f"images on {device}" + (f" x {dist.world_size} processes" if dist.enabled else ""))
        cfg, time_limit = run.config, None
        if run.plan is not None:
            folds_left = sum(not (run.fold_dir(k) / "done.json").is_file() for k in range(run.n_folds))
            epochs, time_limit = run.budget_schedule(out, folds_left)
            cfg = {**cfg, "train": {**cfg["train"], "epochs": epochs}}
            distributed.print_main(f"train: fold {fold}: budget allows {epochs} epoch(s) (planned {run.plan.epochs}), "
                                   f"at most {time_limit / 60:.1f} min")
        train_fold(cfg, inputs, fold, out, device, progress=progress, time_limit=time_limit)


def trained_folds(run: Run) -> list[int]:
    folds = [k for k in range(run.n_folds) if (run.fold_dir(k) / "best.pt").is_file()]
    if not folds:
        raise ConfigError(f"{run.dir}: no trained fold (run the train stage first)")
    return folds


def _predict(run: Run, model: torch.nn.Module, images: Any, index: np.ndarray, tta: Sequence[str],
             device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    cfg = run.config
    return predict_probs(model, images, index, run.tasks, run.schema.num_attributes, device, tta=tta,
                         batch_size=cfg["predict"]["batch_size"], channels_last=cfg["train"]["channels_last"],
                         amp_dtype=amp_dtype_for(device, cfg["train"]["amp"]))


def stage_oof(run: Run, force: bool = False) -> dict[str, float]:
    """Each fold's best model predicts its held-out fold (with the configured TTA)."""
    out = run.dir / "oof.npz"
    trained = trained_folds(run)
    data = run.train_data()
    folds = run.folds(data)
    inputs = run.oof_inputs(data, folds, trained)
    if stamps.up_to_date("oof", run.stamp("oof"), inputs, [out, run.dir / "oof_scores.json"], force):
        print(f"oof: {out} is up to date")
        return read_json(run.dir / "oof_scores.json")
    images, _ = run.images(data.file_paths)
    device = pick_device()
    cat = np.full((len(data), run.schema.num_categories), np.nan, dtype=np.float32)
    attr = np.full((len(data), run.schema.num_attributes), np.nan, dtype=np.float32)
    for fold in trained:
        index = np.flatnonzero(folds == fold)
        model = run.load_fold_model(fold, device)
        cat[index], attr[index] = _predict(run, model, images, index, run.config["predict"]["tta"], device)
    covered = ~np.isnan(cat[:, 0])
    if len(trained) < run.n_folds:
        print(f"oof: only folds {trained} are trained; scores cover {covered.sum()} of {len(data)} rows")
    sub = data.subset(np.flatnonzero(covered))
    pred = decode_attributes(attr[covered], 0.5, run.decode_groups)
    scores = score_all(sub.categories, cat[covered], sub.attributes, pred, run.schema.groups, sub.attribute_known,
                       run.attribute_metric)
    scores["rows"] = int(covered.sum())
    write_npz(out, file_path=np.array(data.file_paths), category=cat, attributes=attr, fold=folds)
    write_json(run.dir / "oof_scores.json", scores)
    stamps.record(run.stamp("oof"), inputs)
    print("oof (threshold 0.5): " + format_scores(scores, run.attribute_metric))
    return scores


def format_scores(scores: dict[str, float], attribute_metric: str) -> str:
    """One line of CV scores: category accuracy, the chosen attribute F1 (marked) and the score, then
    the other attribute F1s for comparison."""
    chosen = attribute_f1_metric(attribute_metric)
    others = [m.key for m in ATTRIBUTE_F1.values() if m is not chosen]
    keys = ["category_accuracy", chosen.key, "score"] + others
    return "  ".join(f"{k}{' (metrics.attribute_f1=' + chosen.name + ')' if k == chosen.key else ''} {scores[k]:.4f}"
                     for k in keys if k in scores)


# each attribute's starting threshold maximises one of these on its own (then all are refined together
# for metrics.attribute_f1)
THRESHOLD_METRICS = ("mcc", "f1")


def resolve_at_least_one(setting: bool | str, data: LabelledData) -> bool:
    """`thresholds.at_least_one`: true/false as given; auto = true iff every training image
    with known attributes has at least one (the thresholds stage then keeps an auto rule only if
    it does not lower the OOF attribute F1)."""
    if setting != "auto":
        return bool(setting)
    rows = data.attribute_known.all(axis=1)
    return bool(rows.any() and data.attributes[rows].any(axis=1).all())


def stage_thresholds(run: Run, force: bool = False) -> dict[str, Any]:
    out = run.dir / "thresholds.json"
    oof_path = run.dir / "oof.npz"
    data = run.train_data()
    inputs = {"oof.npz": stamps.digest_file(oof_path), "train.csv": labels_digest(data),
              "config": run.config_digest("thresholds", "data", "metrics", "linear")}
    linear = linear_outputs(run)
    if linear is not None:
        inputs[LINEAR_NPZ] = stamps.digest_file(run.dir / LINEAR_NPZ)
    if stamps.up_to_date("thresholds", run.stamp("thresholds"), inputs, [out], force):
        print(f"thresholds: {out} is up to date")
        return read_json(out)
    cfg = run.config["thresholds"]
    if cfg["metric"] == "mean_f1":  # the per-image mean-F1 search of earlier versions is now metrics.attribute_f1
        raise ConfigError(f"thresholds.metric must be one of {', '.join(THRESHOLD_METRICS)}, got 'mean_f1': every "
                          "metric's thresholds are now refined for metrics.attribute_f1 (samples, the default, is "
                          "the per-image mean-F1); use thresholds.metric=f1")
    if cfg["metric"] not in THRESHOLD_METRICS:
        raise ConfigError(f"thresholds.metric must be one of {', '.join(THRESHOLD_METRICS)}, got {cfg['metric']!r}")
    metric = attribute_f1_metric(run.attribute_metric)
    oof = dict(read_npz(oof_path, hint=f" (run `python -m fashioncomp oof --run {run.dir}` first)"))
    if linear is not None:  # tuned on what the test prediction will be: the networks blended with the linear model
        for task in ("category", "attributes"):
            oof[task] = weighted_blend(oof[task], linear[f"oof_{task}"], float(linear[f"{task}_weight"]))
    # the rule is a candidate when the config or the labels allow it; the metric then judges it
    candidate = resolve_at_least_one(cfg["at_least_one"], data)
    rules = (False, True) if candidate and cfg["at_least_one"] == "auto" else (candidate,)
    covered = ~np.isnan(oof["category"][:, 0])
    sub = data.subset(np.flatnonzero(covered))
    proba = oof["attributes"][covered]
    result = tune_thresholds(sub.attributes, proba, metric=cfg["metric"], min_positives=cfg["min_positives"],
                             mask=sub.attribute_known, attribute_f1=metric.name)
    groups = run.decode_groups
    decoding = choose_decoding(sub.attributes, proba, result.thresholds, metric.name, groups, rules,
                               sub.attribute_known)
    thresholds, at_least_one = decoding.thresholds, decoding.at_least_one
    at_half = decode_attributes(proba, 0.5, groups)
    tuned = decode_attributes(proba, thresholds, groups, at_least_one=at_least_one)
    half_scores = score_all(sub.categories, oof["category"][covered], sub.attributes, at_half, run.schema.groups,
                            sub.attribute_known, metric.name)
    tuned_scores = score_all(sub.categories, oof["category"][covered], sub.attributes, tuned, run.schema.groups,
                             sub.attribute_known, metric.name)
    per_attr_f1 = per_attribute_f1(sub.attributes, tuned, sub.attribute_known)
    positives = (sub.attributes.astype(bool) & sub.attribute_known).sum(axis=0)
    # an attribute with positives that out-of-fold predictions never get right was not learned
    # (merged rare attributes are never predicted by design: data.merge_rare_below)
    merged = set(run.schema.merged)
    unlearned = [j for j in range(run.schema.num_attributes)
                 if positives[j] > 0 and not per_attr_f1[j] > 0 and j not in merged]
    argmax = sorted(i for g in groups for i in g.indices)
    report = {
        "metric": cfg["metric"],
        "attribute_f1": metric.name,
        "thresholds": [float(t) for t in thresholds],
        "global_threshold": float(result.global_threshold),
        "fallback": [bool(f) for f in result.fallback],
        "decoded_by_group_argmax": argmax,
        "at_least_one": at_least_one,
        "at_least_one_setting": cfg["at_least_one"],
        # the chosen attribute F1 after refinement with the rule off / on (the rules considered)
        "at_least_one_scores": {("on" if rule else "off"): value for rule, value in decoding.rule_scores.items()},
        "oof_attribute_f1_at_0.5": half_scores[metric.key],
        "oof_attribute_f1_start": decoding.start_score,  # per-attribute thresholds before the refinement
        "oof_attribute_f1_tuned": tuned_scores[metric.key],
        "oof_mean_f1_at_0.5": half_scores["attribute_mean_f1"],
        "oof_mean_f1_tuned": tuned_scores["attribute_mean_f1"],
        "oof_scores_tuned": tuned_scores,
        "per_attribute_f1_tuned": [None if math.isnan(v) else float(v) for v in per_attr_f1],
        "unlearned": unlearned,
        "linear_weights": None if linear is None else {task: float(linear[f"{task}_weight"])
                                                       for task in ("category", "attributes")},
    }
    write_json(out, report)
    stamps.record(run.stamp("thresholds"), inputs)
    names = run.schema.attributes
    thresholded = [j for j in range(run.schema.num_attributes) if j not in argmax]
    print(f"thresholds ({cfg['metric']}, refined for {metric.label}, metrics.attribute_f1={metric.name}): OOF "
          f"{metric.label} at 0.5 {report['oof_attribute_f1_at_0.5']:.4f} -> per attribute "
          f"{decoding.start_score:.4f} -> refined {decoding.score:.4f}; "
          f"{int(result.fallback[thresholded].sum())} rare attribute(s) start from the global threshold "
          f"{result.global_threshold:.2f}")
    if argmax:
        print(f"  {len(argmax)} attribute(s) in multiclass groups are decoded by the group's argmax")
    if thresholded:
        print("  per-attribute thresholds: " + ", ".join(f"{names[j]} {thresholds[j]:.2f}" for j in thresholded))
    print(f"  at least one attribute per image: {'yes' if at_least_one else 'no'} "
          f"({at_least_one_reason(cfg['at_least_one'], candidate, report['at_least_one_scores'], metric.label)})")
    if merged:
        print(f"  {len(merged)} rare attribute(s) merged into 'other' for training are never predicted: "
              + ", ".join(names[j] for j in sorted(merged)))
    if unlearned:
        print("warning: never predicted right out of fold (not learned): "
              + ", ".join(f"{names[j]} ({int(positives[j])} positives)" for j in unlearned)
              + "; try loss.attribute=asl, more epochs or a larger image size")
    print("CV (tuned): " + format_scores(tuned_scores, metric.name))
    return report


def at_least_one_reason(setting: bool | str, candidate: bool, scores: dict[str, float], label: str) -> str:
    """Why the at-least-one rule is on or off: the config, the labels, or the OOF attribute F1."""
    if setting != "auto":
        return "set in the config"
    if not candidate:
        return "some training images have none"
    on, off = scores["on"], scores["off"]
    verdict = "does not lower" if not on < off else "lowers"
    return (f"every training image has an attribute, and the rule {verdict} OOF {label}: {off:.4f} without, "
            f"{on:.4f} with")


def fold_ensemble_probs(run: Run, images: Any, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, C] category and [N, A] attribute probabilities of rows `index` of `images` (others 0):
    the mean of every trained fold model's, each with the recipe's TTA."""
    device = pick_device()
    trained = trained_folds(run)
    cat = np.zeros((len(images), run.schema.num_categories), dtype=np.float32)
    attr = np.zeros((len(images), run.schema.num_attributes), dtype=np.float32)
    for fold in trained:
        c, a = _predict(run, run.load_fold_model(fold, device), images, index, run.config["predict"]["tta"], device)
        cat[index] += c / len(trained)
        attr[index] += a / len(trained)
    return cat, attr


def fold_test_probs(run: Run, file_paths: Sequence[str], images: Any, readable: np.ndarray,
                    force: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The fold ensemble's probabilities of the readable test rows (`fold_ensemble_probs`), kept in
    `fold_test_probs.npz`: the refit's pseudo-labels and the predict stage then pay for them once."""
    out = run.dir / "fold_test_probs.npz"
    inputs = {**run.checkpoint_digests(trained_folds(run)), "test.csv": stamps.digest_arrays(file_paths),
              "readable": stamps.digest_arrays(readable), "config": run.config_digest("data", "model", "predict")}
    if stamps.up_to_date("fold test probabilities", run.stamp("fold_test_probs"), inputs, [out], force):
        saved = read_npz(out)
        return saved["category"], saved["attributes"]
    cat, attr = fold_ensemble_probs(run, images, np.flatnonzero(readable))
    write_npz(out, category=cat, attributes=attr)
    stamps.record(run.stamp("fold_test_probs"), inputs)
    return cat, attr


def stage_predict(run: Run, force: bool = False) -> Path:
    """Test probabilities: the mean of every fold model's TTA probabilities, blended with the refit
    model's (weight `refit.blend`) when the recipe has one."""
    out = run.dir / "test_probs.npz"
    trained = trained_folds(run)
    test_csv = run.data_root / "test.csv"
    if not test_csv.is_file():
        raise DatasetError(f"{test_csv}: file not found; the predict stage needs the competition's test.csv")
    refit = run.refit_dir / "best.pt" if run.config["refit"]["enabled"] else None
    if refit is not None and not refit.is_file():
        raise ConfigError(f"{refit}: not found; this recipe has refit.enabled, so run "
                          f"`python -m fashioncomp refit --run {run.dir}` first")
    file_paths = read_test(run.data_root)
    inputs = {**run.checkpoint_digests(trained, refit=refit is not None), "test.csv": stamps.digest_arrays(file_paths),
              "config": run.config_digest("data", "model", "predict", "refit", "linear")}
    linear = linear_outputs(run)
    if linear is not None:
        inputs[LINEAR_NPZ] = stamps.digest_file(run.dir / LINEAR_NPZ)
    if stamps.up_to_date("predict", run.stamp("predict"), inputs, [out], force):
        print(f"predict: {out} is up to date")
        return out
    images, readable = run.images(file_paths, on_error="warn")
    index = np.flatnonzero(readable)
    blend = float(run.config["refit"]["blend"]) if refit else 0.0
    cat, attr = fold_test_probs(run, file_paths, images, readable, force)
    if refit is not None:
        device = pick_device()
        c, a = _predict(run, run.load_model(refit, device), images, index, run.config["predict"]["tta"], device)
        cat[index] = weighted_blend(cat[index], c, blend)
        attr[index] = weighted_blend(attr[index], a, blend)
    if linear is not None:  # its fit on every row, applied to the readable test images
        params = {name: linear[f"model_{name}"] for name in LINEAR_PARAMS}
        lin_cat, lin_attr = linear_probs(params, array_features(images[int(i)] for i in index), run.schema.num_categories)
        cat[index] = weighted_blend(cat[index], lin_cat, float(linear["category_weight"]))
        attr[index] = weighted_blend(attr[index], lin_attr, float(linear["attributes_weight"]))
    if not readable.all():
        # unreadable rows get the models' prior: their mean prediction over the training images
        oof = read_npz(run.dir / "oof.npz", hint=f" (run `python -m fashioncomp oof --run {run.dir}` first)")
        cat[~readable] = np.nanmean(oof["category"], axis=0)
        attr[~readable] = np.nanmean(oof["attributes"], axis=0)
        print(f"predict: {int((~readable).sum())} unreadable test image(s) predicted from the model prior")
    write_npz(out, file_path=np.array(file_paths), category=cat, attributes=attr, readable=readable,
              folds=np.array(trained), refit_blend=np.float32(blend))
    stamps.record(run.stamp("predict"), inputs)
    models = f"{len(trained)} fold model(s)" + (f" + the refit on every row (weight {blend:g})" if refit else "")
    if linear is not None:
        models += (f", blended with the linear model (weights {float(linear['category_weight']):g} category, "
                   f"{float(linear['attributes_weight']):g} attributes)")
    print(f"predict: {len(file_paths)} test images x {models} x TTA {run.config['predict']['tta']} -> {out}")
    return out
