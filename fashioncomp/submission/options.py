"""The `submission` config section as one value: which format, how images and labels are named,
and the headers a competition wants instead of the format's own."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable, Mapping, Sequence

from fashioncomp.config import ConfigError
from fashioncomp.submission.checks import SubmissionError
from fashioncomp.submission.labels import LABEL_ID_STYLES

DEFAULT_FORMAT = "two_csv"

# submission.image_id: test.csv's file_path -> the image id a submission writes
IMAGE_IDS: dict[str, Callable[[str], str]] = {
    "path": lambda file_path: file_path,
    "stem": lambda file_path: PurePosixPath(file_path.replace("\\", "/")).stem,  # images/ab12.jpg -> ab12
}


def known(registry: Mapping[str, Any], key: str, value: Any) -> Any:
    """`value` if the registry has it; else one ConfigError listing the known names."""
    if value in registry:
        return value
    raise ConfigError(f"'{key}' must be one of {', '.join(registry)}, got {value!r}")


@dataclass(frozen=True)
class SubmissionOptions:
    format: str = DEFAULT_FORMAT
    image_id: str = "path"
    label_ids: str = "prefixed"
    columns: Mapping[str, str] = field(default_factory=dict)  # the format's column -> header written

    def __post_init__(self) -> None:
        known(IMAGE_IDS, "submission.image_id", self.image_id)
        known(LABEL_ID_STYLES, "submission.label_ids", self.label_ids)
        if not isinstance(self.columns, Mapping) or not all(
                isinstance(v, str) and v.strip() and "\n" not in v for v in self.columns.values()):
            raise ConfigError(f"'submission.columns' must map column names to non-empty one-line headers, "
                              f"got {self.columns!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "SubmissionOptions":
        """From a resolved config or its `submission` section; keys left out keep their defaults."""
        section = config.get("submission", config)
        return cls(**{f.name: section[f.name] for f in dataclasses.fields(cls) if f.name in section})

    def with_format(self, name: str) -> "SubmissionOptions":
        return dataclasses.replace(self, format=name)

    def header(self, column: str) -> str:
        return self.columns.get(column, column)

    def image_ids(self, file_paths: Sequence[str]) -> list[str]:
        """The image id of each path; two paths with one id would make the submission ambiguous."""
        ids = [IMAGE_IDS[self.image_id](path) for path in file_paths]
        first_row: dict[str, int] = {}
        for row, image_id in enumerate(ids, start=1):
            if image_id in first_row:
                earlier = first_row[image_id]
                raise SubmissionError(
                    f"submission.image_id '{self.image_id}': test.csv rows {earlier} and {row} "
                    f"('{file_paths[earlier - 1]}', '{file_paths[row - 1]}') give the same image id '{image_id}'; "
                    "use image_id: path")
            first_row[image_id] = row
        return ids
