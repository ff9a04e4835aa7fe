"""A table as records (field name -> value), each with where it came from, for the generic
converters: CSV (header row), JSON (a list of records, or an object holding one such list, e.g.
{"images": [...]}) and JSON lines (one record per line)."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fashioncomp.convert.converted import ConvertError
from fashioncomp.textfile import TextFileError, read_text_file

PREFERRED_RECORD_KEYS = ("images", "annotations", "data", "records")


@dataclass(frozen=True)
class Record:
    origin: str              # "file line N" or "file record N"
    fields: dict[str, Any]


RecordReader = Callable[[Path, str | None], list[Record]]  # (file, records_key) -> its records


def _text(path: Path) -> str:
    try:
        return read_text_file(path)
    except TextFileError as exc:
        raise ConvertError(str(exc)) from None


def read_csv_records(path: Path, records_key: str | None = None) -> list[Record]:
    reader = csv.reader(io.StringIO(_text(path), newline=""), strict=True)
    records: list[Record] = []
    header: list[str] | None = None
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank line
            if header is None:
                header = [f.strip() for f in fields]
                continue
            where = f"{path} line {reader.line_num}"
            if len(fields) > len(header):
                raise ConvertError(f"{where}: {len(fields)} fields but the header has {len(header)} "
                                   "(a comma inside a value needs quotes)")
            records.append(Record(where, dict(zip(header, fields + [""] * (len(header) - len(fields))))))
    except csv.Error as exc:
        raise ConvertError(f"{path} line {reader.line_num}: cannot be parsed as CSV: {exc}") from None
    if header is None:
        raise ConvertError(f"{path}: the file is empty (expected a header row)")
    return records


def _records_in(value: Any, path: Path, records_key: str | None) -> tuple[list[Any], str]:
    """The list of records in a parsed JSON document, and what it is called in messages."""
    if isinstance(value, list):
        return value, "record"
    if not isinstance(value, dict):
        raise ConvertError(f"{path}: expected a list of records or an object holding one, got {type(value).__name__}")
    lists = [k for k, v in value.items() if isinstance(v, list)]
    if records_key is not None:
        if not isinstance(value.get(records_key), list):
            raise ConvertError(f"{path}: no list '{records_key}' at the top level "
                               f"(lists: {', '.join(lists) or 'none'})")
        return value[records_key], f"{records_key} record"
    key = next((k for k in PREFERRED_RECORD_KEYS if k in lists), lists[0] if len(lists) == 1 else None)
    if key is None:
        raise ConvertError(f"{path}: which top-level list holds the records? Pass --records-key "
                           f"(lists: {', '.join(lists) or 'none'})")
    return value[key], f"{key} record"


def read_json_records(path: Path, records_key: str | None = None) -> list[Record]:
    text = _text(path)
    try:
        items, label = _records_in(json.loads(text), path, records_key)
        located = [(f"{path} {label} {i}", item) for i, item in enumerate(items, start=1)]
    except json.JSONDecodeError as exc:
        if not exc.msg.startswith("Extra data"):
            raise ConvertError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
        located = _json_lines(text, path)  # a second document after the first: JSON lines
    records = []
    for where, item in located:
        if not isinstance(item, dict):
            raise ConvertError(f"{where}: expected an object of field -> value, got {type(item).__name__}")
        records.append(Record(where, item))
    return records


def _json_lines(text: str, path: Path) -> list[tuple[str, Any]]:
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append((f"{path} line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ConvertError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
    return out


RECORD_READERS: dict[str, RecordReader] = {
    "csv": read_csv_records,
    "json": read_json_records,
}
