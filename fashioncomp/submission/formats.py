"""The submission formats a competition may want, by name (`submission.format`).

    two_csv          category.csv   file_path,category_label      (this project's own; the default)
                     attribute.csv  file_path,attribute_label     space-separated attribute indices
    single_csv       submission.csv file_path,category_label,attribute_label
    image_label_ids  submission.csv image_id,label_id             category and attribute ids in one
                                                                  space-separated list (labels.py)
    long             submission.csv image_id,label_type,label_id  one row per image and label (long.py)

Each format renders the predictions into tables and checks written tables against test.csv; a
new format is one more entry here (a PerImageFormat is data only).
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, Union

import pandas as pd

from fashioncomp.config import ConfigError
from fashioncomp.submission.checks import Problems, WrittenTable
from fashioncomp.submission.columns import ImageLabels
from fashioncomp.submission.labels import Labels
from fashioncomp.submission.long import LongFormat
from fashioncomp.submission.options import SubmissionOptions, known
from fashioncomp.submission.per_image import ImageTable, PerImageFormat

# the one file a Kaggle code competition collects from the kernel's working directory
CODE_COMPETITION_FILE = "submission.csv"

# what names a format where one is chosen: options, a config (whole or its submission section), a name
FormatChoice = Union[SubmissionOptions, Mapping[str, Any], str]


class SubmissionFormat(Protocol):
    summary: str

    def columns(self) -> dict[str, tuple[str, ...]]:
        """File name -> the format's own column names, in order (submission.columns may rename them)."""

    def render(self, images: Sequence[ImageLabels], labels: Labels,
               options: SubmissionOptions) -> dict[str, pd.DataFrame]: ...

    def check(self, written: Mapping[str, WrittenTable], expected: Sequence[str], labels: Labels,
              options: SubmissionOptions, problems: Problems) -> None:
        """Add a problem for every way the written tables differ from test.csv and the label space."""


SUBMISSION_FORMATS: dict[str, SubmissionFormat] = {
    "two_csv": PerImageFormat((ImageTable("category.csv", "file_path", (("category_label", "category"),)),
                               ImageTable("attribute.csv", "file_path", (("attribute_label", "attributes"),))),
                              "one row per image in each: its category; its attributes"),
    "single_csv": PerImageFormat((ImageTable(CODE_COMPETITION_FILE, "file_path",
                                             (("category_label", "category"), ("attribute_label", "attributes"))),),
                                 "one row per image: its category and its attributes"),
    "image_label_ids": PerImageFormat((ImageTable(CODE_COMPETITION_FILE, "image_id", (("label_id", "label_ids"),)),),
                                      "one row per image: its category and attribute ids in one list"),
    "long": LongFormat(CODE_COMPETITION_FILE, "one row per image and label"),
}


def submission_format(name: str) -> SubmissionFormat:
    """The format called `name`; an unknown name is a ConfigError listing the known ones."""
    return SUBMISSION_FORMATS[known(SUBMISSION_FORMATS, "submission.format", name)]


def as_options(choice: FormatChoice) -> SubmissionOptions:
    """Options from themselves, a config (whole or its `submission` section) or a format name."""
    if isinstance(choice, SubmissionOptions):
        return choice
    if isinstance(choice, str):
        return SubmissionOptions(format=choice)
    return SubmissionOptions.from_config(choice)


def submission_files(cfg_or_format_name: FormatChoice) -> tuple[str, ...]:
    """The file names the chosen format writes (what a kernel collects as its output)."""
    return tuple(submission_format(as_options(cfg_or_format_name).format).columns())


def check_options(options: SubmissionOptions) -> None:
    """The format exists; submission.columns renames only columns it writes and leaves each file's headers distinct."""
    own = submission_format(options.format).columns()
    all_columns = sorted({name for names in own.values() for name in names})
    unknown = [name for name in options.columns if name not in all_columns]
    if unknown:
        raise ConfigError(f"'submission.columns' renames '{unknown[0]}', which format {options.format} does not "
                          f"write (its columns: {', '.join(all_columns)})")
    for file, names in own.items():
        headers = [options.header(name) for name in names]
        if len(set(headers)) < len(headers):
            raise ConfigError(f"'submission.columns' gives {file} the header {','.join(headers)}: a name twice")
