"""A rerun redoes exactly the stages whose inputs changed (fashioncomp.stamps): content, never
modification times, decides; a schema of another shape is refused while trained networks exist."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from fashioncomp import stamps
from fashioncomp.config import ConfigError
from fashioncomp.make_submission import make_submission
from fashioncomp.pipeline import (Run, init_run, stage_oof, stage_predict, stage_split, stage_thresholds,
                                  stage_train)
from fashioncomp.refit import stage_refit
from fashioncomp.training.checkpoint import CheckpointError

SETTINGS = ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.epochs=2",
            "train.batch_size=16", "train.deterministic=true", "train.threads=1", "predict.tta=[none]"]


def _run_all(data: Path, run_dir: Path, subs: Path, settings: list[str] = SETTINGS, force: bool = False) -> Path:
    """Every stage, in run_all.sh's order, in this process."""
    run = init_run(run_dir, data, None, settings, force=force)
    stage_split(run)
    stage_train(run, progress=False)
    stage_oof(run)
    stage_refit(run, progress=False)
    stage_thresholds(run)
    stage_predict(run)
    return make_submission(run, subs)


def _submission(sub_dir: Path) -> tuple[str, str]:
    return (sub_dir / "category.csv").read_text(), (sub_dir / "attribute.csv").read_text()


def _edit_one_category(data: Path) -> None:
    frame = pd.read_csv(data / "train.csv", dtype=str, keep_default_na=False)
    frame.loc[5, "category_label"] = str((int(frame.loc[5, "category_label"]) + 1) % 3)
    frame.to_csv(data / "train.csv", index=False)


