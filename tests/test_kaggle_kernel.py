"""Kernel options within Kaggle's limits, checked on built scripts without running a pipeline:
--folds, --budget, --convert, --code-competition, the stage environment (albumentations offline).

The kernels that really run (split folds, inference requirements) are in tests/test_kaggle.py.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fashioncomp.budget.duration import parse_duration
from fashioncomp.kaggle import kernel_script
from fashioncomp.kaggle.__main__ import main as kaggle_main
from fashioncomp.pipeline import Run, init_run
from fashioncomp.submission import CODE_COMPETITION_FILE, submission_files

REPO = Path(__file__).resolve().parents[1]
COMPETITION = "fashion-tiny"
KERNEL_ID = "tester/fashioncomp-tiny"
TINY = ["--set", "split.n_folds=3", "--set", "data.image_size=32"]


def cli(*args: object) -> int:
    return kaggle_main([str(a) for a in args])


def build(tmp_path: Path, *args: object) -> int:
    return cli("build", "--config", REPO / "configs" / "default.yaml", "--competition", COMPETITION,
               "--kernel-id", KERNEL_ID, *TINY, *args, "--out", tmp_path / "k")


def load_built(tmp_path: Path) -> ModuleType:
    """The built script as a module: its SETTINGS, PAYLOAD and functions, as the kernel has them."""
    spec = importlib.util.spec_from_file_location("built_kernel", tmp_path / "k" / "fashioncomp-tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def recorded_stages() -> tuple:
    """Stage commands a kernel function would run, not run."""
    calls: list = []

    def record(command: list, env: dict, cwd: Path) -> None:
        calls.append([str(part) for part in command])

    return calls, record


# ------------------------------------------------------------------------------ --folds


def test_build_folds_are_checked_against_the_recipe(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(tmp_path, "--folds", "3") == 2
    assert "--folds: fold(s) 3 given; this recipe has folds 0..2 (split.n_folds)" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()
    assert build(tmp_path, "--folds", "2,0,2") == 0
    assert load_built(tmp_path).SETTINGS["folds"] == [0, 2]
    assert build(tmp_path, "--folds", "all") == 0
    assert load_built(tmp_path).SETTINGS["folds"] is None


def test_partial_kernel_trains_its_folds_and_leaves_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             recorded_stages: tuple) -> None:
    """Fold 2 of 3, with a kernel attached that finished fold 0: init, split, pick-up, train fold 2, stop."""
    calls, record = recorded_stages
    assert build(tmp_path, "--folds", "2", "--kernel-sources", "tester/fold-zero") == 0
    kernel = load_built(tmp_path)
    source = tmp_path / "input" / "fold-zero" / "runs" / "default"
    (source / "fold_0").mkdir(parents=True)
    (tmp_path / "input" / COMPETITION).mkdir()
    (tmp_path / "input" / COMPETITION / "train.csv").write_text("")
    monkeypatch.setenv(kernel.INPUT_ENV, str(tmp_path / "input"))
    monkeypatch.setenv(kernel.WORKING_ENV, str(tmp_path / "working"))
    monkeypatch.setattr(kernel, "run_stage", record)

    run, submitted = kernel.train_and_predict(tmp_path / "code", {}, tmp_path / "working" / "runs",
                                              tmp_path / "working" / "submissions")
    assert not submitted and run == tmp_path / "working" / "runs" / "default"
    stages = [c[3] if c[2] == "fashioncomp" else c[2] for c in calls]
    assert stages == ["init", "split", "fashioncomp.kaggle.attached_folds", "train"]
    assert calls[2][-2:] == ["--from", str(source)] and calls[3][-2:] == ["--folds", "2"]

    # the same kernel once folds 0 and 1 are there (attached or trained): it runs the whole pipeline
    calls.clear()
    for k in (0, 1):
        (run / f"fold_{k}").mkdir(parents=True)
        (run / f"fold_{k}" / "best.pt").write_bytes(b"")
        (run / f"fold_{k}" / "done.json").write_text("{}")
    _, submitted = kernel.train_and_predict(tmp_path / "code", {}, tmp_path / "working" / "runs",
                                            tmp_path / "working" / "submissions")
    assert submitted and calls[-1][:2] == ["bash", str(tmp_path / "code" / "pipelines" / "run_all.sh")]


def test_a_plain_kernel_runs_run_all_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          recorded_stages: tuple) -> None:
    calls, record = recorded_stages
    assert build(tmp_path) == 0
    kernel = load_built(tmp_path)
    (tmp_path / "input" / COMPETITION).mkdir(parents=True)
    (tmp_path / "input" / COMPETITION / "train.csv").write_text("")
    monkeypatch.setenv(kernel.INPUT_ENV, str(tmp_path / "input"))
    monkeypatch.setattr(kernel, "run_stage", record)
    _, submitted = kernel.train_and_predict(tmp_path / "code", {}, tmp_path / "runs", tmp_path / "subs")
    assert submitted and len(calls) == 1 and calls[0][0] == "bash"


# ------------------------------------------------------------------------------ --budget


def test_budget_reaches_the_kernels_pipeline(tmp_path: Path, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch,
                                             recorded_stages: tuple) -> None:
    calls, record = recorded_stages
    assert build(tmp_path, "--budget", "2h", "--set", "budget.folds=[3,4]", "--folds", "1",
                 "--kernel-sources", "tester/first") == 0
    kernel = load_built(tmp_path)
    assert kernel.SETTINGS["budget"] == "2h"
    # the config inside the script has the budget: run_all.sh's plan stage reads it from the run
    kernel.extract_payload(tmp_path / "code")
    run = init_run(tmp_path / "runs" / "default", tiny_dataset, tmp_path / "code" / "config.yaml")
    assert parse_duration(Run(run.dir).recipe_config["budget"]["minutes"]) == 2 * 3600

    # a later kernel keeps the first kernel's plan (its folds' image size and epochs), then plans
    first = tmp_path / "input" / "first" / "runs" / "default"
    first.mkdir(parents=True)
    (first / "plan.json").write_text('{"folds": 4}')
    monkeypatch.setenv(kernel.INPUT_ENV, str(tmp_path / "input"))
    monkeypatch.setattr(kernel, "run_stage", record)
    later = kernel.prepare_folds(tmp_path / "code", {}, tiny_dataset, run.dir, [first])
    assert (run.dir / "plan.json").read_text() == '{"folds": 4}'
    assert [c[3] if c[2] == "fashioncomp" else c[2] for c in calls] == [
        "init", "plan", "split", "fashioncomp.kaggle.attached_folds"]
    assert later == [0, 2, 3], "the plan's fold count, not the recipe's split.n_folds=3"


def test_build_refuses_a_budget_that_is_no_duration(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(tmp_path, "--budget", "soon") == 2
    assert "budget" in capsys.readouterr().err and not (tmp_path / "k").exists()


# ------------------------------------------------------------------------------ --convert


def test_kernel_runs_the_converter_on_the_mounted_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernel_script.INPUT_ENV, str(tmp_path / "input"))
    monkeypatch.setenv(kernel_script.WORKING_ENV, str(tmp_path / "working"))
    (tmp_path / "input" / COMPETITION / "raw").mkdir(parents=True)
    monkeypatch.setattr(kernel_script, "SETTINGS", {"competition": COMPETITION, "data_subdir": "raw",
                                                    "convert": {"name": "deepfashion", "options": ["--val-as", "train"]}})
    calls = []

    def fake_converter(command: list, env: dict, cwd: Path) -> None:
        calls.append([str(part) for part in command])
        Path(command[5]).mkdir(parents=True, exist_ok=True)
        (Path(command[5]) / "train.csv").write_text("")

    monkeypatch.setattr(kernel_script, "run_stage", fake_converter)
    root = kernel_script.dataset_root("train.csv", tmp_path / "code", {})
    assert root == tmp_path / "working" / "data"
    assert calls == [[sys.executable, "-m", "fashioncomp.convert", "deepfashion", str(tmp_path / "input" / COMPETITION / "raw"),
                      str(tmp_path / "working" / "data"), "--val-as", "train"]]
    with pytest.raises(kernel_script.KernelError, match="converter 'deepfashion' did not write it"):
        kernel_script.dataset_root("test.csv", tmp_path / "code", {})


@pytest.mark.parametrize("args, message", [
    (["--convert", "no-such-format"], "--convert: unknown converter 'no-such-format'; known: csv, deepfashion, json"),
    (["--convert-options", "--val-as train"], "--convert-options needs --convert NAME"),
    (["--convert", "deepfashion", "--convert-options", "--val-as sideways"], "invalid choice: 'sideways'"),
    (["--convert", "deepfashion", "--convert-options", "--val-as 'train"], "--convert-options: No closing quotation"),
    (["--convert", "csv", "--convert-options", "--category-col c"], "required: --image-col"),
])
def test_build_checks_the_converter(tmp_path: Path, capsys: pytest.CaptureFixture, args: list, message: str) -> None:
    assert build(tmp_path, *args) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "k").exists()


def test_build_puts_the_converter_in_the_kernel(tmp_path: Path) -> None:
    assert build(tmp_path, "--convert", "deepfashion", "--convert-options", "--val-as 'train'") == 0
    assert load_built(tmp_path).SETTINGS["convert"] == {"name": "deepfashion", "options": ["--val-as", "train"]}


# ------------------------------------------------------------------------------ submission files


def test_kernel_collects_the_formats_files_and_kaggles_submission_csv(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run, submissions, working = tmp_path / "runs" / "r", tmp_path / "subs", tmp_path / "working"
    (submissions / "r").mkdir(parents=True)
    working.mkdir()
    (submissions / "r" / "preds.csv").write_text("image_id,label_id\n")
    monkeypatch.setattr(kernel_script, "SETTINGS", {"submission_outputs": {"preds.csv": "submission.csv"}})
    kernel_script.collect_outputs(run, submissions, working, submitted=True)
    assert (working / "submission.csv").read_text() == "image_id,label_id\n"
    assert not (working / "preds.csv").exists()

    partial = tmp_path / "partial"
    partial.mkdir()
    kernel_script.collect_outputs(run, submissions, partial, submitted=False)  # a kernel that trained some folds
    assert list(partial.iterdir()) == []


def test_code_competition_needs_a_one_file_format(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(tmp_path, "--code-competition") == 2
    assert "--code-competition: Kaggle reads one submission.csv, but the submission format writes 2 files" \
        in capsys.readouterr().err
    assert build(tmp_path) == 0
    assert load_built(tmp_path).SETTINGS["submission_outputs"] == {"category.csv": "category.csv",
                                                                   "attribute.csv": "attribute.csv"}


@pytest.mark.parametrize("fmt", ["single_csv", "image_label_ids", "long"])
def test_code_competition_kernel_writes_submission_csv(tmp_path: Path, fmt: str) -> None:
    (name,) = submission_files(fmt)
    assert build(tmp_path, "--set", f"submission.format={fmt}", "--code-competition") == 0
    settings = load_built(tmp_path).SETTINGS
    assert settings["submission_outputs"] == {name: CODE_COMPETITION_FILE}
    assert build(tmp_path, "--set", f"submission.format={fmt}") == 0  # a file competition collects the same file
    assert load_built(tmp_path).SETTINGS["submission_outputs"] == {name: name}


# ------------------------------------------------------------------------------ albumentations offline


def test_albumentations_update_check_is_off(tmp_path: Path) -> None:
    """In every kernel stage (its environment) and in fashioncomp itself, before albumentations is imported."""
    assert kernel_script.stage_env(tmp_path)["NO_ALBUMENTATIONS_UPDATE"] == "1"
    code = ("import os\nfrom fashioncomp.config import DEFAULTS\nfrom fashioncomp.data.transforms import "
            "create_train_transform\ncreate_train_transform(DEFAULTS['augment'], seed=0, image_size=32)\n"
            "import albumentations.check_version as check\n"
            "print(os.environ.get('NO_ALBUMENTATIONS_UPDATE'), check.opener is None)\n")
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "True"], "the update check never opened a connection"
    assert "Error fetching version info" not in done.stderr
