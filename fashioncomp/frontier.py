"""python -m fashioncomp.frontier --data DIR [--config configs/cpu.yaml] [--budgets 5,10,20,40]
                                [--holdout FILE] [--plain-config configs/plain.yaml]
                                [--work runs/frontier] [--out docs/frontier.md]

Score against minutes: the picture a competitor uses to choose a budget. On a fixed held-out
quarter of DIR (multilabel-stratified, seed 0; or the file_paths listed in `--holdout`), it runs

- the recipe, `run_all.sh --budget B` for every budget B, trained on the other three quarters;
- one plain full-data network (`fashioncomp.baselines.plain --minutes W`, the reference of
  `--plain-config`, default configs/plain.yaml), where W is the recipe's measured wall time at B
  (the recipe ends somewhat under its budget, and the comparison is at equal wall time): its
  epochs fill W at its own measured speed;
- the logistic-regression reference (`fashioncomp.baselines.logreg`), once;

scores each on the held-out quarter (category accuracy and all three attribute F1s), and writes a
Markdown table plus a plot against wall minutes (`--out`, the PNG beside it). The attribute F1 the
recipe optimises (`metrics.attribute_f1`, after `--set`) leads the table and the plot, and the
recipe is compared with the plain network on it. Finished runs are reused, so an interrupted
frontier resumes; nothing run here ever sees a held-out label.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from fashioncomp.budget.planner import parse_duration
from fashioncomp.cli import run_cli
from fashioncomp.config import load_config
from fashioncomp.data.dataset_reader import LabelledData, read_train
from fashioncomp.data.split import make_folds
from fashioncomp.errors import UserError
from fashioncomp.io import copy_file, read_json, write_atomic, write_csv, write_json, write_stream, write_text
from fashioncomp.metrics import ATTRIBUTE_F1, category_accuracy, per_attribute_f1
from fashioncomp.textfile import read_text_file

REPO = Path(__file__).resolve().parents[1]
CATEGORY = ("category_accuracy", "category acc")
LABEL_FILES = ("train.csv", "test.csv", "schema.json")
# score_submission reads category.csv and attribute.csv by file_path, whatever format the recipe chose
TWO_CSV = ("--set", "submission.format=two_csv", "--set", "submission.image_id=path")


class FrontierError(UserError):
    pass


@dataclass
class Point:
    method: str          # recipe | plain | logreg
    budget_minutes: float | None
    wall_minutes: float
    scores: dict[str, float]


def holdout_view(data_root: Path, work: Path, holdout_file: Path | None) -> tuple[Path, LabelledData]:
    """A dataset folder `work/data` training on 3/4 of DIR with the held-out quarter as its test.csv.

    Returns the folder and the held-out rows' labels (kept out of the folder).
    """
    data, schema = read_train(data_root, check_images=False)
    if holdout_file is not None:
        wanted = set(read_text_file(holdout_file).split())
        held = np.array([p in wanted for p in data.file_paths])
        if held.sum() != len(wanted):
            raise FrontierError(f"{holdout_file}: {len(wanted) - held.sum()} file_path(s) are not in {data_root / 'train.csv'}")
    else:
        held = make_folds(data, schema.num_categories, 4, seed=0) == 0
    view = work / "data"
    view.mkdir(parents=True, exist_ok=True)
    for entry in data_root.iterdir():  # images stay where they are: link every other top-level entry
        link = view / entry.name
        if entry.name not in LABEL_FILES and not link.exists():
            link.symlink_to(entry.resolve())
    frame = pd.read_csv(data_root / "train.csv", dtype=str, keep_default_na=False)
    write_csv(view / "train.csv", frame[~held])
    write_csv(view / "test.csv", frame.loc[held, ["file_path"]])
    if (data_root / "schema.json").is_file():
        copy_file(data_root / "schema.json", view / "schema.json")
    return view, data.subset(np.flatnonzero(held))


def metric_columns(attribute_f1: str) -> list[tuple[str, str]]:
    """(score key, label) of the table's columns: category accuracy, the optimised attribute F1, the others."""
    chosen = ATTRIBUTE_F1[attribute_f1]
    return [CATEGORY, (chosen.key, f"{chosen.label} (optimised)")] + [
        (m.key, m.label) for m in ATTRIBUTE_F1.values() if m.name != attribute_f1]


