"""What a converter produces from its source, before anything is written: rows in this project's
label encoding (see fashioncomp.data.dataset_reader) and the schema that names the labels."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fashioncomp.data.schema import Schema
from fashioncomp.errors import UserError

UNKNOWN_CATEGORY = -1
UNKNOWN_ATTRIBUTES = "?"  # the whole row's attributes are unlabelled; "?<group>" for one group


class ConvertError(UserError, ValueError):
    """The source cannot be converted; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class ImageRow:
    """One image: `path` (posix) relative to the dataset's image base, `origin` where it was
    listed ("file line N")."""

    path: str
    origin: str
    category: int = UNKNOWN_CATEGORY
    attributes: str = ""   # train.csv's attribute_label: indices and unknown markers, space-separated


@dataclass
class ConvertedDataset:
    train: list[ImageRow]
    test: list[ImageRow]
    schema: Schema
    image_base: Path   # the rows' paths are relative to it; it lies inside SRC
    schema_extras: dict[str, Any] = field(default_factory=dict)  # more keys for schema.json (ignored by Schema)
    notes: list[str] = field(default_factory=list)                # what the conversion decided, printed
