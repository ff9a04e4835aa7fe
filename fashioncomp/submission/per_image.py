"""Formats with one row per test image: an image id column, then label columns (see columns.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pandas as pd

from fashioncomp.submission.checks import Problems, WrittenTable, check_header, check_image_rows, complete_rows
from fashioncomp.submission.columns import LABEL_COLUMNS, ImageLabels
from fashioncomp.submission.labels import Labels
from fashioncomp.submission.options import SubmissionOptions


@dataclass(frozen=True)
class ImageTable:
    file: str
    id_column: str
    label_columns: tuple[tuple[str, str], ...]  # (column name, kind in LABEL_COLUMNS)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id_column, *(name for name, _ in self.label_columns))


@dataclass(frozen=True)
class PerImageFormat:
    tables: tuple[ImageTable, ...]
    summary: str

    def columns(self) -> dict[str, tuple[str, ...]]:
        return {table.file: table.columns for table in self.tables}

    def render(self, images: Sequence[ImageLabels], labels: Labels,
               options: SubmissionOptions) -> dict[str, pd.DataFrame]:
        frames = {}
        for table in self.tables:
            data = {options.header(table.id_column): [image.image_id for image in images]}
            for name, kind in table.label_columns:
                write = LABEL_COLUMNS[kind].write
                data[options.header(name)] = [write(image, labels) for image in images]
            frames[table.file] = pd.DataFrame(data)
        return frames

    def check(self, written: Mapping[str, WrittenTable], expected: Sequence[str], labels: Labels,
              options: SubmissionOptions, problems: Problems) -> None:
        for table in self.tables:
            found = written[table.file]
            if not check_header(problems, found, [options.header(name) for name in table.columns]):
                continue  # the cells of unknown columns mean nothing
            check_image_rows(problems, found, [fields[0] if fields else "" for fields in found.rows], expected)
            for row, fields in complete_rows(problems, found):
                for (name, kind), text in zip(table.label_columns, fields[1:]):
                    problem = LABEL_COLUMNS[kind].problem(text, labels)
                    if problem:
                        problems.add(found.shown, row, f"{options.header(name)} {problem}")
