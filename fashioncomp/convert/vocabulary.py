"""Label names -> dense integer ids 0..K-1 (train.csv's encoding), in a stable order."""
from __future__ import annotations

import re
from typing import Iterable

INTEGER = re.compile(r"-?[0-9]+")


def _sort_key(name: str) -> tuple[int, int, str]:
    # ids stay in numeric order ("2" before "10"); other names alphabetical, after the ids
    return (0, int(name), "") if INTEGER.fullmatch(name) else (1, 0, name)


class Vocabulary:
    """The distinct names of some labels; `index[name]` is the name's dense id."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: tuple[str, ...] = tuple(sorted(set(names), key=_sort_key))
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)


def unique_names(names: Iterable[str]) -> list[str]:
    """Names made unique for schema.json: a repeated name gets " (2)", " (3)", ... (ids keep their place)."""
    used: set[str] = set()
    out: list[str] = []
    for name in names:
        unique, k = name, 1
        while unique in used:
            k += 1
            unique = f"{name} ({k})"
        used.add(unique)
        out.append(unique)
    return out
