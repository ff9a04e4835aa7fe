"""The plan stage: probe this machine, plan the run into `budget.minutes`, save `plan.json`."""
from __future__ import annotations

import subprocess
import sys
import time

from fashioncomp.budget.planner import Plan, Workload, limits_from_config, parse_duration, plan_budget
from fashioncomp.budget.probe import probe_speeds
from fashioncomp.data.dataset_reader import read_test
from fashioncomp.data.images import build_image_cache
from fashioncomp.io import write_json
from fashioncomp.linear.cost import time_linear
from fashioncomp.pipeline import Run
from fashioncomp.training.progressive import progressive_settings


# processes run_all.sh starts after this stage (split, train, oof, refit, thresholds, predict, submission, report)
LATER_PROCESSES = 8


def startup_seconds() -> float:
    """What one stage pays before it works: a fresh Python importing the pipeline (torch, timm, ...)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import fashioncomp.pipeline"], check=True, capture_output=True)
    return time.perf_counter() - started


def stage_plan(run: Run, force: bool = False) -> Plan | None:
    """Write `plan.json` (folds, image size, epochs, planned minutes per stage); None without a budget."""
    cfg = run.recipe_config
    out = run.dir / "plan.json"
    if cfg["budget"]["minutes"] is None:
        print("plan: no budget set (budget.minutes / run_all.sh --budget): epochs come from train.epochs")
        return None
    if run.plan is not None and not force:
        print(f"plan: {out} is up to date: " + run.plan.describe())
        return run.plan
    budget_seconds = parse_duration(cfg["budget"]["minutes"])
    started = time.perf_counter()
    data = run.train_data()
    n_test = len(read_test(run.data_root)) if (run.data_root / "test.csv").is_file() else 0
    size = int(cfg["data"]["image_size"])
    images, _ = build_image_cache(run.data_root, data.file_paths, size, run.cache_dir)
    speeds = probe_speeds(cfg, images, data, run.tasks, run.schema.num_attributes)
    lcfg = cfg["linear"]
    linear = (time_linear(images, data, run.schema.num_categories, float(lcfg["c"]), "attributes" in lcfg["tasks"],
                          seed=int(cfg["seed"])) if lcfg["enabled"] else None)
    probe_seconds = time.perf_counter() - started
    startup = startup_seconds()
    limits = limits_from_config(cfg["budget"], int(cfg["split"]["n_folds"]), size)
    fixed = float(cfg["budget"]["fixed_seconds"]) + probe_seconds + (LATER_PROCESSES + bool(linear)) * startup
    work = Workload(len(data), n_test, len(cfg["predict"]["tta"]), fixed, refit=bool(cfg["refit"]["enabled"]),
                    refit_ratio=float(cfg["refit"]["epochs_ratio"]),
                    progressive=progressive_settings(cfg["train"]),
                    validated_epochs=cfg["train"]["validate_last"], linear=linear)
    plan = plan_budget(budget_seconds, speeds, work, limits)
    write_json(out, plan.to_dict())
    print(f"plan (probe {probe_seconds:.0f}s, {startup:.1f}s to start a stage): " + plan.describe() + f"\nplan: saved to {out}")
    return plan
