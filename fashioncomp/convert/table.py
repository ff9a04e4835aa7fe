"""Generic converters `csv` and `json`: a table of images with a category and attributes, its
columns named by options (see records.py for the file formats).

- image: `image_col`, formatted with `image_pattern` ("{}" = the value, e.g. "{}.jpg") under the
  folder `images` of SRC; the test rows' under `test_images` (default: the same folder).
- category: one name or id per row; empty or null = unknown (-1).
- attributes: names or ids, a JSON list or text split at commas / whitespace (or at
  `attribute_sep`); empty = none, null or "?" = unknown.
- train / test: `split_col` with `train_values` / `test_values` (`drop_values` are left out), or a
  separate `test_table`, or neither (no test.csv).

Names become dense ids 0..K-1 in sorted order (numerically, if they are ids); schema.json holds
the names, so index i of a prediction means the source's name `schema.json[...][i]`.
"""
from __future__ import annotations

import posixpath
import re
from functools import partial
from pathlib import Path
from typing import Callable

from fashioncomp.convert.converted import (UNKNOWN_ATTRIBUTES, UNKNOWN_CATEGORY, ConvertedDataset, ConvertError,
                                           ImageRow)
from fashioncomp.convert.records import RECORD_READERS, Record, RecordReader
from fashioncomp.convert.registry import Option, register_converter
from fashioncomp.convert.source import folder_in_source
from fashioncomp.convert.vocabulary import Vocabulary
from fashioncomp.data.schema import Schema

DEFAULT_SEPARATORS = re.compile(r"[,\s]+")
ImagePath = Callable[[Record], str]  # a record -> its image's path under SRC
UNKNOWN_VALUES = (None, UNKNOWN_ATTRIBUTES)


def _options(kind: str) -> tuple[Option, ...]:
    options = (
        Option("table", f"the table, relative to SRC (default: train.{kind})", f"train.{kind}"),
        Option("image_col", "column of the image file name or id", required=True),
        Option("category_col", "column of the category name or id", required=True),
        Option("attributes_col", "column of the attribute names or ids", required=True),
        Option("attribute_sep", "separator of the attribute names in one cell (default: commas and whitespace)"),
        Option("image_pattern", "file name from the image value, '{}' = the value (e.g. '{}.jpg')", "{}"),
        Option("images", "folder under SRC holding the images (default: SRC)", ""),
        Option("split_col", "column saying train or test (see --train-values, --test-values, --drop-values)"),
        Option("train_values", "values of --split-col for train.csv", "train", is_list=True),
        Option("test_values", "values of --split-col for test.csv", "test", is_list=True),
        Option("drop_values", "values of --split-col left out (e.g. val)", None, is_list=True),
        Option("test_table", "a separate table of the test images (only --image-col is read)"),
        Option("test_images", "folder under SRC holding the test images (default: --images)"),
    )
    if kind == "json":
        options += (Option("records_key", "top-level list of records in a JSON object (default: 'images' or "
                                          "the only list)"),)
    return options


def _text_value(record: Record, column: str, what: str) -> str | None:
    """A single value as text; None when missing or null."""
    value = record.fields.get(column)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3.0 from a JSON writer is the id 3
    if isinstance(value, (dict, list)) or isinstance(value, bool):
        raise ConvertError(f"{record.origin}: {what} '{column}' must be one name or id, got {value!r}")
    return str(value).strip()


def _attribute_names(record: Record, column: str, separator: str | None) -> list[str] | None:
    """The row's attribute names; None = unknown."""
    value = record.fields.get(column)
    if isinstance(value, list):
        if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            raise ConvertError(f"{record.origin}: attributes '{column}' must list names or ids, got {value!r}")
        names = [str(v).strip() for v in value]
    else:
        text = _text_value(record, column, "attributes")
        if text in UNKNOWN_VALUES:
            return None
        names = text.split(separator) if separator else DEFAULT_SEPARATORS.split(text)
    names = [n.strip() for n in names if n.strip()]
    return None if UNKNOWN_ATTRIBUTES in names else names


def _image_path(record: Record, column: str, pattern: str, folder: str) -> str:
    """`pattern` with the image value, under `folder`."""
    value = _text_value(record, column, "image")
    if not value:
        raise ConvertError(f"{record.origin}: no image in column '{column}'")
    path = posixpath.normpath(posixpath.join(folder, pattern.replace("{}", value)))
    if path.startswith(("/", "../")) or path == "..":
        raise ConvertError(f"{record.origin}: image '{value}' is not a path inside SRC")
    return path


def _check_columns(records: list[Record], columns: dict[str, str | None], path: Path) -> None:
    if not records:
        raise ConvertError(f"{path}: has no records")
    seen = set().union(*(r.fields for r in records))
    for option, column in columns.items():
        if column is not None and column not in seen:
            raise ConvertError(f"{path}: no column '{column}' (--{option.replace('_', '-')}); "
                               f"columns: {', '.join(sorted(seen))}")


