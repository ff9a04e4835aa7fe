"""Run the official Kaggle CLI (`kaggle ...`) as a subprocess and collect its reply.

The user sees what the CLI prints (upload progress, its messages) while it runs; the reply is
then judged by fashioncomp.kaggle.cli_reply, because the CLI's exit status alone is not the truth.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Sequence

from fashioncomp.errors import UserError
from fashioncomp.kaggle.cli_reply import CliReply

CREDENTIAL_FILES = ("kaggle.json", "access_token")


class KaggleSetupError(UserError):
    """Something the upload needs is missing: the Kaggle CLI, its credentials, a built folder."""


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


def ready_cli() -> str:
    """The CLI's path, once it and credentials are known to be there (checked before any upload)."""
    cli = kaggle_cli()
    check_credentials()
    return cli


def run_kaggle(cli: str, args: Sequence[str], echo: bool = True) -> CliReply:
    """Run `kaggle <args>`; with `echo`, pass its output through as it comes (stdout and stderr merged)."""
    if echo:
        print("$ kaggle " + shlex.join(args), flush=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # its lines arrive in the order it prints them
    lines: list[str] = []
    ends_line = True
    with subprocess.Popen([cli, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          errors="replace") as process:
        for line in process.stdout or ():
            lines.append(line.rstrip("\n"))
            ends_line = line.endswith("\n")
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
    if echo and not ends_line:
        print(flush=True)  # the CLI's last message often has no newline
    return CliReply(tuple(args), process.returncode, tuple(lines))
