"""Fetch a pushed kernel's output (`kaggle kernels output`) into a local run directory.

The files land in <run>/kaggle-output/ all at once: the CLI downloads into a temporary folder
next to it, which is renamed into place only when the CLI reported success. An earlier
download is replaced only when asked (--force), never silently.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from fashioncomp.errors import UserError
from fashioncomp.io import OutputError, explain_os_error
from fashioncomp.kaggle.cli_reply import KaggleReplyError, check_reply
from fashioncomp.kaggle.cli_runner import ready_cli, run_kaggle
from fashioncomp.kaggle.names import check_kernel_id

OUTPUT_DIR = "kaggle-output"


class OutputExistsError(UserError):
    """The run already holds a downloaded kernel output."""


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` onto `target`; an existing `target` is set aside first and removed after."""
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if old.exists():  # put the earlier download back
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def fetch_output(kernel: str, run_dir: Path | str, force: bool = False) -> Path:
    """Download the latest output of `kernel` (owner/slug) into <run_dir>/kaggle-output/."""
    check_kernel_id(kernel, "--kernel")
    run_dir = Path(run_dir)
    target = run_dir / OUTPUT_DIR
    if target.exists() and not force:
        raise OutputExistsError(f"{target} already exists (an earlier download): pass --force to replace it, or "
                                "choose another --run")
    cli = ready_cli()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{OUTPUT_DIR}.", dir=run_dir))
    except OSError as exc:
        raise OutputError(explain_os_error(exc, run_dir)) from None
    try:
        check_reply(run_kaggle(cli, ["kernels", "output", kernel, "-p", str(staging), "-o"]))
        files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        if not files:
            raise KaggleReplyError(f"kernel {kernel} has no output yet; see `python -m fashioncomp.kaggle status "
                                   f"--kernel {kernel}`")
        try:
            _replace_dir(staging, target)
        except OSError as exc:
            raise OutputError(explain_os_error(exc, target)) from None
    finally:
        with contextlib.suppress(OSError):  # gone already when it became the target
            shutil.rmtree(staging)
    print(f"output of {kernel}: {len(files)} file(s) in {target}: " + ", ".join(files[:8])
          + (", ..." if len(files) > 8 else ""))
    return target
