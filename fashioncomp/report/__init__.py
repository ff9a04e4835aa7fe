"""python -m fashioncomp.report --run runs/<name>

Write `runs/<name>/report.md` with figures in `runs/<name>/report/`: a summary of the CV scores,
what the pipeline decided about the labels (attribute groups, thresholds), the gains from
threshold tuning, TTA and the fold ensemble, training curves per fold, the category confusion
matrix, per-attribute F1 with the chosen thresholds and per-group scores.

The report only reads what the stages wrote (and the labels in train.csv); it never trains or
predicts, so it is cheap to rerun and works on a partial run, saying what is missing.

How the TTA gain is measured without predicting again: training scores each epoch on the
held-out fold without TTA at threshold 0.5, and `best.pt` keeps those scores for the saved
model. The oof stage predicts exactly those rows with that model *with* TTA. Scoring each fold's
OOF rows the same way (threshold 0.5) and comparing gives the TTA gain per fold.
"""
from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import Callable

from fashioncomp.cli import timed
from fashioncomp.io import write_text
from fashioncomp.report.attributes import section_attributes
from fashioncomp.report.budget import section_time
from fashioncomp.report.confusion import section_confusion
from fashioncomp.report.context import (DPI, FIGURE_DIR, MAX_BARS_PER_FIGURE, OOF, FoldState, ReportContext,
                                        load_context)
from fashioncomp.report.decisions import section_label_decisions
from fashioncomp.report.folds import section_folds
from fashioncomp.report.gains import section_gains
from fashioncomp.report.groups import GROUP_METRICS, section_groups
from fashioncomp.report.markdown import HEADLINE
from fashioncomp.report.plots import (MAX_ANNOTATED_CLASSES, SERIES_COLOURS, plot_attribute_f1, plot_confusion,
                                      plot_fold_curves, plot_folds_overview, plot_group_scores)
from fashioncomp.report.summary import section_summary

__all__ = [
    "DPI", "FIGURE_DIR", "GROUP_METRICS", "HEADLINE", "MAX_ANNOTATED_CLASSES", "MAX_BARS_PER_FIGURE", "OOF",
    "SECTIONS", "SERIES_COLOURS", "FoldState", "ReportContext", "load_context", "main", "plot_attribute_f1",
    "plot_confusion", "plot_fold_curves", "plot_folds_overview", "plot_group_scores", "section_attributes",
    "section_confusion", "section_folds", "section_gains", "section_groups", "section_label_decisions",
    "section_summary", "section_time", "write_report",
]

SECTIONS: tuple[Callable[[ReportContext], str], ...] = (
    section_summary, section_label_decisions, section_time, section_gains, section_folds, section_confusion,
    section_attributes, section_groups,
)


def write_report(run_dir: Path | str) -> Path:
    """Write `<run_dir>/report.md` and its figures in `<run_dir>/report/`; return the report's path."""
    ctx = load_context(run_dir)
    # read at call time, so `fashioncomp.report.MAX_BARS_PER_FIGURE` stays the knob it was
    ctx.max_bars_per_figure = MAX_BARS_PER_FIGURE
    ctx.figure_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [f"# Report: {ctx.run.name}", "", f"Run directory `{ctx.run.dir}`, generated {stamp} by "
             "`python -m fashioncomp.report`."]
    parts += ["\n" + section(ctx) for section in SECTIONS]
    # figures of an earlier report that this one did not draw (e.g. a fold since removed) would mislead
    for stale in set(ctx.figure_dir.glob("*.png")) - set(ctx.figures):
        stale.unlink()
    return write_text(ctx.run.dir / "report.md", "\n".join(parts) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m fashioncomp.report --run R`; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory, e.g. runs/default")
    args = parser.parse_args(argv)
    return timed(args.run, "report", lambda: print(f"report: {write_report(args.run)}"))
