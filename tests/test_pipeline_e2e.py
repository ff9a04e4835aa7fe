"""One end-to-end run of every stage on a tiny synthetic set with timm's tiny test_resnet."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fashioncomp.data.dataset_reader import read_test
from fashioncomp.data.schema import Schema

REPO = Path(__file__).resolve().parents[1]


def test_run_all_end_to_end_and_resume(tiny_dataset, tmp_path):
    started = time.time()
    cmd = ["bash", str(REPO / "pipelines" / "run_all.sh"), "--data", str(tiny_dataset),
           "--config", str(REPO / "configs" / "default.yaml"), "--name", "tiny",
           "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "subs"),
           "--set", "model.backbone=test_resnet", "--set", "train.epochs=2", "--set", "split.n_folds=2",
           "--set", "data.image_size=32"]
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "oof (threshold 0.5): category_accuracy" in done.stdout
    assert time.time() - started < 180

    run = tmp_path / "runs" / "tiny"
    for name in ["config.yaml", "schema.json", "folds.csv", "oof.npz", "oof_scores.json", "thresholds.json",
                 "test_probs.npz", "fold_0/best.pt", "fold_1/metrics.csv"]:
        assert (run / name).is_file(), name
    schema = Schema.load(tiny_dataset / "schema.json")
    test_paths = read_test(tiny_dataset)

    cat = pd.read_csv(tmp_path / "subs" / "tiny" / "category.csv", keep_default_na=False)
    attr = pd.read_csv(tmp_path / "subs" / "tiny" / "attribute.csv", keep_default_na=False, dtype=str)
    assert list(cat.columns) == ["file_path", "category_label"]
    assert list(attr.columns) == ["file_path", "attribute_label"]
    assert list(cat["file_path"]) == test_paths == list(attr["file_path"])
    assert cat["category_label"].between(0, schema.num_categories - 1).all()
    for text in attr["attribute_label"]:
        indices = [int(t) for t in text.split()]
        assert indices == sorted(indices) and all(0 <= i < schema.num_attributes for i in indices)
        for group in schema.multiclass_groups:
            assert len(set(indices) & set(group.indices)) <= 1

    probs = np.load(run / "test_probs.npz")
    assert probs["attributes"].shape == (len(test_paths), schema.num_attributes)
    np.testing.assert_allclose(probs["category"].sum(axis=1), 1.0, atol=1e-4)

    # a second run reuses every finished stage
    mtime = (run / "fold_0" / "best.pt").stat().st_mtime
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "fold 0 already trained" in again.stdout and "oof: " in again.stdout and "is up to date" in again.stdout
    assert (run / "fold_0" / "best.pt").stat().st_mtime == mtime


def test_run_without_schema_reports_what_it_decided(dataset_copy, tmp_path):
    """No schema.json: groups are found in the labels, and the run says what it decided (here for
    the macro-F1 reading of the leaderboard's attribute metric)."""
    (dataset_copy / "schema.json").unlink()
    cmd = ["bash", str(REPO / "pipelines" / "run_all.sh"), "--data", str(dataset_copy),
           "--config", str(REPO / "configs" / "default.yaml"), "--name", "noschema",
           "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "subs"),
           "--set", "model.backbone=test_resnet", "--set", "train.epochs=1", "--set", "split.n_folds=2",
           "--set", "data.image_size=32", "--set", "thresholds.metric=f1", "--set", "metrics.attribute_f1=macro"]
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "the schema declares no attribute groups; found 1 in the training labels" in out
    assert "edit " in out and "--set data.schema=FILE" in out
    assert "group1 (multiclass, found in the labels): attribute_16, attribute_17" in out
    assert "per-attribute thresholds: attribute_0 " in out
    assert "thresholds (f1, refined for attribute macro-F1, metrics.attribute_f1=macro)" in out
    assert "oof (threshold 0.5): category_accuracy" in out and "attribute_macro_f1 (metrics.attribute_f1=macro)" in out

    run = tmp_path / "runs" / "noschema"
    saved = Schema.load(run / "schema.json")
    assert [(g.indices, g.discovered) for g in saved.groups] == [((16, 17), True)]
    thresholds = json.loads((run / "thresholds.json").read_text())
    assert thresholds["metric"] == "f1" and thresholds["attribute_f1"] == "macro"
    assert thresholds["at_least_one_setting"] == "auto" and thresholds["decoded_by_group_argmax"] == [16, 17]
    # every training image has an attribute, so the rule was a candidate, judged by the OOF macro-F1
    on, off = thresholds["at_least_one_scores"]["on"], thresholds["at_least_one_scores"]["off"]
    assert thresholds["at_least_one"] is (on >= off)
    assert (f"at least one attribute per image: {'yes' if on >= off else 'no'} (every training image has an "
            f"attribute, and the rule {'does not lower' if on >= off else 'lowers'} OOF attribute macro-F1") in out
    assert thresholds["oof_attribute_f1_tuned"] >= thresholds["oof_attribute_f1_start"]
    assert thresholds["oof_attribute_f1_tuned"] == thresholds["oof_scores_tuned"]["attribute_macro_f1"]
    attr = pd.read_csv(tmp_path / "subs" / "noschema" / "attribute.csv", keep_default_na=False, dtype=str)
    if thresholds["at_least_one"]:
        assert all(text.strip() for text in attr["attribute_label"])  # the at-least-one rule held


def test_run_all_with_a_budget_plans_and_ends_within_it(tiny_dataset, tmp_path):
    budget = 150  # seconds, for the whole pipeline (about 100 of them start-ups on a busy 2-core machine)
    cmd = ["bash", str(REPO / "pipelines" / "run_all.sh"), "--data", str(tiny_dataset),
           "--config", str(REPO / "configs" / "default.yaml"), "--name", "budget",
           "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "subs"), "--budget", f"{budget}s",
           "--set", "model.backbone=test_resnet", "--set", "data.image_size=32", "--set", "budget.folds=[2, 3]",
           "--set", "budget.max_epochs=30"]
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    started = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    wall = time.time() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert wall <= budget * 1.10, f"{wall:.0f}s for a {budget}s budget"
    assert "plan (probe" in done.stdout and "budget allows" in done.stdout
    run = tmp_path / "runs" / "budget"
    plan = json.loads((run / "plan.json").read_text())
    assert plan["folds"] in (2, 3) and 1 <= plan["epochs"] <= 30
    assert (run / "fold_0" / "budget.json").is_file()
    report = (run / "report.md").read_text()
    time_section = report.split("## Time")[1].split("\n## ")[0]
    assert "| train |" in time_section and "| **total** |" in time_section
    timings = json.loads((run / "timings.json").read_text())
    assert {"init", "plan", "split", "train", "oof", "thresholds", "predict", "submission"} <= set(timings)
