"""Submit to a Kaggle competition with the official CLI (`kaggle competitions submit`).

    file submission   one file of the run's submission format: -c COMPETITION -f FILE -m MESSAGE
    code competition  a pushed kernel's version, scored on the file it writes:
                      -c COMPETITION -k OWNER/SLUG -v VERSION -f FILE -m MESSAGE

A run's submission is the kernel output fetched into <run>/kaggle-output/ (`output`) or what
make_submission wrote to submissions/<run name>/; the run's config names the format, hence the
files. A competition takes one file: a format that writes several needs --file to pick one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from fashioncomp.config import load_config
from fashioncomp.errors import UserError
from fashioncomp.kaggle.cli_reply import check_reply
from fashioncomp.kaggle.cli_runner import ready_cli, run_kaggle
from fashioncomp.kaggle.names import check_competition, check_kernel_id
from fashioncomp.kaggle.output import OUTPUT_DIR
from fashioncomp.submission import CODE_COMPETITION_FILE, submission_files


class SubmitError(UserError):
    """Nothing (or no single file) to submit."""


def run_config_file(run_dir: Path) -> Path | None:
    """The run's resolved config: the local run's, else the one inside the fetched kernel output."""
    if (run_dir / "config.yaml").is_file():
        return run_dir / "config.yaml"
    found = sorted((run_dir / OUTPUT_DIR / "runs").glob("*/config.yaml"))
    if len(found) > 1:
        raise SubmitError(f"{run_dir / OUTPUT_DIR}: several runs ({', '.join(p.parent.name for p in found)}); "
                          "their submission format is ambiguous")
    return found[0] if found else None  # None: the defaults' format


def submission_folder(run_dir: Path, files: Sequence[str], submissions_root: Path | str = "submissions") -> Path:
    """The one folder holding the run's submission files."""
    candidates = [run_dir / OUTPUT_DIR, Path(submissions_root) / run_dir.name]
    found = [folder for folder in candidates if any((folder / name).is_file() for name in files)]
    if not found:
        raise SubmitError(f"no submission of run {run_dir} ({', '.join(files)}) in {candidates[0]} (fetch a kernel's "
                          f"with `output`) or {candidates[1]} (write it with make_submission); or name it with --dir")
    if len(found) > 1:
        raise SubmitError(f"run {run_dir} has submissions in both {found[0]} and {found[1]}: choose one with --dir")
    return found[0]


def choose_file(files: Sequence[str], chosen: str | None) -> str:
    """The one file to submit: the format's only file, or the one named by --file."""
    if chosen is not None:
        if chosen not in files:
            raise SubmitError(f"--file {chosen}: the run's submission format writes {', '.join(files)}")
        return chosen
    if len(files) > 1:
        raise SubmitError(f"the run's submission format writes {len(files)} files ({', '.join(files)}) and a "
                          "competition takes one: choose it with --file")
    return files[0]


def check_submission_file(path: Path) -> Path:
    """Present, with a header and at least one row (a partial download or an empty file is refused)."""
    if not path.is_file():
        raise SubmitError(f"{path}: file not found")
    with open(path, "rb") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    if len(lines) < 2:
        raise SubmitError(f"{path}: {'empty' if not lines else 'only a header'}, nothing to submit")
    return path


def _submit(args: list[str]) -> None:
    check_reply(run_kaggle(ready_cli(), ["competitions", "submit", *args]))


def submit_file(run_dir: Path | str, competition: str, message: str, file: str | None = None,
                folder: Path | str | None = None, submissions_root: Path | str = "submissions") -> Path:
    """Submit one file of the run's submission (from `folder` if given) to `competition`."""
    check_competition(competition, "--competition")
    run_dir = Path(run_dir)
    files = tuple(submission_files(load_config(run_config_file(run_dir))))
    name = choose_file(files, file)
    source = Path(folder) if folder is not None else submission_folder(run_dir, files, submissions_root)
    path = check_submission_file(source / name)
    _submit(["-c", competition, "-f", str(path), "-m", message])
    print(f"submitted {path} to {competition}")
    return path


def submit_kernel(kernel: str, version: int, competition: str, message: str,
                  file: str = CODE_COMPETITION_FILE) -> None:
    """Submit version `version` of a pushed kernel to a code competition; Kaggle scores its `file`."""
    check_competition(competition, "--competition")
    check_kernel_id(kernel, "--kernel")
    if version < 1:
        raise SubmitError(f"--version {version}: kernel versions start at 1 (push prints the version it made)")
    _submit(["-c", competition, "-k", kernel, "-v", str(version), "-f", file, "-m", message])
    print(f"submitted {kernel} version {version} ({file}) to {competition}")
