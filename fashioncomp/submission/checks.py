"""What every submission format's validation shares: reading a written file back, its header,
its image rows against test.csv, and collecting problems with file, row and reason.

Row numbers are 1-based data rows; the CSV line is row + 1 because of the header (as in the
dataset reader's messages).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from fashioncomp.errors import UserError
from fashioncomp.io import explain_os_error


class SubmissionError(UserError):
    """A submission is invalid or cannot be made from the given predictions and options."""


@dataclass
class Problems:
    """Problems found in the files of one submission, each naming its file and row."""

    items: list[str] = field(default_factory=list)

    def add(self, shown: str, row: int | None, message: str) -> None:
        where = shown if row is None else f"{shown} row {row} (line {row + 1})"
        self.items.append(f"{where}: {message}")

    def raise_if_any(self, what: str) -> None:
        """One line: `what`, the first problem, and how many more there are."""
        if not self.items:
            return
        more = len(self.items) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise SubmissionError(f"{what}: {self.items[0]}{tail}")


@dataclass(frozen=True)
class WrittenTable:
    """A submission file as written: its header and its rows, every field as text."""

    shown: str                      # the name messages use (the final path, not a temporary one)
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def read_table(path: Path, shown: str) -> WrittenTable:
    """Parse a written CSV with the csv module (pandas could silently take a column as the index)."""
    if not path.is_file():
        raise SubmissionError(f"{shown}: file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SubmissionError(explain_os_error(exc, shown, action="read")) from None
    except UnicodeDecodeError:
        raise SubmissionError(f"{shown}: not UTF-8 text") from None
    try:
        records = [tuple(fields) for fields in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise SubmissionError(f"{shown}: cannot be parsed as CSV ({exc})") from None
    if not records:
        raise SubmissionError(f"{shown}: empty file (no header)")
    return WrittenTable(shown, records[0], tuple(records[1:]))


def check_header(problems: Problems, table: WrittenTable, expected: Sequence[str]) -> bool:
    """Exactly the expected columns in order; False (and a problem) otherwise."""
    if list(table.header) == list(expected):
        return True
    problems.add(table.shown, None, f"header is '{','.join(table.header)}', expected '{','.join(expected)}'")
    return False


def complete_rows(problems: Problems, table: WrittenTable) -> list[tuple[int, tuple[str, ...]]]:
    """(row number, fields) of the rows with one field per column; the others are problems."""
    width = len(table.header)
    kept = []
    for row, fields in enumerate(table.rows, start=1):
        if len(fields) == width:
            kept.append((row, fields))
        else:
            problems.add(table.shown, row, f"has {len(fields)} fields, expected {width}")
    return kept


def check_image_rows(problems: Problems, table: WrittenTable, ids: Sequence[str], expected: Sequence[str]) -> None:
    """One row per test image, in test.csv's order: the first difference is reported (the rest follow from it)."""
    column = table.header[0]
    for row, (got, want) in enumerate(zip(ids, expected), start=1):
        if got != want:
            problems.add(table.shown, row, f"{column} '{got}' where test.csv row {row} has '{want}' "
                                           "(rows must be test.csv's, in its order)")
            return
    if len(ids) < len(expected):
        problems.add(table.shown, None, f"has {len(ids)} rows, test.csv has {len(expected)} "
                                        f"(first missing: '{expected[len(ids)]}')")
    elif len(ids) > len(expected):
        problems.add(table.shown, len(expected) + 1, f"{column} '{ids[len(expected)]}' is one row more than "
                                                     f"test.csv's {len(expected)}")


def index_problem(text: str, limit: int, what: str) -> str | None:
    """Why `text` is not an index 0..limit-1 of `what` (None if it is)."""
    if text.isascii() and text.isdigit() and int(text) < limit:
        return None
    return f"'{text}' is not {what} index 0..{limit - 1}"
