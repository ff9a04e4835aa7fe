"""Finished folds from earlier kernels' outputs, taken into this kernel's run (`build --folds`).

A recipe whose folds do not fit one Kaggle session is split across kernels: each trains some
folds and leaves `runs/<name>/` in its output; the next kernel attaches those outputs
(`--kernel-sources`) and, after its own init and split stages, runs

    python -m fashioncomp.kaggle.attached_folds --run runs/<name> --from <input>/<kernel>/runs/<name> ...

which copies every finished fold whose recorded inputs (the fold's stamp: rows, split, training
config) are those this run would train it from, and whose checkpoint loads into this run's
network. The train stage then finds those folds up to date and trains only the missing ones.
A fold trained from other inputs, or a damaged checkpoint, stops the kernel with one error:
the train stage would otherwise quietly retrain it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

from fashioncomp import stamps
from fashioncomp.cli import run_cli
from fashioncomp.errors import UserError
from fashioncomp.io import copy_file
from fashioncomp.pipeline import Run

# what a finished fold keeps (best.pt before done.json: done.json marks it finished); last.pt only
# resumes an unfinished fold and is left behind
FINISHED_FOLD_FILES = ("best.pt", "metrics.csv", "budget.json", "done.json")


class AttachedFoldError(UserError):
    """A fold in an attached kernel's output was not trained for this run."""


def finished_folds(run_dir: Path) -> list[int]:
    """Folds of a run directory whose training finished (done.json and best.pt)."""
    found = [int(d.name.split("_", 1)[1]) for d in run_dir.glob("fold_*") if d.name.split("_", 1)[1].isdigit()]
    return sorted(k for k in found if (run_dir / f"fold_{k}" / "done.json").is_file()
                  and (run_dir / f"fold_{k}" / "best.pt").is_file())


def adopt_folds(run_dir: Path | str, sources: Sequence[Path | str]) -> dict[int, Path]:
    """Copy the finished folds of `sources` (run directories of earlier kernels) into `run_dir`.

    `run_dir` must have been through init and split. Folds this run has finished already are
    kept; a fold found in several sources is taken from the first. Returns fold -> source.
    """
    run = Run(run_dir)
    data = run.train_data()
    folds = run.folds(data)
    done_here = set(finished_folds(run.dir))
    adopted: dict[int, Path] = {}
    for source in map(Path, sources):
        if not (source / "config.yaml").is_file():
            raise AttachedFoldError(f"{source}: not a run directory (no config.yaml); attach the output of a kernel "
                                    "built with `python -m fashioncomp.kaggle build --folds ...`")
        found = finished_folds(source)
        extra = [k for k in found if k >= run.n_folds]
        if extra:
            raise AttachedFoldError(f"{source}: has fold(s) {extra}, but this run has {run.n_folds} folds "
                                    f"(split.n_folds): it was trained from another recipe")
        if not found:
            print(f"attached folds: {source} holds no finished fold")
        for k in found:
            if k in done_here or k in adopted:
                continue
            inputs = run.fold_inputs(data, folds, k)
            changed = stamps.changed_inputs(stamps.stamp_path(source, f"fold_{k}"), inputs)
            if changed:
                raise AttachedFoldError(
                    f"{source / f'fold_{k}'}: trained from other inputs than this run's ({', '.join(changed)} "
                    "differ): the kernel that made it ran another recipe, dataset or split; rebuild it from the "
                    "same recipe, or leave it out of --kernel-sources")
            run.load_model(source / f"fold_{k}" / "best.pt", torch.device("cpu"))  # damaged / other network: one error
            for name in FINISHED_FOLD_FILES:
                if (source / f"fold_{k}" / name).is_file():
                    copy_file(source / f"fold_{k}" / name, run.fold_dir(k) / name)
            # the stamp last: with it the train stage counts the fold as done from these inputs
            stamps.record(run.stamp(f"fold_{k}"), inputs)
            adopted[k] = source
            print(f"attached folds: fold {k} <- {source / f'fold_{k}'}")
    missing = [k for k in range(run.n_folds) if k not in done_here and k not in adopted]
    print(f"attached folds: {len(adopted)} taken, folds {missing or 'none'} still to train in {run.dir}")
    return adopted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.kaggle.attached_folds",
                                     description="Take finished folds of earlier kernels' runs into this run.")
    parser.add_argument("--run", required=True, help="this kernel's run directory (after init and split)")
    parser.add_argument("--from", dest="sources", action="append", default=[], metavar="RUN_DIR",
                        help="an attached kernel's runs/<name> (repeatable; the first holding a fold wins)")
    args = parser.parse_args(argv)
    return run_cli(lambda: adopt_folds(args.run, args.sources))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
