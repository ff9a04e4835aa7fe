"""Upload built folders with the official Kaggle CLI: kernels are pushed, weights become datasets."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Mapping, Sequence

from fashioncomp.errors import UserError
from fashioncomp.kaggle.build import KERNEL_METADATA
from fashioncomp.kaggle.weights import DATASET_METADATA

CREDENTIAL_FILES = ("kaggle.json", "access_token")
READY_TIMEOUT_S = 900  # a new dataset version is processed on Kaggle's side before kernels can attach it
READY_POLL_S = 15


class KaggleSetupError(UserError):
    """The Kaggle CLI or its credentials are missing, or an upload failed."""


def kaggle_cli() -> str:
    cli = shutil.which("kaggle")
    if cli is None:
        raise KaggleSetupError("the Kaggle CLI is not installed: run `pip install kaggle` (it provides the `kaggle` "
                               "command) and retry")
    return cli


def credential_sources(env: Mapping[str, str] = os.environ, home: Path | None = None) -> list[str]:
    """Where the Kaggle CLI would find credentials: environment variables or a token file."""
    found = [name for name in ("KAGGLE_API_TOKEN",) if env.get(name)]
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        found.append("KAGGLE_USERNAME/KAGGLE_KEY")
    home = home or Path(env.get("HOME") or Path.home())
    folders = [Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else []
    folders += [home / ".kaggle", home / ".config" / "kaggle"]
    found += [str(folder / name) for folder in folders for name in CREDENTIAL_FILES if (folder / name).is_file()]
    return found


def check_credentials(env: Mapping[str, str] = os.environ) -> None:
    if not credential_sources(env):
        raise KaggleSetupError(
            "no Kaggle API credentials: create a token on https://www.kaggle.com/settings (API > Create New Token), "
            "save it as ~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY"
        )


def push_command(cli: str, folder: Path, version_notes: str | None = None) -> list[str]:
    """`kaggle kernels push` for a kernel folder, `kaggle datasets create|version` for a dataset folder."""
    if (folder / KERNEL_METADATA).is_file():
        return [cli, "kernels", "push", "-p", str(folder)]
    if (folder / DATASET_METADATA).is_file():
        if version_notes:
            return [cli, "datasets", "version", "-p", str(folder), "-m", version_notes]
        return [cli, "datasets", "create", "-p", str(folder)]
    raise KaggleSetupError(f"{folder}: neither {KERNEL_METADATA} nor {DATASET_METADATA} found; "
                           "build it first with `python -m fashioncomp.kaggle build` or `build-inference`")


def wait_until_ready(cli: str, dataset_id: str, timeout_s: float = READY_TIMEOUT_S, poll_s: float = READY_POLL_S) -> None:
    """Poll `kaggle datasets status` until the uploaded dataset can be attached to a kernel."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = subprocess.run([cli, "datasets", "status", dataset_id], capture_output=True, text=True)
        status = done.stdout.strip().lower()
        if done.returncode == 0 and status.endswith("ready"):
            print(f"dataset {dataset_id}: ready")
            return
        if "error" in status or time.monotonic() > deadline:
            raise KaggleSetupError(f"dataset {dataset_id} is not ready ({status or done.stderr.strip()}); push the kernel "
                                   "again once `kaggle datasets status " + dataset_id + "` says ready")
        time.sleep(poll_s)


def push(folders: Sequence[Path | str], version_notes: str | None = None, poll_s: float = READY_POLL_S) -> None:
    """Upload each folder in order; a kernel pushed after a dataset waits until that dataset is ready."""
    folders = [Path(f) for f in folders]
    for folder in folders:  # local mistakes first, before the CLI and credentials are needed
        push_command("kaggle", folder)
    cli = kaggle_cli()
    check_credentials()
    pending: list[str] = []  # datasets uploaded by this push, not yet seen ready
    for folder in folders:
        command = push_command(cli, folder, version_notes)
        if command[1] == "kernels":
            for dataset_id in pending:
                wait_until_ready(cli, dataset_id, poll_s=poll_s)
            pending = []
        print("$ " + " ".join(command), flush=True)
        done = subprocess.run(command)
        if done.returncode != 0:
            hint = " (an existing dataset takes a new version: add --version-notes 'what changed')" \
                if command[1:3] == ["datasets", "create"] else ""
            raise KaggleSetupError(f"`kaggle {' '.join(command[1:3])}` failed with exit status {done.returncode}; "
                                   f"the Kaggle CLI's message is above{hint}")
        dataset_id = json.loads((folder / DATASET_METADATA).read_text()).get("id") if command[1] == "datasets" else None
        if dataset_id:
            pending.append(dataset_id)