def score_submission(labels: LabelledData, sub_dir: Path) -> dict[str, float]:
    """Category accuracy and every attribute F1 of `sub_dir`'s category.csv and attribute.csv against `labels`."""
    cat = pd.read_csv(sub_dir / "category.csv", dtype={"file_path": str})
    attr = pd.read_csv(sub_dir / "attribute.csv", dtype=str, keep_default_na=False)
    if list(cat["file_path"]) != labels.file_paths or list(attr["file_path"]) != labels.file_paths:
        raise FrontierError(f"{sub_dir}: rows differ from the held-out quarter")
    pred = np.zeros_like(labels.attributes, dtype=bool)
    for i, text in enumerate(attr["attribute_label"]):
        pred[i, [int(t) for t in text.split()]] = True
    scores = {"category_accuracy": category_accuracy(labels.categories, cat["category_label"].to_numpy())}
    # macro-F1 as the leaderboard scorer takes it (below), not the registry's: over the attributes
    # that occur in these labels
    scores.update({m.key: m(labels.attributes, pred, labels.attribute_known)
                   for m in ATTRIBUTE_F1.values() if m.name != "macro"})
    present = (labels.attributes.astype(bool) & labels.attribute_known).any(axis=0)
    per_attribute = per_attribute_f1(labels.attributes, pred, labels.attribute_known)
    scores[ATTRIBUTE_F1["macro"].key] = float(per_attribute[present].mean())
    return scores


