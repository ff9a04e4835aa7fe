"""The Kaggle loop's commands after `push`: status, output, submit (their parsers and actions).

    status  --kernel OWNER/SLUG [--wait]                 the kernel's state; error/cancel -> exit 2
    output  --kernel OWNER/SLUG --run R [--force]        its output -> R/kaggle-output/
    submit  -c COMPETITION -m MESSAGE --run R [--file NAME] [--dir DIR]          file submission
    submit  -c COMPETITION -m MESSAGE --kernel OWNER/SLUG --version N [--file NAME]  code competition
"""
from __future__ import annotations

import argparse
from typing import Any, Callable


def add_loop_commands(sub: Any) -> None:
    """Add the commands to `python -m fashioncomp.kaggle`'s subparsers."""
    status = sub.add_parser("status", help="a pushed kernel's state (exit status 2 if it failed or was cancelled)")
    status.add_argument("--kernel", required=True, metavar="OWNER/SLUG", help="the kernel, as in --kernel-id")
    status.add_argument("--wait", action="store_true", help="poll until it has stopped running")
    status.add_argument("--poll-seconds", type=float, default=30.0, help=argparse.SUPPRESS)
    output = sub.add_parser("output", help="download a kernel's output into RUN/kaggle-output/")
    output.add_argument("--kernel", required=True, metavar="OWNER/SLUG", help="the kernel, as in --kernel-id")
    output.add_argument("--run", required=True, help="local run directory (created if missing)")
    output.add_argument("--force", action="store_true", help="replace an earlier download in RUN/kaggle-output/")
    submit = sub.add_parser("submit", help="submit a run's file, or a kernel version to a code competition")
    submit.add_argument("-c", "--competition", required=True, help="competition slug")
    submit.add_argument("-m", "--message", required=True, help="submission description")
    source = submit.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="run directory whose submission file to upload")
    source.add_argument("--kernel", metavar="OWNER/SLUG", help="code competition: the kernel to submit")
    submit.add_argument("--version", type=int, help="with --kernel: the kernel version (push prints it)")
    submit.add_argument("--file", help="the file to submit (required when the format writes several; with "
                                       "--kernel: the file the kernel writes, default submission.csv)")
    submit.add_argument("--dir", help="with --run: the folder holding the submission files (default: "
                                      "RUN/kaggle-output, else submissions/<run name>)")


def _status(args: argparse.Namespace) -> Any:
    from fashioncomp.kaggle.status import kernel_status

    return kernel_status(args.kernel, wait=args.wait, poll_s=args.poll_seconds)


def _output(args: argparse.Namespace) -> Any:
    from fashioncomp.kaggle.output import fetch_output

    return fetch_output(args.kernel, args.run, force=args.force)


def _submit(args: argparse.Namespace) -> Any:
    from fashioncomp.kaggle.submit import SubmitError, submit_file, submit_kernel
    from fashioncomp.submission import CODE_COMPETITION_FILE

    if args.run is not None:
        if args.version is not None:
            raise SubmitError("--version goes with --kernel (a code competition), not with --run")
        return submit_file(args.run, args.competition, args.message, args.file, args.dir)
    if args.version is None or args.dir is not None:
        raise SubmitError("a code competition submission takes --kernel OWNER/SLUG --version N (the version push "
                          "printed) and no --dir")
    return submit_kernel(args.kernel, args.version, args.competition, args.message, args.file or CODE_COMPETITION_FILE)


LOOP_ACTIONS: dict[str, Callable[[argparse.Namespace], Any]] = {"status": _status, "output": _output, "submit": _submit}
