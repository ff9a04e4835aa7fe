"""The long format: one row per image and label, `image_id,label_type,label_id`.

label_type is `category` or `attribute` and label_id the index within that type. Each image's
rows are together, in test.csv's order: its category first, then its attributes ascending; an
image with no attribute has its category row only, so every test image appears.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pandas as pd

from fashioncomp.submission.checks import Problems, WrittenTable, check_header, complete_rows, index_problem
from fashioncomp.submission.columns import ImageLabels
from fashioncomp.submission.labels import ATTRIBUTE, CATEGORY, LABEL_KINDS, WITH_ARTICLE, Labels
from fashioncomp.submission.options import SubmissionOptions

COLUMNS = ("image_id", "label_type", "label_id")


@dataclass(frozen=True)
class LongFormat:
    file: str
    summary: str

    def columns(self) -> dict[str, tuple[str, ...]]:
        return {self.file: COLUMNS}

    def render(self, images: Sequence[ImageLabels], labels: Labels,
               options: SubmissionOptions) -> dict[str, pd.DataFrame]:
        rows = []
        for image in images:
            rows.append((image.image_id, CATEGORY, str(image.category)))
            rows.extend((image.image_id, ATTRIBUTE, str(j)) for j in image.attributes)
        return {self.file: pd.DataFrame(rows, columns=[options.header(name) for name in COLUMNS])}

    def check(self, written: Mapping[str, WrittenTable], expected: Sequence[str], labels: Labels,
              options: SubmissionOptions, problems: Problems) -> None:
        found = written[self.file]
        if not check_header(problems, found, [options.header(name) for name in COLUMNS]):
            return
        rows = complete_rows(problems, found)
        for row, (_, kind, label) in rows:
            if kind not in LABEL_KINDS:
                problems.add(found.shown, row, f"{found.header[1]} '{kind}' is neither {' nor '.join(LABEL_KINDS)}")
                continue
            problem = index_problem(label, labels.space.limit(kind), WITH_ARTICLE[kind])
            if problem:
                problems.add(found.shown, row, f"{found.header[2]} {problem}")
        _check_images(problems, found, rows, expected)


def _check_images(problems: Problems, found: WrittenTable, rows: list[tuple[int, tuple[str, ...]]],
                  expected: Sequence[str]) -> None:
    """Every test image once, as one block of rows, in test.csv's order, with exactly one category."""
    blocks: list[tuple[int, str, list[tuple[str, str]]]] = []  # (first row, image id, its (type, id) pairs)
    for row, (image_id, kind, label) in rows:
        if not blocks or blocks[-1][1] != image_id:
            position = len(blocks)
            if position >= len(expected) or image_id != expected[position]:
                want = (f"test.csv row {position + 1} has '{expected[position]}'" if position < len(expected)
                        else f"test.csv has only {len(expected)} images")
                problems.add(found.shown, row, f"{found.header[0]} '{image_id}' starts an image where {want} "
                                               "(each image's rows together, in test.csv's order)")
                return  # what follows is shifted by this one difference
            blocks.append((row, image_id, []))
        blocks[-1][2].append((kind, label))
    for first_row, image_id, pairs in blocks:
        categories = sum(kind == CATEGORY for kind, _ in pairs)
        if categories != 1:
            problems.add(found.shown, first_row, f"image '{image_id}' has {categories} category rows, expected 1")
        repeated = {pair for pair in pairs if pairs.count(pair) > 1}
        if repeated:
            kind, label = sorted(repeated)[0]
            problems.add(found.shown, first_row, f"image '{image_id}' lists {kind} {label} twice")
    if len(blocks) < len(expected):
        problems.add(found.shown, None, f"has {len(blocks)} images, test.csv has {len(expected)} "
                                        f"(first missing: '{expected[len(blocks)]}')")
