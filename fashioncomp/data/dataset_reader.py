"""Read and validate a dataset in the competition layout.

    <root>/train.csv    file_path,category_label,attribute_label
    <root>/test.csv     file_path
    <root>/<file_path>  the images
    <root>/schema.json  optional: names and attribute groups (see schema.py)

Every row is checked before anything is trained; all problems are collected and reported
together, each with its file, row and reason.

Partial labels: `category_label` -1 means "category unknown for this image". In
`attribute_label`, a token `?` (or `-1`) means "no attribute is labelled for this image", and
`?<group>` (e.g. `?colour`) means "this group is not labelled for this image"; the masked labels
are left out of the losses, the metrics and the threshold search.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fashioncomp.data.schema import Schema
from fashioncomp.errors import UserError

TRAIN_COLUMNS = ["file_path", "category_label", "attribute_label"]
TEST_COLUMNS = ["file_path"]
MAX_LISTED_PROBLEMS = 25


class DatasetError(UserError, ValueError):
    """The dataset has problems; the message lists each one with file, row and reason."""


@dataclass
class LabelledData:
    """Training rows with encoded targets."""

    file_paths: list[str]
    categories: np.ndarray        # int64 [N]; -1 = unknown
    attributes: np.ndarray        # uint8 [N, A]; 1 = attribute present
    attribute_known: np.ndarray   # bool [N, A]; False = not labelled for this image

    def __len__(self) -> int:
        return len(self.file_paths)

    def subset(self, index: np.ndarray) -> "LabelledData":
        return LabelledData(
            [self.file_paths[i] for i in index],
            self.categories[index],
            self.attributes[index],
            self.attribute_known[index],
        )


class _Problems:
    def __init__(self, source: Path) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, row: int | None, message: str) -> None:
        # row numbers are 1-based data rows; the CSV line is row + 1 because of the header
        where = f"{self.source}" if row is None else f"{self.source} row {row} (line {row + 1})"
        self.items.append(f"{where}: {message}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        shown = self.items[:MAX_LISTED_PROBLEMS]
        more = len(self.items) - len(shown)
        tail = f"\n  ... and {more} more problems" if more else ""
        raise DatasetError(
            f"{len(self.items)} problem(s) in the dataset:\n  " + "\n  ".join(shown) + tail
        )


def _read_csv(path: Path, expected: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: the file is empty (expected a header: {','.join(expected)})")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot be parsed as CSV: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: the file is empty (expected a header: {','.join(expected)})") from None
    columns = [c.strip() for c in frame.columns]
    if columns != expected:
        raise DatasetError(
            f"{path}: wrong header {','.join(columns)!r}; expected exactly {','.join(expected)!r}"
        )
    frame.columns = columns
    if frame.empty:
        raise DatasetError(f"{path}: has a header but no rows")
    return frame


def check_file_path(root: Path, value: str) -> str | None:
    """Return the problem with a file path, or None if it is a safe, existing file under root."""
    if not value.strip():
        return "empty file_path"
    if value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
        return f"file_path '{value}' is absolute; paths must be relative to the dataset root"
    parts = posixpath.normpath(value.replace("\\", "/")).split("/")
    if ".." in parts:
        return f"file_path '{value}' escapes the dataset root"
    if not (root / value).is_file():
        return f"image file '{value}' does not exist under {root}"
    return None


def _check_paths(frame: pd.DataFrame, root: Path, problems: _Problems, check_exists: bool) -> None:
    seen: dict[str, int] = {}
    for row, value in enumerate(frame["file_path"], start=1):
        problem = check_file_path(root, value)
        if problem and (check_exists or "does not exist" not in problem):
            problems.add(row, problem)
        if value in seen:
            problems.add(row, f"duplicate file_path '{value}' (first seen in row {seen[value]})")
        else:
            seen[value] = row


def _parse_int(text: str) -> int | None:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return None


def load_schema(root: Path, train: pd.DataFrame | None = None) -> Schema:
    """schema.json if present, else counts inferred from train.csv's labels."""
    path = root / "schema.json"
    if path.is_file():
        return Schema.load(path)
    if train is None:
        train = _read_csv(root / "train.csv", TRAIN_COLUMNS)
    cats = [v for v in (_parse_int(x) for x in train["category_label"]) if v is not None]
    attrs = [
        v
        for text in train["attribute_label"]
        for v in (_parse_int(t) for t in text.split())
        if v is not None
    ]
    return Schema.default(max(cats, default=0) + 1, max(attrs, default=-1) + 1 or 1)


def read_train(root: Path | str, schema: Schema | None = None) -> tuple[LabelledData, Schema]:
    """Read and validate `<root>/train.csv`; raise DatasetError listing every bad row."""
    root = Path(root)
    path = root / "train.csv"
    frame = _read_csv(path, TRAIN_COLUMNS)
    schema = schema or load_schema(root, frame)
    problems = _Problems(path)
    _check_paths(frame, root, problems, check_exists=True)

    n, n_attr = len(frame), schema.num_attributes
    categories = np.full(n, -1, dtype=np.int64)
    attributes = np.zeros((n, n_attr), dtype=np.uint8)
    known = np.ones((n, n_attr), dtype=bool)
    groups = {g.name: g for g in schema.groups}

    for i, (cat_text, attr_text) in enumerate(zip(frame["category_label"], frame["attribute_label"])):
        row = i + 1
        cat = _parse_int(cat_text)
        if cat is None:
            problems.add(row, f"category_label '{cat_text}' is not an integer")
        elif not -1 <= cat < schema.num_categories:
            problems.add(row, f"category_label {cat} out of range 0..{schema.num_categories - 1} (or -1 = unknown)")
        else:
            categories[i] = cat
        for token in attr_text.split():
            if token in ("?", "-1"):
                known[i, :] = False
            elif token.startswith("?"):
                group = groups.get(token[1:])
                if group is None:
                    problems.add(row, f"attribute_label token '{token}' names no attribute group (groups: {', '.join(groups) or 'none'})")
                else:
                    known[i, list(group.indices)] = False
            else:
                value = _parse_int(token)
                if value is None:
                    problems.add(row, f"attribute_label token '{token}' is not an integer")
                elif not 0 <= value < n_attr:
                    problems.add(row, f"attribute index {value} out of range 0..{n_attr - 1}")
                else:
                    attributes[i, value] = 1
        for group in schema.multiclass_groups:
            present = [schema.attributes[j] for j in group.indices if attributes[i, j]]
            if len(present) > 1:
                problems.add(row, f"attributes {present} are all in multiclass group '{group.name}', which allows at most one")
    problems.raise_if_any()
    # a positive label wins over an "unknown" marker for the same attribute
    known |= attributes.astype(bool)
    return LabelledData(list(frame["file_path"]), categories, attributes, known), schema


def read_test(root: Path | str, check_exists: bool = False) -> list[str]:
    """Read and validate `<root>/test.csv`.

    Missing test images are not an error here by default: prediction warns and falls back to
    the fold models' prior for those rows, so the submission still has every row.
    """
    root = Path(root)
    path = root / "test.csv"
    frame = _read_csv(path, TEST_COLUMNS)
    problems = _Problems(path)
    _check_paths(frame, root, problems, check_exists=check_exists)
    problems.raise_if_any()
    return list(frame["file_path"])
