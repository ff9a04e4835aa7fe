"""What the Kaggle CLI's reply means: it exits 0 after many refusals, so its output is read too.

kaggle 2.x prints a server's refusal and exits 0 ("Dataset creation error: ...", "Kernel push
error: ...", a file that failed to upload), and exits 1 with the message on stderr when the API
answers with an HTTP error. A reply counts as success only when neither happened and, for the
commands that print one, the CLI's own confirmation is there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from fashioncomp.errors import UserError


class KaggleReplyError(UserError):
    """The Kaggle CLI or the Kaggle server refused a command."""


@dataclass(frozen=True)
class CliReply:
    """One finished `kaggle ...` call: its arguments (without the executable), exit status and output lines."""

    args: tuple[str, ...]
    returncode: int
    lines: tuple[str, ...]

    @property
    def verb(self) -> str:
        """e.g. 'kaggle datasets create'."""
        return "kaggle " + " ".join(self.args[:2])


AUTH_HINT = (" (check KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json: a token from "
             "https://www.kaggle.com/settings, API > Create New Token)")

# lines that report a refusal although the CLI may exit 0 -> what to add to the CLI's own words
ERROR_LINES: dict[re.Pattern[str], str] = {
    # "Dataset creation error: ...", "Dataset version creation error: ...", "Kernel push error: ..."
    re.compile(r"^[A-Za-z ]*\berror\b\s*:", re.IGNORECASE): "",
    # datasets create / version carry on without a file that failed to upload
    re.compile(r"^Upload unsuccessful: "): " (the rest went up without it)",
    # kernels push: the version is saved, but these inputs are not attached
    re.compile(r"^The following are not valid .* sources"): " (the kernel would run without them)",
    # competitions submit: unknown competition, failed upload
    re.compile(r"^Could not (find|submit)"): "",
    # an upload the server gave up on ("Server returned 503. Please try again.", an expired upload)
    re.compile(r"Please try again\.$"): "",
    # HTTP 401: the CLI prints its sign-in help instead of the server's message
    re.compile(r"^Authentication required"): AUTH_HINT,
}

# commands whose success the CLI always confirms in words; without them the outcome is unknown
CONFIRMATIONS: dict[tuple[str, str], re.Pattern[str]] = {
    ("kernels", "push"): re.compile(r"successfully pushed"),
    ("datasets", "create"): re.compile(r"Dataset is being created"),
    ("datasets", "version"): re.compile(r"Dataset version is being created"),
}


def _meaningful(lines: tuple[str, ...]) -> list[str]:
    """Output lines without tqdm's progress bars."""
    return [line.strip() for line in lines if line.strip() and not re.search(r"\d%\|", line)]


def refusal(reply: CliReply) -> str | None:
    """The CLI's own words for why the command failed, or None if it did not."""
    lines = _meaningful(reply.lines)
    for line in lines:
        for pattern, note in ERROR_LINES.items():
            if pattern.search(line):
                return line + note
    if reply.returncode != 0:
        return (lines[-1] if lines else "no output") + f" (exit status {reply.returncode})"
    confirmation = CONFIRMATIONS.get(tuple(reply.args[:2]))
    if confirmation is not None and not any(confirmation.search(line) for line in lines):
        return "it did not confirm success: " + (lines[-1] if lines else "no output")
    return None


def check_reply(reply: CliReply, hint: str = "") -> CliReply:
    """Raise KaggleReplyError with the CLI's message (one line) if the reply reports a failure."""
    why = refusal(reply)
    if why is not None:
        raise KaggleReplyError(f"`{reply.verb}` failed: {why}{hint}")
    return reply
