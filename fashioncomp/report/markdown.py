"""Markdown helpers of the report: number formatting, tables, image links and labels."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from fashioncomp.metrics import ATTRIBUTE_F1, DEFAULT_ATTRIBUTE_F1
from fashioncomp.report.context import ReportContext


def headline(attribute_metric: str) -> tuple[tuple[str, str], ...]:
    """(score key, label) of the headline scores: category accuracy, the attribute F1 the run takes
    the leaderboard to use (`metrics.attribute_f1`), the other attribute F1s, and the score."""
    chosen = ATTRIBUTE_F1[attribute_metric]
    others = tuple((m.key, m.label) for m in ATTRIBUTE_F1.values() if m is not chosen)
    return (("category_accuracy", "category accuracy"), (chosen.key, chosen.label), *others,
            ("score", f"score (mean of category accuracy and {chosen.label})"))


HEADLINE = headline(DEFAULT_ATTRIBUTE_F1)


def _fmt(value: Any, signed: bool = False) -> str:
    """A score with 4 decimals (signed for gains); "—" for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; float and None cells go through `_fmt`."""
    def cell(v: Any) -> str:
        return _fmt(v) if v is None or isinstance(v, (float, np.floating)) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _image(link: str, alt: str) -> str:
    """A Markdown image link."""
    return f"![{alt}]({link})"


def _attribute_label(ctx: ReportContext, index: int) -> str:
    """`name (group)` for an attribute in a group, else its name."""
    group = next((g.name for g in ctx.run.schema.groups if index in g.indices), None)
    name = ctx.run.schema.attributes[index]
    return f"{name} ({group})" if group else name


def _slug(text: str) -> str:
    """`text` safe for a file name."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
