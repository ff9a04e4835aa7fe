"""Kaggle kernels: built here, then run as Kaggle would, from another folder with no fashioncomp installed."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from fashioncomp.data.dataset_reader import read_test
from fashioncomp.data.schema import Schema
from fashioncomp.kaggle import kernel_script
from fashioncomp.kaggle.__main__ import main as kaggle_main
from fashioncomp.kaggle.bundle import requirements
from fashioncomp.kaggle.weights import WeightsError, attach_weights, export_weights
from fashioncomp.submission import validate_submission

REPO = Path(__file__).resolve().parents[1]
COMPETITION = "fashion-tiny"
KERNEL_ID = "tester/fashioncomp-tiny"
WEIGHTS_ID = "tester/fashioncomp-tiny-weights"
WHEELS_ID = "tester/fashioncomp-wheels"
TINY = ["--set", "model.backbone=test_resnet", "--set", "train.epochs=1", "--set", "split.n_folds=2",
        "--set", "data.image_size=32"]
METADATA_KEYS = {"id", "title", "code_file", "language", "kernel_type", "is_private", "enable_gpu",
                 "enable_internet", "dataset_sources", "competition_sources", "kernel_sources"}


def cli(*args: object) -> int:
    return kaggle_main([str(a) for a in args])


def clean_env(base: Path, input_root: Path, working: Path) -> dict[str, str]:
    """No PYTHONPATH to the checkout; instead a decoy `fashioncomp` that fails on import comes first.

    A stage that imported fashioncomp from anywhere but the kernel's embedded copy (the checkout,
    an editable or regular install) would hit the decoy: PYTHONPATH precedes site-packages.
    """
    decoy = base / "decoy" / "fashioncomp"
    decoy.mkdir(parents=True, exist_ok=True)
    (decoy / "__init__.py").write_text("raise ImportError('decoy: not the kernel-embedded fashioncomp')\n")
    (base / "tmp").mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(base), "TMPDIR": str(base / "tmp"), "PYTHONPATH": str(decoy.parent),
            "FASHIONCOMP_KAGGLE_INPUT": str(input_root), "FASHIONCOMP_KAGGLE_WORKING": str(working)}


def run_kernel(script: Path, base: Path, input_root: Path, working: Path) -> subprocess.CompletedProcess:
    cwd = base / "elsewhere"
    cwd.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, str(script)], cwd=cwd, env=clean_env(base, input_root, working),
                          capture_output=True, text=True, timeout=400)


def tree_state(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def trained_kernel(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The train + predict kernel built from configs/default.yaml (tiny overrides) and run once."""
    base = tmp_path_factory.mktemp("kaggle")
    input_root = base / "input"
    shutil.copytree(tiny_dataset, input_root / COMPETITION)
    before = tree_state(input_root)
    assert cli("build", "--config", REPO / "configs" / "default.yaml", "--competition", COMPETITION,
               "--kernel-id", KERNEL_ID, "--dataset-sources", "tester/extra-data", "--wheels-dataset", WHEELS_ID,
               *TINY, "--out", base / "build") == 0
    working = base / "working"
    done = run_kernel(base / "build" / "fashioncomp-tiny.py", base, input_root, working)
    return SimpleNamespace(base=base, input_root=input_root, working=working, build=base / "build", done=done,
                           input_before=before, env=clean_env(base, input_root, working))


def assert_valid_submission(folder: Path, data_root: Path) -> None:
    validate_submission(folder, data_root, Schema.load(data_root / "schema.json"))  # raises on any problem
    for name in ("category.csv", "attribute.csv"):
        lines = (folder / name).read_text().splitlines()
        assert [line.split(",")[0] for line in lines[1:]] == read_test(data_root)


# ------------------------------------------------------------------------------ train + predict kernel


