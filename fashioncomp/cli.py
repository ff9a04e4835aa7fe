"""Command line of the pipeline's stages: python -m fashioncomp <stage> --run runs/<name> ...

    init        --run R --data DIR [--config FILE] [--set key=value ...] [--force]
    plan        --run R [--force]          (only with a budget: budget.minutes)
    split       --run R [--force]
    train       --run R [--folds 0,2] [--force]
    refit       --run R [--force]          (only with refit.enabled)
    oof         --run R [--force]
    linear      --run R [--force]          (only with linear.enabled)
    thresholds  --run R [--force]
    predict     --run R [--force]

`bash pipelines/run_all.sh` runs them all, then make_submission and the report.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any, Callable, TextIO

from fashioncomp.config import load_config
from fashioncomp.errors import DataWarning, UserError
from fashioncomp.io import explain_os_error, is_environment_error


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """Data warnings are messages for the user: one `warning:` line, no source location."""
    out = file if file is not None else sys.stderr
    if issubclass(category, DataWarning):
        text = f"warning: {message}\n"
    else:
        text = warnings.formatwarning(message, category, filename, lineno, line)
    try:
        out.write(text)
    except OSError:  # stderr gone: nothing sensible left to do with a warning
        pass


def run_cli(action: Callable[[], Any]) -> int:
    """Run a command; a UserError or a full disk / permission problem becomes one clear message
    and exit status 2 (other exceptions are bugs and keep their traceback)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            action()
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            if not is_environment_error(exc):
                raise
            print(f"error: {explain_os_error(exc, action=None)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted: finished outputs are kept; rerun the same command to resume", file=sys.stderr)
            return 130
    return 0


def fold_list(text: str) -> list[int] | None:
    """`--folds` value: "0,2" -> [0, 2]; "all" -> None (every fold)."""
    if text.strip() == "all":
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--folds expects 'all' or comma-separated integers like 0,2; got '{text}'") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)
    init = sub.add_parser("init", help="create the run directory: resolve the config, validate the dataset")
    init.add_argument("--data", required=True, help="dataset root (train.csv, test.csv, images, schema.json)")
    init.add_argument("--config", help="recipe YAML (see configs/)")
    init.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config value, e.g. --set train.epochs=3 (repeatable)")
    init.add_argument("--force", action="store_true",
                      help="accept a schema of another shape than the one this run trained with (stages then retrain)")
    for name, text in [("plan", "probe this machine and fit folds, image size and epochs into budget.minutes"),
                       ("split", "multilabel stratified k-fold -> folds.csv"),
                       ("train", "train one network per fold"),
                       ("refit", "one more network on every training row (refit.enabled)"),
                       ("oof", "out-of-fold predictions and CV scores"),
                       ("linear", "logistic regression on thumbnails + HSV histograms, blended out of fold (linear.enabled)"),
                       ("thresholds", "tune per-attribute thresholds on OOF"),
                       ("predict", "fold-ensemble + TTA test probabilities")]:
        stage = sub.add_parser(name, help=text)
        stage.add_argument("--force", action="store_true", help="redo the stage even if its outputs are up to date")
        if name == "train":
            stage.add_argument("--folds", type=fold_list, help="train only these folds, e.g. 0,2 (default: all)")
        if name in ("train", "refit"):
            stage.add_argument("--no-progress", action="store_true", help="hide the tqdm bars")
    for stage in sub.choices.values():
        stage.add_argument("--run", "--run-dir", dest="run", required=True,
                           help="run directory, e.g. runs/default (--run-dir is the same; use it under torchrun, "
                                "whose parser takes --run for its --run-path)")
    return parser


def timed(run_dir: str, stage: str, action: Callable[[], Any]) -> int:
    """`run_cli(action)`, adding the stage's wall time to the run's timings.json when it succeeds."""
    from fashioncomp import STARTED
    from fashioncomp.budget.timings import record_stage_time

    code = run_cli(action)
    if code == 0:  # from the process start: the imports of torch and timm are part of the stage's cost
        record_stage_time(run_dir, stage, time.perf_counter() - STARTED)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def action() -> Any:
        if args.stage == "init":
            load_config(args.config, args.overrides)  # a config mistake fails fast, before the heavy imports
        from fashioncomp import pipeline  # torch, timm, ...: seconds

        if args.stage == "init":
            run = pipeline.init_run(args.run, args.data, args.config, args.overrides, force=args.force)
            print(f"init: run directory {run.dir} (data {run.data_root}, {run.schema.num_categories} categories, "
                  f"{run.schema.num_attributes} attributes, {len(run.schema.groups)} groups)")
            return run
        run = pipeline.Run(args.run)
        if args.stage == "plan":
            from fashioncomp.budget.stage import stage_plan

            return stage_plan(run, force=args.force)
        if args.stage == "refit":
            from fashioncomp.refit import stage_refit

            return stage_refit(run, force=args.force, progress=not args.no_progress)
        if args.stage == "linear":
            from fashioncomp.linear.stage import stage_linear

            return stage_linear(run, force=args.force)
        if args.stage == "train":
            return pipeline.stage_train(run, args.folds, args.force, progress=not args.no_progress)
        stages = {"split": pipeline.stage_split, "oof": pipeline.stage_oof,
                  "thresholds": pipeline.stage_thresholds, "predict": pipeline.stage_predict}
        return stages[args.stage](run, force=args.force)

    return timed(args.run, args.stage, action)
