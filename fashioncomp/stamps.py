"""What each stage consumed, so a rerun redoes exactly the stages whose inputs changed.

A stage describes its inputs as named digests (content hashes of the rows it read, the config
keys it depends on, the upstream artefacts it used) and keeps them in `runs/<name>/stamps/<stage>.json`,
as DVC's lock file or Snakemake's rerun triggers do. On a rerun the stage compares: equal digests and
its outputs present -> skipped; anything different -> redone, with a line saying what changed.
Downstream stages follow by themselves, because an upstream artefact's digest is one of their
inputs. Modification times play no part: touching a file changes nothing, editing one row does.

Stages that run in one go record their stamp after their outputs are written (a kill in between
only costs a redo). A training stage records it before its first epoch, so that a run killed
mid-fold resumes only if it resumes the same training.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from fashioncomp.io import read_json, write_json

NO_RECORD = "no record of its inputs"


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def digest_file(path: Path | str) -> str:
    """The content hash of a file ("missing" when there is none)."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def digest_value(value: Any) -> str:
    """The hash of plain data (config sections, lists, dicts), independent of key order."""
    return digest_bytes(json.dumps(value, sort_keys=True, default=str).encode())


def digest_arrays(*arrays: np.ndarray | Sequence[Any]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(np.asarray(array))
        if array.dtype.kind in "OU":  # strings: hash their text, not object pointers
            digest.update("\n".join(map(str, array.ravel())).encode())
        else:
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def stamp_path(run_dir: Path, stage: str) -> Path:
    return Path(run_dir) / "stamps" / f"{stage}.json"


def recorded_inputs(path: Path) -> dict[str, str]:
    """The digests a stage recorded in `path`; {} without a record."""
    return read_json(path).get("inputs", {}) if path.is_file() else {}


def changed_inputs(path: Path, inputs: Mapping[str, str]) -> list[str]:
    """Names of the inputs whose digest differs from the recorded one; [NO_RECORD] without a record."""
    if not path.is_file():
        return [NO_RECORD]
    recorded = recorded_inputs(path)
    return sorted(k for k in set(recorded) | set(inputs) if recorded.get(k) != inputs.get(k))


def record(path: Path, inputs: Mapping[str, str]) -> None:
    write_json(path, {"inputs": dict(inputs)})


def up_to_date(label: str, path: Path, inputs: Mapping[str, str], outputs: Sequence[Path], force: bool) -> bool:
    """True when the stage can be skipped: not forced, every output present, inputs as recorded.
    Otherwise it prints why the stage is (re)done when it had been done before."""
    if force:
        return False
    have_outputs = all(Path(p).is_file() for p in outputs)
    changes = changed_inputs(path, inputs)
    if have_outputs and not changes:
        return True
    if have_outputs:
        _say_redone(label, changes)
    return False


def _say_redone(label: str, changes: list[str]) -> None:
    print(f"{label}: redone: {', '.join(changes)} changed" if changes != [NO_RECORD]
          else f"{label}: redone: {NO_RECORD} (made by an older fashioncomp or interrupted)")


def training_up_to_date(label: str, path: Path, inputs: Mapping[str, str], out_dir: Path, outputs: Sequence[str],
                        force: bool, is_main: bool = True) -> bool:
    """For a training stage (many epochs, resumable): True when it finished with these inputs.

    Otherwise what it left from other inputs (or everything, when forced) is removed, so a partial
    training resumes only if it was started from the same inputs, and the inputs are recorded
    before the first epoch. Only the main process (`is_main`) touches files."""
    changes = changed_inputs(path, inputs)
    finished = (out_dir / "done.json").is_file() and (out_dir / "best.pt").is_file()
    if finished and not changes and not force:
        return True
    started = any((out_dir / name).is_file() for name in outputs)
    if is_main:
        if started and (changes or force):
            if changes and not force:
                _say_redone(label, changes)
            for name in outputs:
                (out_dir / name).unlink(missing_ok=True)
        record(path, inputs)
    return False