def test_kernel_trains_and_submits_offline_from_its_embedded_copy(trained_kernel: SimpleNamespace,
                                                                  tiny_dataset: Path) -> None:
    k = trained_kernel
    assert k.done.returncode == 0, k.done.stdout[-3000:] + k.done.stderr[-3000:]
    # the decoy really blocks any other fashioncomp in this environment...
    blocked = subprocess.run([sys.executable, "-c", "import fashioncomp"], cwd=k.base / "elsewhere", env=k.env,
                             capture_output=True, text=True)
    assert blocked.returncode != 0 and "decoy" in blocked.stderr
    # ...so every stage imported the copy the script extracted into its temporary folder
    imported = next(line for line in k.done.stdout.splitlines() if line.startswith("fashioncomp: "))
    assert Path(imported.split(": ", 1)[1]).is_relative_to(k.base / "tmp")
    assert "== train" in k.done.stdout and "run_all.sh" in k.done.stdout
    assert not list((k.base / "tmp").glob("fashioncomp-kernel-*")), "the extracted code is removed at the end"

    assert_valid_submission(k.working, tiny_dataset)
    assert (k.working / "runs" / "default" / "fold_1" / "best.pt").is_file()
    assert not (k.working / "runs" / ".cache").exists(), "the image cache is not left as kernel output"
    assert tree_state(k.input_root) == k.input_before, "the kernel wrote into its read-only input"


def test_kernel_metadata_names_the_script_and_its_inputs(trained_kernel: SimpleNamespace) -> None:
    meta = json.loads((trained_kernel.build / "kernel-metadata.json").read_text())
    assert set(meta) == METADATA_KEYS
    assert meta["id"] == KERNEL_ID
    assert meta["title"].lower().replace(" ", "-") == KERNEL_ID.split("/")[1], "Kaggle derives the slug from the title"
    assert sorted(p.name for p in trained_kernel.build.iterdir()) == sorted(["kernel-metadata.json", meta["code_file"]])
    assert meta["code_file"].endswith(".py")
    assert (meta["language"], meta["kernel_type"]) == ("python", "script")
    assert (meta["is_private"], meta["enable_gpu"], meta["enable_internet"]) == (True, False, False)
    assert meta["dataset_sources"] == ["tester/extra-data", WHEELS_ID]
    assert meta["competition_sources"] == [COMPETITION] and meta["kernel_sources"] == []
    header = (trained_kernel.build / meta["code_file"]).read_text().split('"""', 1)[0]
    assert "timm>=1.0" in header and "iterative-stratification>=0.1.9" in header and WHEELS_ID in header


def test_build_options_gpu_public_and_kernel_sources(tmp_path: Path) -> None:
    assert cli("build", "--config", REPO / "configs" / "default.yaml", "--competition", COMPETITION,
               "--kernel-id", KERNEL_ID, "--gpu", "--public", "--kernel-sources", "tester/prep-kernel",
               "--name", "mine", "--out", tmp_path / "k") == 0
    meta = json.loads((tmp_path / "k" / "kernel-metadata.json").read_text())
    assert (meta["is_private"], meta["enable_gpu"], meta["enable_internet"]) == (False, True, False)
    assert meta["dataset_sources"] == [] and meta["kernel_sources"] == ["tester/prep-kernel"]
    assert "'run_name': 'mine'" in (tmp_path / "k" / meta["code_file"]).read_text()


@pytest.mark.parametrize("args, message", [
    (["--kernel-id", "no-owner-here"], "not a Kaggle owner/slug"),
    (["--kernel-id", KERNEL_ID, "--set", "train.epoch=3"], "unknown config key"),
    (["--kernel-id", KERNEL_ID, "--data-subdir", "../elsewhere"], "relative path inside"),
])
def test_build_rejects_bad_input_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture, args: list,
                                                message: str) -> None:
    code = cli("build", "--config", REPO / "configs" / "default.yaml", "--competition", COMPETITION, *args,
               "--out", tmp_path / "k")
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "k").exists()


