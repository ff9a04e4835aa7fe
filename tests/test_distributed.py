"""Training across processes: the train stage under torchrun (2 CPU ranks, gloo), and
pipelines/train_folds.sh running folds as parallel processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fashioncomp.pipeline import Run, init_run, stage_split
from fashioncomp.training.checkpoint import load_checkpoint
from fashioncomp.training.train import TRACE_ROWS_ENV

REPO = Path(__file__).resolve().parents[1]
SETTINGS = ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.epochs=2",
            "train.batch_size=8", "train.threads=1"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "CUDA_VISIBLE_DEVICES")}
    return {**env, "PYTHONPATH": str(REPO), "PYTHON": sys.executable, **extra}


def _new_run(tiny_dataset: Path, run_dir: Path, *settings: str) -> Run:
    run = init_run(run_dir, tiny_dataset, None, [*SETTINGS, *settings])
    stage_split(run)
    return run


def _torchrun_train(run: Run, env: dict[str, str]) -> subprocess.CompletedProcess:
    # the documented command: --run-dir, since torchrun's parser takes --run for its --run-path
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "fashioncomp", "train", "--run-dir", str(run.dir), "--folds", "0", "--no-progress"]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=150)


def test_torchrun_two_ranks_train_one_fold_on_disjoint_shards(tiny_dataset, tmp_path):
    run = _new_run(tiny_dataset, tmp_path / "ddp")
    trace = tmp_path / "trace"
    done = _torchrun_train(run, _env(**{TRACE_ROWS_ENV: str(trace)}))
    assert done.returncode == 0, done.stdout + done.stderr
    fold_dir = run.fold_dir(0)

    metrics = pd.read_csv(fold_dir / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2]
    assert {"train_loss", "val/score", "val/category_accuracy"} <= set(metrics.columns)
    assert metrics[["train_loss", "val/score"]].notna().all().all()
    assert json.loads((fold_dir / "done.json").read_text())["world_size"] == 2
    assert done.stdout.count("fold 0 epoch 2:") == 1  # only rank 0 reports
    model = run.load_fold_model(0, torch.device("cpu"))
    assert set(load_checkpoint(fold_dir / "best.pt")["model"]) == set(model.state_dict())

    folds = run.folds(run.train_data())
    train_rows = set(np.flatnonzero(folds != 0).tolist())
    orders = []
    for epoch in (1, 2):
        rank0, rank1 = (json.loads((trace / f"fold0_epoch{epoch}_rank{r}.json").read_text()) for r in (0, 1))
        assert len(rank0) == len(rank1) == 3 * 8  # 47 rows -> 24 per rank -> 3 batches of 8
        assert set(rank0) | set(rank1) <= train_rows
        assert len(set(rank0) & set(rank1)) <= 1  # disjoint shards (one row repeats to even them out)
        orders.append(rank0)
    assert orders[0] != orders[1]

    # resuming under torchrun: every rank loads last.pt, finds the run complete and rewrites done.json
    (fold_dir / "done.json").unlink()
    again = _torchrun_train(run, _env())
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("fold 0: resuming after epoch 2") == 1
    assert (fold_dir / "done.json").is_file()
    pd.testing.assert_frame_equal(pd.read_csv(fold_dir / "metrics.csv"), metrics)


def _train_folds(run: Run, *args: str) -> subprocess.CompletedProcess:
    cmd = ["bash", str(REPO / "pipelines" / "train_folds.sh"), "--run", str(run.dir), *args]
    return subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=150)


def test_train_folds_runs_one_process_per_gpu_and_fails_when_a_fold_fails(tiny_dataset, tmp_path):
    run = _new_run(tiny_dataset, tmp_path / "folds", "train.epochs=1")
    # no GPU here: each "GPU" process finds no CUDA device and trains on the CPU, in parallel;
    # GPU 0's share is folds 0 and 5, and fold 5 does not exist
    done = _train_folds(run, "--gpus", "0,1", "--folds", "0,1,5")
    assert done.returncode != 0
    assert "GPU 0: folds 0,5" in done.stdout and "GPU 1: folds 1" in done.stdout
    assert "folds 1: done" in done.stdout
    assert "folds 0,5: FAILED" in done.stderr and "fold 5 does not exist" in done.stderr
    for fold in (0, 1):
        assert (run.fold_dir(fold) / "done.json").is_file() and (run.fold_dir(fold) / "best.pt").is_file()
    assert "fold 1 epoch 1:" in (run.dir / "logs" / "train_gpu1.log").read_text()

    sequential = _train_folds(run, "--gpus", "")
    assert sequential.returncode == 0, sequential.stdout + sequential.stderr
    assert "no GPU: training folds 0,1 one after another" in sequential.stdout
    assert "fold 0 already trained" in sequential.stdout and "fold 1 already trained" in sequential.stdout
