"""A train stage killed mid-run (SIGKILL) and started again ends with the metrics of an
uninterrupted run (CPU, deterministic mode; EMA and MixUp on, so their state and RNG resume too)."""
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from fashioncomp.cli import run_cli
from fashioncomp.pipeline import Run, init_run, stage_split, stage_train

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 4
SETTINGS = ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", f"train.epochs={EPOCHS}",
            "train.batch_size=8", "train.deterministic=true", "train.threads=1", "train.ema=true",
            "train.ema_decay=0.9", "train.mixup_alpha=0.4", "train.mix_prob=0.5", "train.patience=100"]


def _train_command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "fashioncomp", "train", "--run", str(run_dir), "--folds", "0", "--no-progress"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _new_run(tiny_dataset: Path, run_dir: Path) -> Path:
    run = init_run(run_dir, tiny_dataset, None, SETTINGS)
    stage_split(run)
    return run.dir


def _finished_epochs(last_pt: Path) -> int:
    return torch.load(last_pt, map_location="cpu", weights_only=True)["epoch"] + 1


def _kill_after_first_epoch(run_dir: Path) -> None:
    """Start training; SIGKILL it once last.pt holds a finished epoch, part-way into the next."""
    last_pt, metrics = run_dir / "fold_0" / "last.pt", run_dir / "fold_0" / "metrics.csv"
    proc = subprocess.Popen(_train_command(run_dir), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.time() + 120
        while not (last_pt.is_file() and metrics.is_file()) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"training ended before it could be killed:\n{proc.communicate()[0]}"
        assert last_pt.is_file(), "no epoch finished within 120 s"
        # part-way into the next epoch: a third of the time the first one took
        time.sleep(0.3 * float(pd.read_csv(metrics)["seconds"].iloc[0]))
        proc.send_signal(signal.SIGKILL)
        output = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, output
    assert not (run_dir / "fold_0" / "done.json").exists()
    assert 1 <= _finished_epochs(last_pt) < EPOCHS, output


def test_killed_training_resumes_to_the_same_metrics(tiny_dataset, tmp_path):
    started = time.time()
    interrupted = _new_run(tiny_dataset, tmp_path / "interrupted")
    _kill_after_first_epoch(interrupted)
    killed_at = _finished_epochs(interrupted / "fold_0" / "last.pt")
    resumed = subprocess.run(_train_command(interrupted), env=_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming after epoch {killed_at}" in resumed.stdout

    reference = _new_run(tiny_dataset, tmp_path / "reference")
    straight = subprocess.run(_train_command(reference), env=_env(), capture_output=True, text=True, timeout=120)
    assert straight.returncode == 0, straight.stdout + straight.stderr

    got = pd.read_csv(interrupted / "fold_0" / "metrics.csv")
    want = pd.read_csv(reference / "fold_0" / "metrics.csv")
    columns = ["epoch", "train_loss", "lr"] + [c for c in want.columns if c.startswith(("val/", "loss/"))]
    assert len(want) == EPOCHS and list(got.columns) == list(want.columns)
    assert any(c.startswith("val/") for c in columns)
    pd.testing.assert_frame_equal(got[columns], want[columns], check_exact=False, rtol=0, atol=1e-6)
    # the EMA weights kept as best.pt match too
    best_got = torch.load(interrupted / "fold_0" / "best.pt", weights_only=True)["model"]
    best_want = torch.load(reference / "fold_0" / "best.pt", weights_only=True)["model"]
    for name, tensor in best_want.items():
        torch.testing.assert_close(best_got[name], tensor, rtol=0, atol=1e-6, msg=name)
    assert time.time() - started < 90


def test_disk_full_while_saving_a_checkpoint_is_one_line_and_the_run_resumes(tiny_dataset, tmp_path, monkeypatch,
                                                                              capsys):
    """The disk fills part-way through writing epoch 2's last.pt: one error line, epoch 1's
    last.pt intact, no temporary file left; once space is free the same command resumes and ends
    where an uninterrupted run ends."""
    run_dir = _new_run(tiny_dataset, tmp_path / "full")
    fold_dir = run_dir / "fold_0"
    real_save = torch.save
    last_saves = []

    def save_on_a_filling_disk(obj, fh, *args, **kwargs):
        if Path(fh.name).name.startswith(".last.pt."):
            last_saves.append(fh.name)
            if len(last_saves) == 2:
                fh.write(b"\0" * 4096)  # part of the archive made it to disk
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, fh, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_on_a_filling_disk)
    assert run_cli(lambda: stage_train(Run(run_dir), [0], progress=False)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and [line for line in err.splitlines() if "error" in line.lower()] == [
        f"error: cannot write {fold_dir / 'last.pt'}: the disk is full. Free some space and rerun; finished stages are kept"]
    assert _finished_epochs(fold_dir / "last.pt") == 1
    assert not list(fold_dir.glob(".*.tmp")) and not (fold_dir / "done.json").exists()

    monkeypatch.setattr(torch, "save", real_save)  # space freed
    assert run_cli(lambda: stage_train(Run(run_dir), [0], progress=False)) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out
    reference = _new_run(tiny_dataset, tmp_path / "reference")
    assert run_cli(lambda: stage_train(Run(reference), [0], progress=False)) == 0
    got, want = pd.read_csv(fold_dir / "metrics.csv"), pd.read_csv(reference / "fold_0" / "metrics.csv")
    columns = [c for c in want.columns if c.startswith(("val/", "loss/")) or c in ("epoch", "train_loss")]
    pd.testing.assert_frame_equal(got[columns], want[columns], check_exact=False, rtol=0, atol=1e-6)
