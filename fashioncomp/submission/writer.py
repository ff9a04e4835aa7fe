"""Write a submission in the chosen format, validated before it replaces anything.

Every file is written to a temporary name next to its target, read back and checked against
test.csv (same rows, same order, labels in range, exact header); only then are the files renamed
into place. An invalid submission therefore never replaces a good one.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from fashioncomp.data.dataset_reader import read_test
from fashioncomp.io import atomic_path
from fashioncomp.submission.checks import Problems, read_table
from fashioncomp.submission.columns import ImageLabels
from fashioncomp.submission.formats import FormatChoice, as_options, check_options, submission_format
from fashioncomp.submission.labels import LabelSpace, Labels
from fashioncomp.submission.options import DEFAULT_FORMAT, SubmissionOptions

if TYPE_CHECKING:
    from fashioncomp.data.schema import Schema

def format_attributes(pred: np.ndarray) -> list[str]:
    """Each row's predicted attributes as space-separated indices (attribute.csv's cells)."""
    return [" ".join(str(j) for j in np.flatnonzero(row)) for row in pred]


def image_labels(image_ids: Sequence[str], categories: np.ndarray, attributes: np.ndarray) -> list[ImageLabels]:
    if not len(image_ids) == len(categories) == len(attributes):
        raise ValueError(f"{len(image_ids)} images, {len(categories)} categories, {len(attributes)} attribute rows")
    return [ImageLabels(image_id, int(category), tuple(int(j) for j in np.flatnonzero(row)))
            for image_id, category, row in zip(image_ids, categories, attributes)]


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")  # as fashioncomp.io.write_csv


def _check(options: SubmissionOptions, files: Mapping[str, Path], shown: Mapping[str, str],
           expected_paths: Sequence[str], labels: Labels, what: str) -> None:
    fmt = submission_format(options.format)
    written = {name: read_table(path, shown[name]) for name, path in files.items()}
    problems = Problems()
    fmt.check(written, options.image_ids(expected_paths), labels, options, problems)
    problems.raise_if_any(what)


def write_submission(out_dir: Path, file_paths: Sequence[str], categories: np.ndarray, attributes: np.ndarray, *,
                     schema: "Schema | None" = None, test_paths: Sequence[str] | None = None,
                     options: FormatChoice = DEFAULT_FORMAT) -> tuple[Path, ...]:
    """Write the predictions (category index per image, bool attribute matrix) in the chosen format
    into `out_dir`, validated against `test_paths` (default: `file_paths`) and the schema's label
    counts (default: the arrays' own) before any file is replaced. Returns the files written."""
    out_dir = Path(out_dir)
    options = as_options(options)
    check_options(options)
    fmt = submission_format(options.format)
    labels = Labels.make(LabelSpace.of_schema(schema) if schema is not None
                         else LabelSpace.of_arrays(categories, attributes), options.label_ids)
    frames = fmt.render(image_labels(options.image_ids(file_paths), categories, attributes), labels, options)
    targets = {name: out_dir / name for name in frames}
    with contextlib.ExitStack() as pending:  # each temporary file is renamed into place only if all is valid
        temporary = {name: pending.enter_context(atomic_path(target)) for name, target in targets.items()}
        for name, frame in frames.items():
            temporary[name].write_bytes(_csv_bytes(frame))
        _check(options, temporary, {name: str(target) for name, target in targets.items()},
               list(file_paths if test_paths is None else test_paths), labels,
               f"invalid {options.format} submission, not written ({out_dir} keeps its previous files)")
    return tuple(targets.values())


def validate_submission(out_dir: Path, data_root: Path, schema: "Schema",
                        options: FormatChoice = DEFAULT_FORMAT) -> None:
    """Check the submission files already in `out_dir` against `<data_root>/test.csv`."""
    out_dir = Path(out_dir)
    options = as_options(options)
    files = {name: out_dir / name for name in submission_format(options.format).columns()}
    _check(options, files, {name: str(path) for name, path in files.items()}, read_test(data_root),
           Labels.make(LabelSpace.of_schema(schema), options.label_ids), f"submission in {out_dir} is invalid")
