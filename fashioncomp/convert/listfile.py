"""DeepFashion's annotation lists: line 1 the number of rows, line 2 the column names, then one
whitespace-separated row per line. Read as a stream (list_attr_img.txt is ~1 GB), the count line
checked against the rows actually read."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from fashioncomp.convert.converted import ConvertError


class ListFile:
    """`rows()` yields (line number, line text without the newline) for every data row."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = path
        self.header = tuple(header)

    def where(self, line: int) -> str:
        return f"{self.path} line {line}"

    def rows(self) -> Iterator[tuple[int, str]]:
        try:
            with open(self.path, encoding="utf-8-sig", newline=None) as fh:
                yield from self._rows(fh)
        except UnicodeDecodeError as exc:
            raise ConvertError(f"{self.path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                               "is it the right file?") from None
        except OSError as exc:
            raise ConvertError(f"{self.path}: cannot be read: {exc.strerror or exc}") from None

    def _rows(self, lines: Iterator[str]) -> Iterator[tuple[int, str]]:
        count_text = next(lines, "").strip()
        if not count_text.isdigit():
            raise ConvertError(f"{self.where(1)}: expected the number of rows, got '{count_text[:60]}'")
        header = next(lines, "").split()
        # the expected names first; anything after them is a note (some copies add "1000 entries")
        if [h.lower() for h in header[:len(self.header)]] != [h.lower() for h in self.header]:
            raise ConvertError(f"{self.where(2)}: expected the column names '{' '.join(self.header)}', "
                               f"got '{' '.join(header)[:80]}'")
        expected, found = int(count_text), 0
        for number, text in enumerate(lines, start=3):
            text = text.rstrip("\r\n")
            if not text.strip():
                continue  # a blank line (e.g. at the end) is no row
            found += 1
            yield number, text
        if found != expected:
            raise ConvertError(f"{self.where(1)}: says {expected} rows, but the file has {found}")
