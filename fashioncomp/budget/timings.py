"""Wall time actually spent per stage, summed over every invocation (`<run>/timings.json`).

A stage that was resumed counts every attempt; one that found its outputs up to date adds its
few seconds of checking. The report puts these beside the budget plan's minutes.
"""
from __future__ import annotations

from pathlib import Path

from fashioncomp.io import read_json, write_json

__all__ = ["TIMINGS", "record_stage_time", "read_stage_times", "PLANNED_AS"]

TIMINGS = "timings.json"
# which planned line of plan.json each stage's time counts against
PLANNED_AS = {"train": "train", "refit": "refit", "oof": "oof", "predict": "predict", "linear": "linear"}


def record_stage_time(run_dir: Path | str, stage: str, seconds: float) -> None:
    """Add `seconds` to `stage` in the run's timings (no-op if `run_dir` is not a run directory)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        return
    times = read_stage_times(run_dir)
    times[stage] = times.get(stage, 0.0) + float(seconds)
    write_json(run_dir / TIMINGS, times)


def read_stage_times(run_dir: Path | str) -> dict[str, float]:
    path = Path(run_dir) / TIMINGS
    return {k: float(v) for k, v in read_json(path).items()} if path.is_file() else {}
