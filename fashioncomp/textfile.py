"""Text files (CSVs, schema.json, YAML recipes) in whatever common encoding an editor saved them.

No heavy imports: the config is read with it before torch or pandas are loaded.
"""
from __future__ import annotations

from pathlib import Path

from fashioncomp.errors import UserError


class TextFileError(UserError, ValueError):
    """A text file is missing, unreadable or in an encoding that is not supported."""


# byte-order marks, longest first (a UTF-32 LE mark starts like the UTF-16 LE one)
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode_text(data: bytes, path: Path | str) -> str:
    """The text of a file saved by any common editor: UTF-8 with or without a byte-order mark, or
    UTF-16 / UTF-32 with one (Windows editors save "Unicode" as UTF-16). Anything else is a
    TextFileError naming the file and the problem."""
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    problem = None
    head = data[:200]
    if encoding == "utf-8" and head.count(b"\x00") > len(head) // 4:  # valid UTF-8, but text is not half NULs
        problem = "it is full of NUL bytes, as UTF-16 without a byte-order mark is"
    else:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            problem = f"not valid {encoding.replace('-sig', '').upper()} (byte 0x{data[exc.start]:02x} at offset {exc.start})"
    raise TextFileError(f"{path}: cannot be read as text: {problem}; save it as UTF-8 "
                        "(or UTF-16 with a byte-order mark)")


def read_text_file(path: Path | str) -> str:
    """`decode_text` of a file; missing or unreadable -> TextFileError."""
    path = Path(path)
    if not path.is_file():
        raise TextFileError(f"{path}: file not found")
    try:
        return decode_text(path.read_bytes(), path)
    except OSError as exc:
        raise TextFileError(f"cannot read {path}: {exc.strerror or exc}") from None
