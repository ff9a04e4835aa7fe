"""Read and validate a dataset in the competition layout.

    <root>/train.csv    file_path,category_label,attribute_label
    <root>/test.csv     file_path
    <root>/<file_path>  the images
    <root>/schema.json  optional: names and attribute groups (see schema.py)

Every row is checked before anything is trained; all problems are collected and reported
together, each with its file, row and reason. Train images are probed cheaply (header, and the
JPEG end marker: no pixel decoding) so that a file that is not an image stops `init`, and a
truncated one is warned about, before training starts.

Partial labels: `category_label` -1 means "category unknown for this image". In
`attribute_label`, a token `?` (or `-1`) means "no attribute is labelled for this image", and
`?<group>` (e.g. `?colour`) means "this group is not labelled for this image"; the masked labels
are left out of the losses, the metrics and the threshold search.
"""
from __future__ import annotations

import csv
import io
import posixpath
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fashioncomp.data.images import ImageReadError, probe_image
from fashioncomp.data.schema import Schema
from fashioncomp.errors import DataWarning, UserError
from fashioncomp.textfile import TextFileError, decode_text

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
        self.items.append(f"{self.where(row)}: {message}")

    def where(self, row: int | None) -> str:
        # row numbers are 1-based data rows; the CSV line is row + 1 because of the header
        return f"{self.source}" if row is None else f"{self.source} row {row} (line {row + 1})"

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
    """All fields as text. The csv module rather than pandas: pandas would silently take a first
    column as the index when every row has one field too many."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        text = decode_text(path.read_bytes(), path)  # UTF-8 (Excel's byte-order mark too) or UTF-16
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except TextFileError as exc:
        raise DatasetError(str(exc)) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    try:
        records = [row for row in reader if row]  # blank lines skipped
    except csv.Error as exc:
        raise DatasetError(f"{path}: cannot be parsed as CSV at line {reader.line_num}: {exc} "
                           "(unbalanced quotes?)") from None
    if not records:
        raise DatasetError(f"{path}: the file is empty (expected a header: {','.join(expected)})")
    columns = [c.strip() for c in records[0]]
    if columns != expected:
        raise DatasetError(f"{path}: wrong header {','.join(columns)!r}; expected exactly {','.join(expected)!r}")
    rows = records[1:]
    if not rows:
        raise DatasetError(f"{path}: has a header but no rows")
    problems = _Problems(path)
    for row, fields in enumerate(rows, start=1):
        if len(fields) > len(expected):
            problems.add(row, f"has {len(fields)} fields, expected {len(expected)} ({','.join(expected)}): "
                              f"{','.join(fields)!r} (a comma inside a value needs quotes)")
    problems.raise_if_any()
    # missing trailing fields are empty, e.g. `a.jpg,3` = no attributes (as pandas reads it)
    return pd.DataFrame([fields + [""] * (len(expected) - len(fields)) for fields in rows], columns=expected)


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


def _check_paths(frame: pd.DataFrame, root: Path, problems: _Problems, check_exists: bool) -> np.ndarray:
    """Report bad paths; return a mask of the rows whose image file exists and is safe to open."""
    seen: dict[str, int] = {}
    usable = np.zeros(len(frame), dtype=bool)
    for row, value in enumerate(frame["file_path"], start=1):
        problem = check_file_path(root, value)
        if problem and (check_exists or "does not exist" not in problem):
            problems.add(row, problem)
        usable[row - 1] = problem is None
        same_file = posixpath.normpath(value.strip().replace("\\", "/"))  # ./a.jpg and a.jpg are one file
        if same_file in seen:
            problems.add(row, f"duplicate file_path '{value}' (same file as row {seen[same_file]})")
        else:
            seen[same_file] = row
    return usable


def _probe_images(frame: pd.DataFrame, root: Path, rows: np.ndarray, problems: _Problems) -> None:
    """Unreadable images are problems; truncated-looking ones one summarised warning."""
    suspicious = []
    for i in np.flatnonzero(rows):
        rel = frame["file_path"].iat[i]
        try:
            warning = probe_image(root / rel)
        except ImageReadError as exc:
            problems.add(int(i) + 1, str(exc))
            continue
        if warning:
            suspicious.append(f"{problems.where(int(i) + 1)}: '{rel}' {warning}")
    if suspicious:
        shown = suspicious[:MAX_LISTED_PROBLEMS]
        more = f"\n  ... and {len(suspicious) - len(shown)} more" if len(suspicious) > len(shown) else ""
        warnings.warn(f"{len(suspicious)} image(s) will be decoded only as far as they go:\n  "
                      + "\n  ".join(shown) + more, DataWarning, stacklevel=3)


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


def read_train(root: Path | str, schema: Schema | None = None,
               check_images: bool = True) -> tuple[LabelledData, Schema]:
    """Read and validate `<root>/train.csv`; raise DatasetError listing every bad row.

    `check_images` also probes every image file (see images.probe_image); a stage reading a
    dataset that `init` has already validated may skip it.
    """
    root = Path(root)
    path = root / "train.csv"
    frame = _read_csv(path, TRAIN_COLUMNS)
    schema = schema or load_schema(root, frame)
    problems = _Problems(path)
    usable = _check_paths(frame, root, problems, check_exists=True)
    if check_images:
        _probe_images(frame, root, usable, problems)

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
            if len(present) > 1 and not group.discovered:  # a discovered group tolerates label noise
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