def _timed_command(cmd: Sequence[str], log: Path) -> float:
    """Run `cmd` (output to `log`); its wall minutes, or FrontierError naming the log."""
    started = time.perf_counter()
    done = None

    # run_all.sh runs "$PYTHON" (default: `python` from PATH): the frontier's own interpreter, so
    # every point runs with the same environment even when the frontier was started by the venv's full path
    env = {**os.environ, "PYTHON": sys.executable}

    def run(out: Any) -> None:
        nonlocal done
        done = subprocess.run([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)

    write_stream(log, run)
    if done.returncode != 0:
        raise FrontierError(f"{' '.join(map(str, cmd[:4]))} ... failed (exit {done.returncode}); see {log}")
    return (time.perf_counter() - started) / 60


def cached_point(work: Path, name: str, make: Callable[[], Point]) -> Point:
    """A finished point is read back from `work/points/<name>.json`, so a rerun resumes."""
    path = work / "points" / f"{name}.json"
    if path.is_file():
        raw = read_json(path)
        return Point(raw["method"], raw["budget_minutes"], raw["wall_minutes"], raw["scores"])
    point = make()
    write_json(path, point.__dict__)
    return point


def run_frontier(data_root: Path, config: Path, budgets: Sequence[float], work: Path,
                 holdout_file: Path | None, extra: Sequence[str] = (), plain_config: Path | None = None) -> list[Point]:
    view, labels = holdout_view(data_root, work, holdout_file)
    python = sys.executable
    sets = [a for kv in extra for a in ("--set", kv)]
    (work / "logs").mkdir(parents=True, exist_ok=True)

    def logreg() -> Point:
        wall = _timed_command([python, "-m", "fashioncomp.baselines.logreg", "--data", view, "--out",
                               work / "subs" / "logreg"], work / "logs" / "logreg.txt")
        return Point("logreg", None, wall, score_submission(labels, work / "subs" / "logreg"))

    points = [cached_point(work, "logreg", logreg)]
    for minutes in budgets:
        name = f"recipe-{minutes:g}m"

        def recipe() -> Point:
            wall = _timed_command(["bash", REPO / "pipelines" / "run_all.sh", "--data", view, "--config", config,
                                   "--budget", f"{minutes:g}m", "--name", name, "--runs", work / "runs",
                                   "--out", work / "subs", *sets, *TWO_CSV], work / "logs" / f"{name}.txt")
            return Point("recipe", minutes, wall, score_submission(labels, work / "subs" / name))

        recipe_point = cached_point(work, name, recipe)
        points.append(recipe_point)

        def plain() -> Point:
            out = work / "subs" / f"plain-{minutes:g}m"
            reference = ["--config", plain_config] if plain_config is not None else []
            wall = _timed_command([python, "-m", "fashioncomp.baselines.plain", "--data", view, *reference,
                                   "--minutes", f"{recipe_point.wall_minutes:.2f}", "--out", out,
                                   "--work", work / "plain" / f"{minutes:g}m"],
                                  work / "logs" / f"plain-{minutes:g}m.txt")
            return Point("plain", minutes, wall, score_submission(labels, out))

        points.append(cached_point(work, f"plain-{minutes:g}m", plain))
    return points


def _score(point: Point, key: str) -> str:
    return f"{point.scores[key]:.4f}" if key in point.scores else "—"  # points cached before micro-F1 was scored


def frontier_table(points: Sequence[Point], attribute_f1: str) -> str:
    columns = metric_columns(attribute_f1)
    header = ["method", "budget (min)", "wall (min)"] + [label for _, label in columns]
    rows = [[p.method, "—" if p.budget_minutes is None else f"{p.budget_minutes:g}", f"{p.wall_minutes:.1f}"]
            + [_score(p, key) for key, _ in columns] for p in points]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def recipe_against_plain(points: Sequence[Point], attribute_f1: str) -> list[str]:
    """One line per budget: the recipe's lead over the plain network on category accuracy and the optimised F1."""
    keys = metric_columns(attribute_f1)[:2]
    lines = []
    for recipe in (p for p in points if p.method == "recipe"):
        plain = next((p for p in points if p.method == "plain" and p.budget_minutes == recipe.budget_minutes), None)
        if plain is not None:
            leads = ", ".join(f"{label} {recipe.scores[key] - plain.scores[key]:+.4f}" for key, label in keys)
            lines.append(f"- {recipe.budget_minutes:g} min: recipe - plain = {leads} "
                         f"(wall {recipe.wall_minutes:.1f} vs {plain.wall_minutes:.1f} min)")
    return lines


def plot_frontier(points: Sequence[Point], path: Path, attribute_f1: str) -> Path:
    from matplotlib.figure import Figure

    columns = metric_columns(attribute_f1)
    fig = Figure(figsize=(4.3 * len(columns), 4), dpi=110)
    for ax, (key, label) in zip(fig.subplots(1, len(columns)), columns):
        scored = [p for p in points if key in p.scores]
        for method, style in (("recipe", "o-"), ("plain", "s--")):
            mine = sorted((p for p in scored if p.method == method), key=lambda p: p.wall_minutes)
            if mine:
                ax.plot([p.wall_minutes for p in mine], [p.scores[key] for p in mine], style, label=method)
        for p in scored:
            if p.method == "logreg":
                ax.axhline(p.scores[key], color="grey", linestyle=":", label="logreg reference")
        ax.set_xlabel("wall minutes (2-core CPU)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.axes[0].legend()
    fig.tight_layout()
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def write_frontier(points: Sequence[Point], out: Path, command: str, attribute_f1: str) -> Path:
    png = plot_frontier(points, out.with_suffix(".png"), attribute_f1)
    chosen = ATTRIBUTE_F1[attribute_f1]
    text = ["# Score against minutes", "", f"Made by `{command}`: every row scored on the same held-out quarter, "
            "which no run trained on or tuned anything with. The recipe selects its checkpoints and tunes its "
            f"thresholds for the {chosen.label} (`metrics.attribute_f1: {chosen.name}`: {chosen.meaning}); the "
            "macro-F1 averages over the attributes present in the held-out labels, as the leaderboard's scorer does.",
            "", frontier_table(points, attribute_f1), "", *recipe_against_plain(points, attribute_f1), "",
            f"![score against minutes]({png.name})", ""]
    return write_text(out, "\n".join(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.frontier", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="dataset root (train.csv + images)")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "cpu.yaml", help="recipe YAML")
    parser.add_argument("--budgets", default="5,10,20,40", help="comma-separated minutes (default 5,10,20,40)")
    parser.add_argument("--holdout", type=Path, help="file_paths of the held-out rows, one a line "
                        "(default: a multilabel-stratified quarter, seed 0)")
    parser.add_argument("--work", type=Path, default=Path("runs/frontier"), help="runs, logs, cached points")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "frontier.md", help="the table (PNG beside it)")
    parser.add_argument("--plain-config", type=Path, help="the plain reference's YAML (default configs/plain.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the recipe (not of the plain reference)")
    args = parser.parse_args(argv)

    def action() -> None:
        budgets = [parse_duration(b) / 60 for b in args.budgets.split(",") if b.strip()]
        attribute_f1 = load_config(args.config, args.overrides)["metrics"]["attribute_f1"]
        points = run_frontier(args.data, args.config, budgets, args.work, args.holdout, args.overrides,
                              args.plain_config)
        command = "python -m fashioncomp.frontier " + " ".join(argv if argv is not None else sys.argv[1:])
        print(frontier_table(points, attribute_f1))
        print("\n".join(recipe_against_plain(points, attribute_f1)))
        print(f"frontier: {write_frontier(points, args.out, command, attribute_f1)}")

    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