def test_build_does_not_overwrite_a_foreign_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "notes.txt").write_text("mine")
    code = cli("build", "--config", REPO / "configs" / "default.yaml", "--competition", COMPETITION,
               "--kernel-id", KERNEL_ID, "--out", tmp_path / "k")
    assert code == 2 and "holds no kernel-metadata.json" in capsys.readouterr().err
    assert (tmp_path / "k" / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------ inference-only kernel


def test_inference_kernel_predicts_from_the_weights_dataset(trained_kernel: SimpleNamespace, tiny_dataset: Path) -> None:
    k = trained_kernel
    assert k.done.returncode == 0
    weights, build = k.base / "weights", k.base / "build-inference"
    assert cli("build-inference", "--run", k.working / "runs" / "default", "--dataset-id", WEIGHTS_ID,
               "--competition", COMPETITION, "--kernel-id", "tester/fashioncomp-tiny-predict",
               "--weights-out", weights, "--out", build) == 0

    assert json.loads((weights / "dataset-metadata.json").read_text()) == {
        "title": "fashioncomp tiny weights", "id": WEIGHTS_ID, "licenses": [{"name": "CC0-1.0"}]}
    assert sorted(p.name for p in weights.iterdir()) == sorted([
        "dataset-metadata.json", "config.yaml", "schema.json", "thresholds.json", "oof.npz",
        "fold_0_best.pt", "fold_1_best.pt"])
    meta = json.loads((build / "kernel-metadata.json").read_text())
    assert set(meta) == METADATA_KEYS and meta["id"] == "tester/fashioncomp-tiny-predict"
    assert (build / meta["code_file"]).is_file() and meta["enable_internet"] is False
    assert meta["dataset_sources"] == [WEIGHTS_ID] and meta["competition_sources"] == [COMPETITION]

    # mounted the way newer Kaggle kernels mount datasets: <input>/datasets/<owner>/<slug>
    shutil.copytree(weights, k.input_root / "datasets" / "tester" / "fashioncomp-tiny-weights")
    working = k.base / "working-inference"
    done = run_kernel(build / meta["code_file"], k.base, k.input_root, working)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "attach-weights" in done.stdout and "== train" not in done.stdout
    assert_valid_submission(working, tiny_dataset)
    for name in ("category.csv", "attribute.csv"):  # same checkpoints, thresholds and TTA: the same answers
        assert (working / name).read_bytes() == (k.working / name).read_bytes()
    config = (working / "runs" / "default" / "config.yaml").read_text()
    assert f"root: {k.input_root / COMPETITION}" in config


def test_attach_weights_refuses_a_different_schema(trained_kernel: SimpleNamespace, tmp_path: Path,
                                                   dataset_copy: Path) -> None:
    k = trained_kernel
    assert cli("build-inference", "--run", k.working / "runs" / "default", "--dataset-id", WEIGHTS_ID,
               "--competition", COMPETITION, "--kernel-id", "tester/fashioncomp-tiny-predict",
               "--weights-out", tmp_path / "w", "--out", tmp_path / "k") == 0
    schema = json.loads((dataset_copy / "schema.json").read_text())
    schema["categories"][0] = "renamed"
    (dataset_copy / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(WeightsError, match="differs from the schema"):
        attach_weights(tmp_path / "w", dataset_copy, tmp_path / "run")


def test_build_inference_needs_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = cli("build-inference", "--run", tmp_path / "nothing", "--dataset-id", WEIGHTS_ID,
               "--competition", COMPETITION, "--kernel-id", KERNEL_ID, "--weights-out", tmp_path / "w",
               "--out", tmp_path / "k")
    assert code == 2 and "is not a run directory" in capsys.readouterr().err


# ------------------------------------------------------------------------------ folds across kernels


@pytest.fixture(scope="module")
def split_kernels(trained_kernel: SimpleNamespace) -> SimpleNamespace:
    """The trained kernel's recipe as two kernels: fold 0, then fold 1 with the first one's output attached."""
    k = trained_kernel
    base = k.base / "split"
    input_root = base / "input"
    shutil.copytree(k.input_root / COMPETITION, input_root / COMPETITION)
    runs = {}
    for fold, sources in ((0, []), (1, ["--kernel-sources", "tester/fashioncomp-tiny-fold0"])):
        build = base / f"build-fold{fold}"
        assert cli("build", "--config", REPO / "configs" / "default.yaml", "--competition", COMPETITION,
                   "--kernel-id", f"tester/fashioncomp-tiny-fold{fold}", *TINY, "--folds", fold, *sources,
                   "--out", build) == 0
        working = base / f"working-fold{fold}"
        runs[fold] = run_kernel(build / f"fashioncomp-tiny-fold{fold}.py", base, input_root, working)
        if fold == 0 and runs[0].returncode == 0:  # Kaggle mounts a kernel's output at <input>/<kernel slug>
            shutil.copytree(working, input_root / "fashioncomp-tiny-fold0")
    return SimpleNamespace(first=runs[0], second=runs[1], working=[base / "working-fold0", base / "working-fold1"],
                           input_root=input_root)


def test_split_kernels_give_the_submission_of_one_kernel(split_kernels: SimpleNamespace,
                                                          trained_kernel: SimpleNamespace) -> None:
    first, second = split_kernels.first, split_kernels.second
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # the first kernel trains fold 0 only, leaves its run for the next one and no submission
    run0 = split_kernels.working[0] / "runs" / "default"
    assert (run0 / "fold_0" / "done.json").is_file() and not (run0 / "fold_1").exists()
    assert not (split_kernels.working[0] / "category.csv").exists() and "== oof" not in first.stdout
    assert "--kernel-sources tester/fashioncomp-tiny-fold0" in first.stdout

    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "attached folds: fold 0 <- " in second.stdout
    assert "train: fold 0 already trained" in second.stdout and "train: fold 1: " in second.stdout
    assert "train: fold 0: " not in second.stdout, "the attached fold is not trained again"
    for name in ("category.csv", "attribute.csv"):  # per-fold seeds: the same networks, the same answers
        assert (split_kernels.working[1] / name).read_bytes() == (trained_kernel.working / name).read_bytes()
    for done in (first, second, trained_kernel.done):  # albumentations' update check is off in every stage
        assert "Error fetching version info" not in done.stdout + done.stderr
        assert "new version of Albumentations" not in done.stdout + done.stderr


@pytest.mark.parametrize("overrides, changed", [(["train.lr=0.01"], "config"), (["split.seed=7"], "folds.csv")])
def test_attached_folds_from_another_recipe_are_refused(split_kernels: SimpleNamespace, tmp_path: Path,
                                                        overrides: list, changed: str) -> None:
    from fashioncomp.kaggle.attached_folds import AttachedFoldError, adopt_folds
    from fashioncomp.pipeline import init_run, stage_split

    assert split_kernels.first.returncode == 0
    tiny = [value for value in TINY if value != "--set"]
    run = init_run(tmp_path / "run", split_kernels.input_root / COMPETITION, REPO / "configs" / "default.yaml",
                   [*tiny, *overrides])
    stage_split(run)
    with pytest.raises(AttachedFoldError, match=f"fold_0: trained from other inputs than this run's \\({changed} differ"):
        adopt_folds(run.dir, [split_kernels.working[0] / "runs" / "default"])
    assert not (run.dir / "fold_0").exists()


def test_attached_folds_take_a_sound_fold_and_refuse_a_damaged_one(split_kernels: SimpleNamespace,
                                                                    tmp_path: Path) -> None:
    from fashioncomp import stamps
    from fashioncomp.kaggle.attached_folds import adopt_folds
    from fashioncomp.pipeline import TRAINING_OUTPUTS, init_run, stage_split
    from fashioncomp.training.checkpoint import CheckpointError

    assert split_kernels.first.returncode == 0
    tiny = [value for value in TINY if value != "--set"]
    source = Path(shutil.copytree(split_kernels.working[0] / "runs" / "default", tmp_path / "source"))
    run = init_run(tmp_path / "run", split_kernels.input_root / COMPETITION, REPO / "configs" / "default.yaml", tiny)
    stage_split(run)
    assert adopt_folds(run.dir, [source]) == {0: source}
    data = run.train_data()
    assert stamps.training_up_to_date("fold 0", run.stamp("fold_0"), run.fold_inputs(data, run.folds(data), 0),
                                      run.fold_dir(0), TRAINING_OUTPUTS, force=False), "the train stage skips it"
    assert not (run.fold_dir(0) / "last.pt").exists()

    best = source / "fold_0" / "best.pt"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    damaged = init_run(tmp_path / "run2", split_kernels.input_root / COMPETITION, REPO / "configs" / "default.yaml", tiny)
    stage_split(damaged)
    with pytest.raises(CheckpointError, match="damaged or not a checkpoint"):
        adopt_folds(damaged.dir, [source])
    assert not (damaged.dir / "fold_0").exists()


def test_inference_kernel_requires_only_what_inference_imports(trained_kernel: SimpleNamespace, tiny_dataset: Path,
                                                               tmp_path: Path) -> None:
    """attach-weights, predict and make_submission, run in a fresh interpreter, import every
    distribution the inference kernel requires and none of those it leaves out (e.g. the split's
    iterative-stratification). Blocking imports instead would break torch, which probes optional
    packages with find_spec."""
    assert trained_kernel.done.returncode == 0
    required = {canonical_dist(r["dist"]) for r in requirements(mode="inference")}
    setup_cfg = {canonical_dist(r["dist"]) for r in requirements()}
    assert "iterative-stratification" in setup_cfg - required and {"torch", "timm"} <= required
    export_weights(trained_kernel.working / "runs" / "default", tmp_path / "weights", WEIGHTS_ID, "w")
    code = f"""
import importlib.metadata, json, sys
import fashioncomp.cli, fashioncomp.kaggle.__main__  # the entry points of `python -m fashioncomp` and of attach-weights
from fashioncomp.kaggle.weights import attach_weights
from fashioncomp.make_submission import make_submission
from fashioncomp.pipeline import Run, stage_predict
run = Run(attach_weights({str(tmp_path / "weights")!r}, {str(tiny_dataset)!r}, {str(tmp_path / "run")!r}))
stage_predict(run)
make_submission(run, {str(tmp_path / "submissions")!r})
dists_of = importlib.metadata.packages_distributions()  # top-level module -> distributions
print("IMPORTED", json.dumps(sorted({{d for name in list(sys.modules) for d in dists_of.get(name, [])}})))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (tmp_path / "submissions" / "run" / "category.csv").is_file()
    imported = {canonical_dist(d) for d in json.loads(done.stdout.split("IMPORTED ", 1)[1])}
    assert imported & setup_cfg == required, "the inference kernel requires exactly what inference imports"


def canonical_dist(name: str) -> str:
    """PEP 503 normalised distribution name: 'PyYAML' and 'pyyaml' are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


# ------------------------------------------------------------------------------ the script's helpers


def test_find_source_knows_kaggle_mount_layouts(tmp_path: Path) -> None:
    (tmp_path / "comp").mkdir()
    (tmp_path / "competitions" / "other-comp").mkdir(parents=True)
    (tmp_path / "datasets" / "me" / "weights").mkdir(parents=True)
    (tmp_path / "odd" / "place" / "wheels").mkdir(parents=True)
    assert kernel_script.find_source(tmp_path, "comp") == tmp_path / "comp"
    assert kernel_script.find_source(tmp_path, "other-comp") == tmp_path / "competitions" / "other-comp"
    assert kernel_script.find_source(tmp_path, "me/weights") == tmp_path / "datasets" / "me" / "weights"
    assert kernel_script.find_source(tmp_path, "me/wheels") == tmp_path / "odd" / "place" / "wheels"
    with pytest.raises(kernel_script.KernelError, match="'me/absent' is not attached.*comp, competitions"):
        kernel_script.find_source(tmp_path, "me/absent")


def test_requirement_check_and_offline_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reqs = [{"dist": "numpy", "min": "1.0", "spec": "numpy>=1.0"},
            {"dist": "numpy", "min": "999", "spec": "numpy>=999"},
            {"dist": "surely-not-installed-dist", "min": None, "spec": "surely-not-installed-dist"}]
    assert kernel_script.missing_requirements(reqs) == ["numpy>=999", "surely-not-installed-dist"]
    assert kernel_script.version_tuple("2.14.1+cu121") == (2, 14, 1)

    monkeypatch.setattr(kernel_script, "SETTINGS", {"requirements": reqs, "wheels_dataset": None})
    with pytest.raises(kernel_script.KernelError, match="surely-not-installed-dist.*--wheels-dataset"):
        kernel_script.ensure_requirements()

    (tmp_path / "wheels").mkdir()
    monkeypatch.setenv(kernel_script.INPUT_ENV, str(tmp_path))
    monkeypatch.setattr(kernel_script, "SETTINGS", {"requirements": reqs, "wheels_dataset": "me/wheels"})
    calls = []
    monkeypatch.setattr(kernel_script.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or SimpleNamespace(returncode=0))
    with pytest.raises(kernel_script.KernelError, match="pip could not install"):  # nothing really got installed
        kernel_script.ensure_requirements()
    assert calls == [[sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(tmp_path / "wheels"),
                      "numpy>=999", "surely-not-installed-dist"]]


def test_requirements_come_from_setup_cfg(tmp_path: Path) -> None:
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[options]\ninstall_requires =\n    # a comment\n    torch>=2.1,<2.15\n    torchvision<0.29.2\n"
                   "    iterative-stratification>=0.1.9\n")
    assert requirements(cfg) == [{"dist": "torch", "min": "2.1", "spec": "torch>=2.1"},
                                 {"dist": "torchvision", "min": None, "spec": "torchvision"},
                                 {"dist": "iterative-stratification", "min": "0.1.9",
                                  "spec": "iterative-stratification>=0.1.9"}]
    assert {r["dist"] for r in requirements()} >= {"torch", "timm", "albumentations", "iterative-stratification"}
