"""The two competition submission files, written and then validated against test.csv.

    category.csv   file_path,category_label      one integer per row
    attribute.csv  file_path,attribute_label     space-separated attribute indices (may be empty)
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from fashioncomp.data.dataset_reader import read_test
from fashioncomp.data.schema import Schema
from fashioncomp.errors import UserError
from fashioncomp.io import write_csv


class SubmissionError(UserError):
    pass


def format_attributes(pred: np.ndarray) -> list[str]:
    return [" ".join(str(j) for j in np.flatnonzero(row)) for row in pred]


def write_submission(out_dir: Path, file_paths: Sequence[str], categories: np.ndarray,
                     attributes: np.ndarray) -> tuple[Path, Path]:
    category_csv = write_csv(out_dir / "category.csv",
                             pd.DataFrame({"file_path": list(file_paths), "category_label": categories.astype(int)}))
    attribute_csv = write_csv(out_dir / "attribute.csv",
                              pd.DataFrame({"file_path": list(file_paths), "attribute_label": format_attributes(attributes)}))
    return category_csv, attribute_csv


def validate_submission(out_dir: Path, data_root: Path, schema: Schema) -> None:
    """Same rows in the same order as test.csv, labels in range, exact headers."""
    expected = read_test(data_root)
    cat = pd.read_csv(out_dir / "category.csv", dtype=str, keep_default_na=False)
    attr = pd.read_csv(out_dir / "attribute.csv", dtype=str, keep_default_na=False)
    problems = []
    if list(cat.columns) != ["file_path", "category_label"]:
        problems.append(f"category.csv header is {list(cat.columns)}")
    if list(attr.columns) != ["file_path", "attribute_label"]:
        problems.append(f"attribute.csv header is {list(attr.columns)}")
    for name, frame in (("category.csv", cat), ("attribute.csv", attr)):
        if list(frame["file_path"]) != expected:
            problems.append(f"{name}: file_path column differs from test.csv (rows or order)")
    labels = pd.to_numeric(cat["category_label"], errors="coerce")
    if labels.isna().any() or not labels.between(0, schema.num_categories - 1).all():
        problems.append("category.csv: a category_label is not an integer in range")
    for row, text in enumerate(attr["attribute_label"], start=1):
        tokens = text.split()
        if not all(t.isdigit() and int(t) < schema.num_attributes for t in tokens):
            problems.append(f"attribute.csv row {row}: attribute_label '{text}' has an index out of range")
            break
    if problems:
        raise SubmissionError(f"submission in {out_dir} is invalid:\n  " + "\n  ".join(problems))