def test_edited_train_csv_redoes_every_stage_and_equals_a_fresh_run(dataset_copy, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "r"
    _run_all(dataset_copy, run_dir, tmp_path / "subs")
    capsys.readouterr()

    _edit_one_category(dataset_copy)  # a mislabelled row fixed
    edited = _run_all(dataset_copy, run_dir, tmp_path / "subs")
    out = capsys.readouterr().out
    assert "init: train.csv changed since the last run" in out
    assert "split: redone: train.csv changed" in out
    for fold in (0, 1):
        assert f"train: fold {fold}: redone: " in out and f"fold {fold} already trained" not in out
    assert "oof: redone: " in out and "thresholds: redone: " in out and "predict: redone: " in out
    assert "is up to date" not in out

    fresh = _run_all(dataset_copy, tmp_path / "runs" / "fresh", tmp_path / "fresh-subs")
    assert _submission(edited) == _submission(fresh)


def test_edited_test_csv_redoes_the_prediction_only(dataset_copy, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "r"
    _run_all(dataset_copy, run_dir, tmp_path / "subs")
    checkpoint = stamps.digest_file(run_dir / "fold_0" / "best.pt")
    capsys.readouterr()

    test = pd.read_csv(dataset_copy / "test.csv", dtype=str)
    test.iloc[:-1].to_csv(dataset_copy / "test.csv", index=False)  # one row dropped
    sub = _run_all(dataset_copy, run_dir, tmp_path / "subs")
    out = capsys.readouterr().out
    assert "init: test.csv changed since the last run: predict" in out
    assert "fold 0 already trained" in out and "fold 1 already trained" in out
    assert "split: " in out and "oof: " in out and "thresholds: " in out and out.count("is up to date") == 3
    assert "predict: redone: test.csv changed" in out
    assert stamps.digest_file(run_dir / "fold_0" / "best.pt") == checkpoint
    assert len(pd.read_csv(sub / "category.csv")) == len(test) - 1


def test_touched_files_redo_nothing(dataset_copy, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "r"
    first = _submission(_run_all(dataset_copy, run_dir, tmp_path / "subs"))
    capsys.readouterr()
    future = 2_000_000_000
    for path in list(dataset_copy.rglob("*")) + list(run_dir.rglob("*")):
        if path.is_file():
            os.utime(path, (future, future))
    train_csv = dataset_copy / "train.csv"
    train_csv.write_bytes(train_csv.read_text().encode("utf-16"))  # saved again by a Windows editor, same rows
    assert _submission(_run_all(dataset_copy, run_dir, tmp_path / "subs")) == first
    out = capsys.readouterr().out
    assert "redone" not in out and "changed" not in out
    assert "fold 0 already trained" in out and "fold 1 already trained" in out
    assert out.count("is up to date") == 4  # split, oof, thresholds, predict


def test_schema_with_other_attributes_is_refused_until_forced(dataset_copy, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "r"
    _run_all(dataset_copy, run_dir, tmp_path / "subs")
    schema = json.loads((dataset_copy / "schema.json").read_text())
    n = len(schema["attributes"])
    schema["attributes"].append("sequins")
    (dataset_copy / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(ConfigError) as info:
        init_run(run_dir, dataset_copy, None, SETTINGS)
    message = str(info.value)
    assert "\n" not in message and f"attributes {n} -> {n + 1}" in message
    assert "--force" in message and "--name" in message
    assert json.loads((run_dir / "schema.json").read_text())["attributes"][-1] != "sequins"  # left as it was

    capsys.readouterr()
    sub = _run_all(dataset_copy, run_dir, tmp_path / "subs", force=True)
    out = capsys.readouterr().out
    assert "init: schema changed (attributes" in out and "train: fold 0: redone: schema, train.csv changed" in out
    assert len(pd.read_csv(sub / "attribute.csv")) == len(pd.read_csv(dataset_copy / "test.csv"))


def test_renamed_labels_keep_the_trained_networks(dataset_copy, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "r"
    _run_all(dataset_copy, run_dir, tmp_path / "subs")
    schema = json.loads((dataset_copy / "schema.json").read_text())
    schema["categories"][0] = "renamed"
    (dataset_copy / "schema.json").write_text(json.dumps(schema))
    capsys.readouterr()
    _run_all(dataset_copy, run_dir, tmp_path / "subs")
    out = capsys.readouterr().out
    assert "fold 0 already trained" in out and "redone" not in out
    assert json.loads((run_dir / "schema.json").read_text())["categories"][0] == "renamed"


def test_checkpoint_of_another_shape_is_a_clear_error(dataset_copy, tmp_path):
    run_dir = tmp_path / "runs" / "r"
    _run_all(dataset_copy, run_dir, tmp_path / "subs")
    schema = json.loads((run_dir / "schema.json").read_text())
    schema["attributes"].append("sequins")  # the run's own schema edited by hand, behind init's back
    (run_dir / "schema.json").write_text(json.dumps(schema))
    run = Run(run_dir)
    with pytest.raises(CheckpointError, match=r"fold_0/best\.pt: does not fit this run's network .* --force"):
        stage_predict(run, force=True)


# --- the stamp module on its own --------------------------------------------------------------------

def test_up_to_date_needs_outputs_a_record_and_equal_inputs(tmp_path, capsys):
    out, stamp = tmp_path / "out.csv", tmp_path / "stamps" / "s.json"
    inputs = {"train.csv": "a", "config": "b"}
    assert not stamps.up_to_date("s", stamp, inputs, [out], force=False)  # nothing yet: silent
    out.write_text("x")
    assert not stamps.up_to_date("s", stamp, inputs, [out], force=False)
    assert "s: redone: no record of its inputs" in capsys.readouterr().out
    stamps.record(stamp, inputs)
    assert stamps.up_to_date("s", stamp, inputs, [out], force=False)
    assert not stamps.up_to_date("s", stamp, inputs, [out], force=True)
    assert not stamps.up_to_date("s", stamp, {**inputs, "config": "c", "oof.npz": "d"}, [out], force=False)
    assert "s: redone: config, oof.npz changed" in capsys.readouterr().out


def test_a_partial_training_resumes_only_from_its_own_inputs(tmp_path, capsys):
    out, stamp = tmp_path / "fold_0", tmp_path / "stamps" / "fold_0.json"
    outputs = ("done.json", "last.pt", "best.pt", "metrics.csv")
    out.mkdir()
    inputs = {"train.csv": "a"}
    assert not stamps.training_up_to_date("train: fold 0", stamp, inputs, out, outputs, force=False)
    for name in ("last.pt", "metrics.csv"):  # killed after an epoch
        (out / name).write_text(name)
    assert not stamps.training_up_to_date("train: fold 0", stamp, inputs, out, outputs, force=False)
    assert (out / "last.pt").is_file()  # same inputs: resumed
    assert not stamps.training_up_to_date("train: fold 0", stamp, {"train.csv": "b"}, out, outputs, force=False)
    assert not (out / "last.pt").exists() and not (out / "metrics.csv").exists()  # other inputs: started over
    assert "train: fold 0: redone: train.csv changed" in capsys.readouterr().out
    for name in ("done.json", "best.pt"):
        (out / name).write_text(name)
    assert stamps.training_up_to_date("train: fold 0", stamp, {"train.csv": "b"}, out, outputs, force=False)
    assert not stamps.training_up_to_date("train: fold 0", stamp, {"train.csv": "b"}, out, outputs, force=True)
    assert not any((out / name).exists() for name in outputs)


def test_digests_follow_content_not_form(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert stamps.digest_file(a) == stamps.digest_file(b) != stamps.digest_file(tmp_path / "none") == "missing"
    assert stamps.digest_value({"x": 1, "y": [2]}) == stamps.digest_value({"y": [2], "x": 1})
    assert stamps.digest_arrays(["p.jpg", "q.jpg"]) != stamps.digest_arrays(["p.jpg", "r.jpg"])
