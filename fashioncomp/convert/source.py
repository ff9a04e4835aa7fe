"""SRC and the folders options name inside it (only ever read)."""
from __future__ import annotations

from pathlib import Path

from fashioncomp.convert.converted import ConvertError


def source_dir(src: Path | str) -> Path:
    """SRC as an absolute directory (symlinks kept: a Kaggle mount stays as mounted)."""
    path = Path(src).absolute()
    if not path.is_dir():
        raise ConvertError(f"{src}: source folder not found")
    return path


def folder_in_source(src: Path, folder: str, option: str) -> Path:
    """An option's folder under SRC; one outside SRC (or missing) is a ConvertError."""
    flag = "--" + option.replace("_", "-")
    path = src / folder
    if not path.is_dir():
        raise ConvertError(f"{path}: folder not found ({flag} {folder})")
    if not path.resolve().is_relative_to(src.resolve()):
        raise ConvertError(f"{flag} {folder}: must be a folder inside SRC ({src})")
    return path
