"""python -m fashioncomp.ablate --config RECIPE --variants FILE|name,name --data DIR [--folds 0]
                             [--out docs/ablation.md] [--runs runs] [--set key=value ...]

Train every variant of a base recipe on the same folds with the same budget and write one
Markdown table comparing them: out-of-fold category accuracy, attribute mean-F1 and macro-F1
(threshold 0.5, argmax for multiclass groups) and training wall time.

A variants file maps a variant name to a list of `key=value` overrides applied on top of the
recipe and the common `--set` overrides:

    multitask: []
    category_only: [loss.task_weights.attributes=0.0]
    latent_head: [model.head=latent, model.latent_k=32]

`--variants a,b` picks variants by name from configs/ablation_variants.yaml. Each variant is an
ordinary run directory, `<runs>/ablation-<name>/`, built by the pipeline's stages (init, split,
train, oof), so a finished variant is reused when the command is run again and an interrupted
one resumes.
"""
from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import yaml

from fashioncomp.cli import fold_list, run_cli
from fashioncomp.config import ConfigError, load_config
from fashioncomp.io import write_text
from fashioncomp.textfile import read_text_file

DEFAULT_VARIANTS = Path(__file__).resolve().parents[1] / "configs" / "ablation_variants.yaml"
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
METRICS = [("category_accuracy", "category acc"), ("attribute_mean_f1", "attribute mean-F1"),
           ("attribute_macro_f1", "attribute macro-F1")]


@dataclass
class VariantResult:
    name: str
    overrides: list[str]
    scores: dict[str, float]     # oof_scores.json of the variant's run
    train_seconds: float         # sum of the trained folds' epoch times (metrics.csv)
    epochs: int                  # epochs run, summed over the folds
    silenced_tasks: list[str]    # loss.task_weights entries set to 0 (single-task baselines)


