"""The labels a submission may name, and how one id space holds categories and attributes.

A format with one label column (`image_label_ids`) writes a category and attributes side by side,
so their ids must not collide. `submission.label_ids` picks the style:

    prefixed   category 3 -> c3, attribute 7 -> a7                 e.g. "c3 a0 a7"
    offset     one integer space: categories 0..C-1, then attributes from C (attribute 7 -> C+7),
               as competitions with a single label list number them      e.g. "3 9 16" (C = 9)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from fashioncomp.data.schema import Schema

CATEGORY = "category"
ATTRIBUTE = "attribute"
LABEL_KINDS = (CATEGORY, ATTRIBUTE)
WITH_ARTICLE = {CATEGORY: "a category", ATTRIBUTE: "an attribute"}  # for messages


@dataclass(frozen=True)
class LabelSpace:
    num_categories: int
    num_attributes: int

    @classmethod
    def of_schema(cls, schema: "Schema") -> "LabelSpace":
        return cls(schema.num_categories, schema.num_attributes)

    @classmethod
    def of_arrays(cls, categories: np.ndarray, attributes: np.ndarray) -> "LabelSpace":
        """Without a schema (held-out scoring): the counts the predictions themselves show."""
        return cls(int(categories.max()) + 1 if len(categories) else 0, int(attributes.shape[1]))

    def limit(self, kind: str) -> int:
        return {CATEGORY: self.num_categories, ATTRIBUTE: self.num_attributes}[kind]


class LabelIdStyle(Protocol):
    def write(self, kind: str, index: int) -> str: ...

    def read(self, token: str) -> tuple[str, int] | None:
        """(kind, index) a written token stands for (index not yet range-checked); None if no label id."""

    description: str


@dataclass(frozen=True)
class PrefixedIds:
    space: LabelSpace
    description: str = "c<category> or a<attribute>"

    PREFIXES = {CATEGORY: "c", ATTRIBUTE: "a"}

    def write(self, kind: str, index: int) -> str:
        return f"{self.PREFIXES[kind]}{index}"

    def read(self, token: str) -> tuple[str, int] | None:
        for kind, prefix in self.PREFIXES.items():
            number = token[len(prefix):]
            if token.startswith(prefix) and number.isascii() and number.isdigit():
                return kind, int(number)
        return None


@dataclass(frozen=True)
class OffsetIds:
    space: LabelSpace
    description: str = "an integer: category, or number of categories + attribute"

    def write(self, kind: str, index: int) -> str:
        return str(index if kind == CATEGORY else self.space.num_categories + index)

    def read(self, token: str) -> tuple[str, int] | None:
        if not (token.isascii() and token.isdigit()):
            return None
        number = int(token)
        if number < self.space.num_categories:
            return CATEGORY, number
        return ATTRIBUTE, number - self.space.num_categories


LABEL_ID_STYLES = {"prefixed": PrefixedIds, "offset": OffsetIds}


@dataclass(frozen=True)
class Labels:
    """The label space of a submission and the id style its label column uses."""

    space: LabelSpace
    ids: LabelIdStyle

    @classmethod
    def make(cls, space: LabelSpace, style: str) -> "Labels":
        return cls(space, LABEL_ID_STYLES[style](space))
