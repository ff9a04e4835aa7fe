"""Budgets as the user writes them ('20m', '1.5h', '90s', or minutes), without heavy imports:
the config checks them when it is loaded."""
from __future__ import annotations

import math

from fashioncomp.errors import UserError


class BudgetError(UserError, ValueError):
    """A budget that is not a duration, or that cannot hold even the smallest run."""


_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int) -> float:
    """'20m', '1.5h', '90s' or a number of minutes -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), "m"
    else:
        raw = str(text).strip().lower()
        unit = next((u for u in sorted(_UNITS, key=len, reverse=True) if raw.endswith(u)), "m")
        number = raw[: -len(unit)] if raw.endswith(unit) else raw
        try:
            value = float(number)
        except ValueError:
            raise BudgetError(f"budget '{text}' is not a duration like 20m, 1.5h or 90s") from None
    if not value > 0 or math.isinf(value):
        raise BudgetError(f"budget '{text}' must be a positive duration like 20m, 1.5h or 90s")
    return value * _UNITS[unit]
