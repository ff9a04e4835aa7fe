"""A trained run as a Kaggle dataset, and back into a run directory inside an inference kernel.

The dataset is flat (Kaggle's uploader skips or zips sub-folders):

    config.yaml  schema.json  thresholds.json  [oof.npz]  [plan.json]  fold_<k>_best.pt ...  [refit_best.pt]
    dataset-metadata.json

`oof.npz` is kept because predict gives unreadable test images the models' mean OOF prediction.
In the kernel, `attach_weights` rebuilds runs/<name>/ with config.yaml's data.root re-pointed at
the competition data there; the checkpoints are linked, not copied (they stay read-only input).
"""
from __future__ import annotations

import re
from pathlib import Path

from fashioncomp.config import dump_config, load_config
from fashioncomp.data.schema import Schema
from fashioncomp.errors import UserError
from fashioncomp.io import copy_file, read_json, write_json, write_text

REQUIRED_FILES = ("config.yaml", "schema.json", "thresholds.json")
# plan.json: a budget's folds, image size and epochs; linear.npz: the linear model (linear.enabled)
OPTIONAL_FILES = ("oof.npz", "plan.json", "linear.npz")
REFIT_CHECKPOINT = "refit_best.pt"          # refit/best.pt, the network trained on every row
FLAT_CHECKPOINT = "fold_{fold}_best.pt"
CHECKPOINT_PATTERNS = (re.compile(r"fold_(\d+)_best\.pt"), re.compile(r"fold_(\d+)/best\.pt"))
DATASET_METADATA = "dataset-metadata.json"


class WeightsError(UserError):
    """A run or a weights dataset lacks what inference needs."""


def dataset_metadata(dataset_id: str, title: str) -> dict:
    """The fields `kaggle datasets create` reads."""
    return {"title": title, "id": dataset_id, "licenses": [{"name": "CC0-1.0"}]}


def trained_checkpoints(run_dir: Path) -> dict[int, Path]:
    """fold -> best.pt of a run directory (nested) or a weights dataset (flat)."""
    found: dict[int, Path] = {}
    for path in sorted(run_dir.rglob("*best.pt")):
        rel = path.relative_to(run_dir).as_posix()
        for pattern in CHECKPOINT_PATTERNS:
            match = pattern.fullmatch(rel)
            if match:
                found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def export_weights(run_dir: Path | str, out_dir: Path | str, dataset_id: str, title: str) -> Path:
    """Copy what predict + make_submission need from a finished run into a dataset folder."""
    from fashioncomp.pipeline import Run  # torch & co.: imported only where a run is read

    run = Run(run_dir)  # validates config.yaml and schema.json
    missing = [name for name in REQUIRED_FILES if not (run.dir / name).is_file()]
    if missing:
        raise WeightsError(f"{run.dir}: {', '.join(missing)} not found; finish the run (train, oof, thresholds) first")
    checkpoints = trained_checkpoints(run.dir)
    if not checkpoints:
        raise WeightsError(f"{run.dir}: no fold_<k>/best.pt; train at least one fold first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        if (run.dir / name).is_file():
            copy_file(run.dir / name, out / name)
    for fold, path in checkpoints.items():
        copy_file(path, out / FLAT_CHECKPOINT.format(fold=fold))
    if (run.dir / "refit" / "best.pt").is_file():
        copy_file(run.dir / "refit" / "best.pt", out / REFIT_CHECKPOINT)
    write_json(out / DATASET_METADATA, dataset_metadata(dataset_id, title))
    print(f"weights: {len(checkpoints)} fold checkpoint(s) of {run.dir} -> {out} (dataset {dataset_id})")
    return out


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    try:
        link.symlink_to(target.resolve())
    except OSError:  # file systems without symlinks
        copy_file(target, link)


def attach_weights(weights_dir: Path | str, data_root: Path | str, run_dir: Path | str) -> Path:
    """Turn a weights dataset into a run directory whose data.root is `data_root` (the predict stage reads it)."""
    weights, data, run_dir = Path(weights_dir), Path(data_root).resolve(), Path(run_dir)
    missing = [name for name in REQUIRED_FILES if not (weights / name).is_file()]
    if missing:
        raise WeightsError(f"{weights}: {', '.join(missing)} not found; is this a dataset made by "
                           "`python -m fashioncomp.kaggle build-inference`?")
    checkpoints = trained_checkpoints(weights)
    if not checkpoints:
        raise WeightsError(f"{weights}: no fold_<k>_best.pt checkpoint")
    schema = Schema.load(weights / "schema.json")
    if (data / "schema.json").is_file() and Schema.load(data / "schema.json").to_dict() != schema.to_dict():
        raise WeightsError(f"{data / 'schema.json'} differs from the schema the checkpoints in {weights} were trained with")
    config = load_config(weights / "config.yaml")
    plan = weights / "plan.json"
    n_folds = int(read_json(plan)["folds"] if plan.is_file() else config["split"]["n_folds"])
    unused = [k for k in checkpoints if k >= n_folds]
    if unused:
        raise WeightsError(f"{weights}: checkpoints for folds {unused}, but its config has split.n_folds={n_folds}")
    config["data"]["root"] = str(data)
    write_text(run_dir / "config.yaml", dump_config(config))
    for name in REQUIRED_FILES[1:] + OPTIONAL_FILES:
        if (weights / name).is_file():
            copy_file(weights / name, run_dir / name)
    for fold, path in checkpoints.items():
        _link(path, run_dir / f"fold_{fold}" / "best.pt")
    if (weights / REFIT_CHECKPOINT).is_file():
        _link(weights / REFIT_CHECKPOINT, run_dir / "refit" / "best.pt")
    # predictions from earlier weights in this folder would otherwise look up to date
    (run_dir / "test_probs.npz").unlink(missing_ok=True)
    print(f"attach-weights: {run_dir} <- {weights} (folds {list(checkpoints)}; data {data})")
    return run_dir
