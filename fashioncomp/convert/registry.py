"""The converters by name, and the options each one takes (declared as data, so the command line
and `fashioncomp.convert.convert(**options)` accept exactly the same names and defaults)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from fashioncomp.convert.converted import ConvertedDataset, ConvertError


@dataclass(frozen=True)
class Option:
    """One option of a converter: keyword `name` in Python, `--name-with-dashes` on the command line."""

    name: str
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    is_list: bool = False   # comma-separated on the command line; a list or a comma-separated str in Python
    required: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def normalise(self, value: Any, converter: str) -> Any:
        """The value as the converter reads it; a wrong type or choice is a ConvertError."""
        if value is None:
            return [] if self.is_list else None
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if self.is_list:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
                raise ConvertError(f"{converter}: option {self.name} expects comma-separated text or a list of "
                                   f"strings, got {value!r}")
            return [v.strip() for v in items if v.strip()]
        if not isinstance(value, str):
            raise ConvertError(f"{converter}: option {self.name} expects text, got {value!r}")
        if self.choices and value not in self.choices:
            raise ConvertError(f"{converter}: option {self.name} is '{value}'; choose one of {', '.join(self.choices)}")
        return value


# reads SRC with the options and returns the converted rows (it writes nothing)
ReadSource = Callable[..., ConvertedDataset]


@dataclass(frozen=True)
class Converter:
    name: str
    summary: str
    read: ReadSource
    options: tuple[Option, ...] = field(default_factory=tuple)

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in, every value checked; an unknown or missing option is a ConvertError."""
        known = {o.name: o for o in self.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ConvertError(f"{self.name}: unknown option(s) {', '.join(unknown)}; "
                               f"options: {', '.join(known) or 'none'}")
        resolved = {}
        for option in self.options:
            value = given.get(option.name, option.default)
            if option.required and value in (None, "", [], ()):
                raise ConvertError(f"{self.name}: option {option.name} ({option.flag}) is required")
            resolved[option.name] = option.normalise(value, self.name)
        return resolved


CONVERTERS: dict[str, Converter] = {}


def register_converter(name: str, summary: str, options: Sequence[Option] = ()) -> Callable[[ReadSource], ReadSource]:
    def wrap(read: ReadSource) -> ReadSource:
        CONVERTERS[name] = Converter(name, summary, read, tuple(options))
        return read

    return wrap


def get_converter(name: str) -> Converter:
    if name not in CONVERTERS:
        raise ConvertError(f"unknown converter '{name}'; choose one of {', '.join(sorted(CONVERTERS))}")
    return CONVERTERS[name]