def read_variants_file(path: Path) -> dict[str, list[str]]:
    """name -> overrides from a YAML mapping of name -> list of 'key=value' strings."""
    if not path.is_file():
        raise ConfigError(f"variants file not found: {path}")
    try:
        raw = yaml.safe_load(read_text_file(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a mapping of variant name -> list of 'key=value' overrides")
    variants: dict[str, list[str]] = {}
    for name, overrides in raw.items():
        name = str(name)
        if not VARIANT_NAME.match(name):
            raise ConfigError(f"{path}: variant name '{name}' must be letters, digits, '_', '-' or '.' "
                              "(it names a run directory)")
        overrides = [] if overrides is None else overrides
        if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
            raise ConfigError(f"{path}: variant '{name}' must be a list of 'key=value' strings, got {overrides!r}")
        variants[name] = overrides
    return variants


def load_variants(spec: str, default_file: Path = DEFAULT_VARIANTS) -> dict[str, list[str]]:
    """`spec` is a variants file, or comma-separated names from the default variants file."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return read_variants_file(path)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    available = read_variants_file(default_file)
    missing = [n for n in names if n not in available]
    if missing or not names:
        raise ConfigError(f"--variants: unknown variant(s) {missing or spec!r} in {default_file}; "
                          f"available: {', '.join(available)}")
    return {n: available[n] for n in names}


def check_variants(variants: dict[str, list[str]], config_path: Path | str | None, common: Sequence[str]) -> None:
    """Resolve every variant's config before training anything, so a typo fails at once."""
    for name, overrides in variants.items():
        try:
            load_config(config_path, [*common, *overrides])
        except ConfigError as exc:
            raise ConfigError(f"variant '{name}': {exc}") from None


def training_time(fold_dirs: Sequence[Path]) -> tuple[float, int]:
    """Seconds and epochs the folds' training took, from their metrics.csv (kept across reruns)."""
    seconds, epochs = 0.0, 0
    for fold_dir in fold_dirs:
        history = pd.read_csv(fold_dir / "metrics.csv")
        seconds += float(history["seconds"].sum())
        epochs += len(history)
    return seconds, epochs


def run_variant(name: str, overrides: list[str], data_root: Path | str, config_path: Path | str | None,
                runs_dir: Path, common: Sequence[str], folds: list[int] | None, progress: bool) -> VariantResult:
    """init -> split -> train -> oof for one variant in <runs>/ablation-<name>/ (reusing what is done)."""
    from fashioncomp import pipeline  # heavy (torch, timm): imported when work starts

    run = pipeline.init_run(runs_dir / f"ablation-{name}", data_root, config_path, [*common, *overrides])
    pipeline.stage_split(run)
    pipeline.stage_train(run, folds, progress=progress)
    scores = pipeline.stage_oof(run)
    trained = range(run.n_folds) if folds is None else folds
    seconds, epochs = training_time([run.fold_dir(k) for k in trained])
    weights = run.config["loss"]["task_weights"]  # a mapping, or a preset's name (none of which silences a task)
    silenced = sorted(k for k, v in weights.items() if float(v) == 0) if isinstance(weights, dict) else []
    return VariantResult(name, list(overrides), scores, seconds, epochs, silenced)


def _cell(value: float, best: float) -> str:
    if math.isnan(value):
        return "–"
    text = f"{value:.4f}"
    return f"**{text}**" if abs(value - best) < 1e-12 else text


def ablation_table(results: Sequence[VariantResult], header: str = "") -> str:
    """The Markdown report: one row per variant, the best score of each column in bold."""
    best = {key: max((r.scores.get(key, math.nan) for r in results
                      if not math.isnan(r.scores.get(key, math.nan))), default=math.nan) for key, _ in METRICS}
    lines = [header.rstrip(), ""] if header else []
    lines += ["| variant | overrides | " + " | ".join(title for _, title in METRICS) + " | train time (s) | epochs |",
              "|---|---|" + "---:|" * (len(METRICS) + 2)]
    for r in results:
        overrides = ", ".join(f"`{o}`" for o in r.overrides) or "(base recipe)"
        cells = [_cell(r.scores.get(key, math.nan), best[key]) for key, _ in METRICS]
        lines.append(f"| {r.name} | {overrides} | " + " | ".join(cells) + f" | {r.train_seconds:.0f} | {r.epochs} |")
    silenced = [r for r in results if r.silenced_tasks]
    if silenced:
        lines.append("")
        lines.append("Single-task baselines: a task with loss weight 0 gets no training signal; its scores in "
                     "that row are those of its untrained head on the shared features (" +
                     "; ".join(f"{r.name}: {', '.join(r.silenced_tasks)}" for r in silenced) + ").")
    return "\n".join(lines) + "\n"


def run_ablation(config_path: Path | str | None, variants: dict[str, list[str]], data_root: Path | str,
                 runs_dir: Path | str = "runs", folds: list[int] | None = (0,), common: Sequence[str] = (),
                 out: Path | str | None = "docs/ablation.md", progress: bool = True) -> list[VariantResult]:
    """Train and score every variant (reusing finished runs), then write the table to `out`."""
    runs_dir = Path(runs_dir)
    folds = None if folds is None else list(folds)
    check_variants(variants, config_path, common)
    started = time.time()
    results = []
    for i, (name, overrides) in enumerate(variants.items(), start=1):
        print(f"== ablation {i}/{len(variants)}: {name} ({' '.join(overrides) or 'base recipe'}) "
              f"-> {runs_dir / f'ablation-{name}'}", flush=True)
        results.append(run_variant(name, overrides, data_root, config_path, runs_dir, common, folds, progress))
    rows = results[0].scores.get("rows", "?") if results else "?"
    header = (f"# Multi-task ablation\n\n"
              f"Base recipe `{config_path}`"
              + (f" with `{' '.join(common)}`" if common else "")
              + f"; data `{data_root}`; folds {'all' if folds is None else folds} ({rows} held-out images). "
              "Scores are out-of-fold at threshold 0.5 (argmax for multiclass attribute groups); train time "
              "is the wall time of the training epochs (validation included), summed over folds. "
              "Best value per column in bold.\n")
    table = ablation_table(results, header)
    if out is not None:
        write_text(out, table)
        print(f"ablation: {len(results)} variant(s) in {time.time() - started:.0f}s -> {out}")
    print(table)
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.ablate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="base recipe YAML (see configs/)")
    parser.add_argument("--variants", default=str(DEFAULT_VARIANTS),
                        help="variants YAML file, or comma-separated names from configs/ablation_variants.yaml")
    parser.add_argument("--data", required=True, help="dataset root (train.csv, images, schema.json)")
    parser.add_argument("--folds", type=fold_list, default=[0], help="folds to train: 0,1 or all (default: 0)")
    parser.add_argument("--out", default="docs/ablation.md", help="Markdown table to write (default: docs/ablation.md)")
    parser.add_argument("--runs", default="runs", help="runs root; variants go to <runs>/ablation-<name>/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every variant, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def action() -> Any:
        variants = load_variants(args.variants)
        return run_ablation(args.config, variants, args.data, args.runs, args.folds, args.overrides, args.out,
                            progress=not args.no_progress)

    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
