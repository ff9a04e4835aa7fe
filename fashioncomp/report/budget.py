"""Section "Time": the budget plan's minutes per stage beside the minutes actually spent."""
from __future__ import annotations

from fashioncomp.budget.timings import PLANNED_AS, read_stage_times
from fashioncomp.report.context import ReportContext
from fashioncomp.report.markdown import _table

OTHER = "setup and report"  # the planned line for every stage not in PLANNED_AS


def section_time(ctx: ReportContext) -> str:
    run = ctx.run
    spent = read_stage_times(run.dir)
    lines = ["## Time", ""]
    if not spent and run.plan is None:
        return "\n".join(lines + ["No stage timings recorded (`timings.json`) and no budget plan."])
    actual: dict[str, float] = {}
    for stage, seconds in spent.items():
        key = PLANNED_AS.get(stage, OTHER)
        actual[key] = actual.get(key, 0.0) + seconds
    planned = run.plan.stage_seconds if run.plan is not None else {}
    keys = list(planned) + [k for k in actual if k not in planned]
    rows = [[k, f"{planned[k] / 60:.1f}" if k in planned else "—", f"{actual[k] / 60:.1f}" if k in actual else "—"]
            for k in keys]
    rows.append(["**total**", f"{sum(planned.values()) / 60:.1f}" if planned else "—", f"{sum(actual.values()) / 60:.1f}"])
    if run.plan is not None:
        p = run.plan
        refit = f" + a refit of {p.refit_epochs} epochs on every row" if p.refit_epochs else ""
        lines += [f"Budget {p.budget_seconds / 60:.1f} min, planned as {p.folds} folds x {p.epochs} epochs{refit} at "
                  f"{p.image_size} px from a probe of {p.speeds['train_ips']:.0f} training and "
                  f"{p.speeds['infer_ips']:.0f} inference images/s (`plan.json`).", ""]
    lines += [_table(["stage", "planned minutes", "actual minutes"], rows), "",
              f"Actual: wall time of every invocation of each stage, summed (`timings.json`); *{OTHER}* also holds "
              "init, plan, split, thresholds and submission. The report's own time is counted from its previous run."]
    return "\n".join(lines)