def _folder(src: Path, folder: str, option: str) -> str:
    """The folder as the posix prefix of the rows' paths ("" = SRC itself)."""
    folder_in_source(src, folder, option)
    return posixpath.normpath(folder.replace("\\", "/")) if folder else ""


def _split(records: list[Record], column: str, values: dict[str, list[str]]) -> dict[str, list[Record]]:
    where = {v: split for split, vs in values.items() for v in vs}
    out: dict[str, list[Record]] = {split: [] for split in values}
    for record in records:
        value = _text_value(record, column, "split")
        if value not in where:
            raise ConvertError(f"{record.origin}: split '{value}' in column '{column}' is none of "
                               + "; ".join(f"--{s}-values {','.join(vs) or '(none)'}" for s, vs in values.items()))
        out[where[value]].append(record)
    return out


def _parts(read: RecordReader, src: Path, records: list[Record], image_col: str, split_col: str | None,
           values: dict[str, list[str]], test_table: str | None, records_key: str | None) -> dict[str, list[Record]]:
    """The records of train.csv, test.csv and the dropped ones: by `split_col`, or a test table."""
    if split_col is not None and test_table is not None:
        raise ConvertError("give either --split-col or --test-table, not both")
    if split_col is not None:
        return _split(records, split_col, values)
    test = [] if test_table is None else read(src / test_table, records_key)
    if test_table is not None:
        _check_columns(test, {"image_col": image_col}, src / test_table)
    return {"train": records, "test": test, "drop": []}


def _encode_train(records: list[Record], columns: dict[str, str], attribute_sep: str | None, image_path: ImagePath,
                  table: Path) -> tuple[list[ImageRow], Vocabulary, Vocabulary, tuple[int, int]]:
    """train.csv's rows, the category and attribute names, and how many rows have unknown labels."""
    labelled = [(r, _text_value(r, columns["category_col"], "category") or None,
                 _attribute_names(r, columns["attributes_col"], attribute_sep)) for r in records]
    categories = Vocabulary(c for _, c, _ in labelled if c is not None)
    attributes = Vocabulary(a for _, _, names in labelled for a in names or ())
    for vocabulary, column in ((categories, columns["category_col"]), (attributes, columns["attributes_col"])):
        if not len(vocabulary):
            raise ConvertError(f"{table}: no train record has a value in column '{column}'")
    rows = [ImageRow(image_path(r), r.origin, UNKNOWN_CATEGORY if c is None else categories.index[c],
                     UNKNOWN_ATTRIBUTES if names is None else
                     " ".join(map(str, sorted({attributes.index[a] for a in names}))))
            for r, c, names in labelled]
    unknown = sum(c is None for _, c, _ in labelled), sum(names is None for _, _, names in labelled)
    return rows, categories, attributes, unknown


def read_table(kind: str, src: Path, table: str, image_col: str, category_col: str, attributes_col: str,
               attribute_sep: str | None, image_pattern: str, images: str, split_col: str | None,
               train_values: list[str], test_values: list[str], drop_values: list[str], test_table: str | None,
               test_images: str | None, records_key: str | None = None) -> ConvertedDataset:
    read = RECORD_READERS[kind]
    records = read(src / table, records_key)
    columns = {"image_col": image_col, "category_col": category_col, "attributes_col": attributes_col}
    _check_columns(records, {**columns, "split_col": split_col}, src / table)
    parts = _parts(read, src, records, image_col, split_col,
                   {"train": train_values, "test": test_values, "drop": drop_values}, test_table, records_key)
    if not parts["train"]:
        raise ConvertError(f"{src / table}: no record goes to train.csv")
    train_folder = _folder(src, images, "images")
    test_folder = _folder(src, images if test_images is None else test_images, "test_images")

    train, categories, attributes, unknown = _encode_train(
        parts["train"], columns, attribute_sep, partial(_image_path, column=image_col, pattern=image_pattern,
                                                        folder=train_folder), src / table)
    test = [ImageRow(_image_path(r, image_col, image_pattern, test_folder), r.origin) for r in parts["test"]]
    dropped = f", {len(parts['drop'])} dropped" if parts["drop"] else ""
    notes = [f"{len(train)} train rows, {len(test)} test rows{dropped}",
             f"{len(categories)} categories, {len(attributes)} attributes: names -> dense ids in sorted order "
             "(schema.json lists the names)"]
    if any(unknown):
        notes.append(f"unknown labels kept as unknown: {unknown[0]} categories (-1), {unknown[1]} attribute sets (?)")
    return ConvertedDataset(train, test, Schema(categories.names, attributes.names), src, notes=notes)


for _kind, _summary in (("csv", "a CSV table with a column mapping"),
                        ("json", "JSON records, {\"images\": [...]} or JSON lines, with a column mapping")):
    register_converter(_kind, _summary, _options(_kind))(partial(read_table, _kind))
