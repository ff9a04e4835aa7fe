"""pipelines/run_all.sh around its stages: a stage killed by a signal is explained, and nothing after it runs.

The stages are stood in for by a fake interpreter (run_all.sh runs "$PYTHON"), so these tests take
no training: the fake logs each call and ends the train stage as the real one would have ended.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
if [[ "$2 $3" == "fashioncomp train" ]]; then
  eval "$FAKE_TRAIN_ENDS"
fi
exit 0
"""


def run_all(tmp_path: Path, train_ends: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("file_path,category_label,attribute_label\n")
    (data / "test.csv").write_text("file_path\n")
    log = tmp_path / "calls.txt"
    env = {**os.environ, "PYTHON": str(fake), "FAKE_LOG": str(log), "FAKE_TRAIN_ENDS": train_ends}
    done = subprocess.run(["bash", str(REPO / "pipelines" / "run_all.sh"), "--data", str(data),
                           "--runs", str(tmp_path / "runs")], env=env, capture_output=True, text=True, timeout=60)
    return done, log.read_text().splitlines()


@pytest.mark.parametrize("signal,explained", [
    ("SEGV", "crashed (SIGSEGV) inside a native library"),
    ("ABRT", "crashed (SIGABRT) inside a native library"),
    ("KILL", "was killed (SIGKILL), most often by the kernel's out-of-memory killer"),
])
def test_a_stage_killed_by_a_signal_is_explained_and_stops_the_run(tmp_path, signal, explained):
    done, calls = run_all(tmp_path, f"kill -{signal} $$")
    signals = {"SEGV": 11, "ABRT": 6, "KILL": 9}
    assert done.returncode == 128 + signals[signal]
    assert f"run_all.sh: the train stage {explained}" in done.stderr
    assert "the same command resumes" in done.stderr
    if signal != "KILL":
        assert "train.channels_last=false" in done.stderr
    assert [c.split()[2] for c in calls] == ["init", "plan", "split", "train"]  # nothing ran after it


def test_a_stage_that_fails_with_its_own_message_is_left_to_say_it(tmp_path):
    done, calls = run_all(tmp_path, "echo 'error: something clear' >&2; exit 2")
    assert done.returncode == 2
    assert "error: something clear" in done.stderr and "run_all.sh:" not in done.stderr
    assert calls[-1].split()[2] == "train"


def test_every_stage_runs_when_none_fails(tmp_path):
    done, calls = run_all(tmp_path, "true")
    assert done.returncode == 0, done.stderr
    assert [" ".join(c.split()[1:3]) for c in calls] == [
        "fashioncomp init", "fashioncomp plan", "fashioncomp split", "fashioncomp train", "fashioncomp oof",
        "fashioncomp linear", "fashioncomp refit", "fashioncomp thresholds", "fashioncomp predict",
        "fashioncomp.make_submission --run", "fashioncomp.report --run"]
