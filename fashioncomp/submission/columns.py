"""The label columns of one-row-per-image formats: how an image's labels are written into a cell,
and why a written cell is wrong (None if it is right)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from fashioncomp.submission.checks import index_problem
from fashioncomp.submission.labels import ATTRIBUTE, CATEGORY, WITH_ARTICLE, Labels


@dataclass(frozen=True)
class ImageLabels:
    """One test image's predicted labels."""

    image_id: str
    category: int
    attributes: tuple[int, ...]  # ascending


def _category_problem(text: str, labels: Labels) -> str | None:
    return index_problem(text, labels.space.num_categories, WITH_ARTICLE[CATEGORY])


def _attribute_list_problem(text: str, labels: Labels) -> str | None:
    tokens = text.split()
    for token in tokens:
        problem = index_problem(token, labels.space.num_attributes, WITH_ARTICLE[ATTRIBUTE])
        if problem:
            return problem
    repeated = [t for t, n in Counter(tokens).items() if n > 1]
    return f"attribute '{repeated[0]}' is listed twice" if repeated else None


def _label_ids_text(image: ImageLabels, labels: Labels) -> str:
    tokens = [labels.ids.write(CATEGORY, image.category)]
    tokens += [labels.ids.write(ATTRIBUTE, j) for j in image.attributes]
    return " ".join(tokens)


def _label_ids_problem(text: str, labels: Labels) -> str | None:
    kinds: Counter[str] = Counter()
    for token in text.split():
        parsed = labels.ids.read(token)
        if parsed is None:
            return f"'{token}' is not a label id ({labels.ids.description})"
        kind, index = parsed
        problem = index_problem(str(index), labels.space.limit(kind), WITH_ARTICLE[kind])
        if problem:
            return f"'{token}': {problem}"
        kinds[kind] += 1
    repeated = [t for t, n in Counter(text.split()).items() if n > 1]
    if repeated:
        return f"label id '{repeated[0]}' is listed twice"
    if kinds[CATEGORY] != 1:
        return f"has {kinds[CATEGORY]} category ids, expected exactly 1"
    return None


@dataclass(frozen=True)
class LabelColumn:
    write: Callable[[ImageLabels, Labels], str]
    problem: Callable[[str, Labels], str | None]


LABEL_COLUMNS: dict[str, LabelColumn] = {
    # one category index
    "category": LabelColumn(lambda image, labels: str(image.category), _category_problem),
    # space-separated attribute indices, ascending; empty when none is predicted
    "attributes": LabelColumn(lambda image, labels: " ".join(map(str, image.attributes)), _attribute_list_problem),
    # the category's id, then the attributes' ids, in one id space (submission.label_ids)
    "label_ids": LabelColumn(_label_ids_text, _label_ids_problem),
}
