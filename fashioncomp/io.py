"""Atomic file output: every artefact is written to a temporary file and renamed into place.

A crash, a kill or a full disk therefore never leaves a half-written file where a finished one
is expected; stages decide "done" by the presence of their final files. Writing goes through
Python file objects (never a library's own path handling), so a full disk or a permission
problem surfaces as an OSError that is turned into one clear OutputError.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
from fashioncomp.errors import UserError
from fashioncomp.textfile import decode_text


class OutputError(UserError, RuntimeError):
    """An output could not be written (disk full, permissions, ...)."""


class InputFileError(UserError, ValueError):
    """A file a stage needs is missing or unreadable (usually: an earlier stage has not run)."""


# errno -> why, for the OSErrors that are the user's environment rather than a bug
_ENVIRONMENT_ERRORS = {
    errno.ENOSPC: "the disk is full. Free some space and rerun; finished stages are kept",
    errno.EDQUOT: "the disk quota is exhausted. Free some space and rerun; finished stages are kept",
    errno.EACCES: "permission denied (check the directory's owner and mode)",
    errno.EPERM: "operation not permitted (check the directory's owner and mode)",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a component of the path is a file, not a directory",
    errno.EEXIST: "a file is in the way where a directory is needed",
    errno.EISDIR: "it is a directory",
    errno.ENAMETOOLONG: "the path is too long",
}


def is_environment_error(exc: BaseException) -> bool:
    """True for OSErrors a user fixes in their environment (disk full, permissions, ...)."""
    return isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRORS


def explain_os_error(exc: OSError, path: Path | str | None = None, action: str | None = "write") -> str:
    """One line saying what could not be done (`action`, if known) to which file, and why."""
    target = path if path is not None else (exc.filename or "a file")
    why = _ENVIRONMENT_ERRORS.get(exc.errno) or exc.strerror or str(exc)
    return f"cannot {action} {target}: {why}" if action else f"{target}: {why}"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`.

    On any failure the temporary file is removed and `path` is left as it was. OSErrors become
    an OutputError naming `path`; a UserError raised by the caller's body passes through as is.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(explain_os_error(exc, path)) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the mode a plain open() would (umask)
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except UserError:
        raise
    except OSError as exc:
        raise OutputError(explain_os_error(exc, path)) from None
    finally:
        with contextlib.suppress(OSError):  # cleanup must not hide the real error
            tmp_path.unlink(missing_ok=True)


def write_atomic(path: Path | str, writer: Callable[[Path], Any]) -> Path:
    """Call `writer(tmp_path)` and move the result onto `path`."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_stream(path: Path | str, writer: Callable[[Any], Any]) -> Path:
    """Call `writer(binary_file_object)` on a temporary file and move it onto `path`."""
    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            writer(fh)

    return write_atomic(path, _write)


def write_bytes(path: Path | str, data: bytes) -> Path:
    return write_stream(path, lambda fh: fh.write(data))


def write_text(path: Path | str, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path | str, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv(path: Path | str, frame: pd.DataFrame) -> Path:
    return write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def write_npz(path: Path | str, **arrays: np.ndarray) -> Path:
    return write_stream(path, lambda fh: np.savez(fh, **arrays))  # a file object: no .npz appended


def write_npy(path: Path | str, array: np.ndarray) -> Path:
    return write_stream(path, lambda fh: np.save(fh, array))


def copy_file(source: Path | str, target: Path | str) -> Path:
    """Copy a file's bytes onto `target` atomically (a half-copied checkpoint is never left)."""
    def _copy(fh: Any) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, fh, length=1 << 20)

    return write_stream(target, _copy)


def _read(path: Path, what: str, hint: str, reader: Callable[[Path], Any]) -> Any:
    if not path.is_file():
        raise InputFileError(f"{path}: file not found{hint}")
    try:
        return reader(path)
    except OSError as exc:
        raise InputFileError(explain_os_error(exc, path, action="read")) from None
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:  # what numpy/json raise on damaged files
        raise InputFileError(f"{path}: not a valid {what} file ({exc}); rerun the stage that writes it with --force") from None


def read_json(path: Path | str, hint: str = "") -> Any:
    """Parse a JSON file; a missing or damaged file is an InputFileError (`hint` says what to run)."""
    return _read(Path(path), "JSON", hint, lambda p: json.loads(decode_text(p.read_bytes(), p)))


def read_npz(path: Path | str, hint: str = "") -> dict[str, np.ndarray]:
    """Load every array of an .npz file (no pickles); missing or damaged -> InputFileError."""
    def _load(p: Path) -> dict[str, np.ndarray]:
        with np.load(p, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}

    return _read(Path(path), "NumPy .npz", hint, _load)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
