"""A pushed kernel's state (`kaggle kernels status`): printed, and a failed or cancelled run is an error."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from fashioncomp.kaggle.cli_reply import CliReply, KaggleReplyError, check_reply
from fashioncomp.kaggle.cli_runner import ready_cli, run_kaggle
from fashioncomp.kaggle.names import check_kernel_id

STATE_LINE = re.compile(r'has status "(?:\w+\.)?(\w+)"')  # 'o/k has status "KernelWorkerStatus.COMPLETE"'
FAILURE_LINE = re.compile(r'^Failure message: "(.*)"$')
# Kaggle's kernel run states (kagglesdk KernelWorkerStatus), lowercased
RUNNING_STATES = frozenset({"queued", "running", "new_script"})
FAILED_STATES = frozenset({"error", "cancel_requested", "cancel_acknowledged"})
WAIT_POLL_S = 30.0


class KernelFailedError(KaggleReplyError):
    """The kernel's run ended in an error or was cancelled."""


@dataclass(frozen=True)
class KernelState:
    kernel: str
    state: str            # e.g. "running", "complete", "error"
    failure: str | None   # Kaggle's failure message, if any

    def describe(self) -> str:
        return f"kernel {self.kernel}: {self.state}" + (f" ({self.failure})" if self.failure else "")


def parse_state(kernel: str, reply: CliReply) -> KernelState:
    state = next((m.group(1).lower() for line in reply.lines if (m := STATE_LINE.search(line))), None)
    if state is None:
        raise KaggleReplyError(f"`{reply.verb}` gave no state for {kernel}: " + " | ".join(reply.lines[-3:]))
    failure = next((m.group(1) for line in reply.lines if (m := FAILURE_LINE.search(line.strip()))), None)
    return KernelState(kernel, state, failure)


def kernel_state(cli: str, kernel: str) -> KernelState:
    return parse_state(kernel, check_reply(run_kaggle(cli, ["kernels", "status", kernel], echo=False)))


def kernel_status(kernel: str, wait: bool = False, poll_s: float = WAIT_POLL_S) -> KernelState:
    """Print the kernel's state (with `wait`: poll until it stops running); error or cancel -> KernelFailedError."""
    check_kernel_id(kernel, "--kernel")
    cli = ready_cli()
    state = kernel_state(cli, kernel)
    print(state.describe(), flush=True)
    while wait and state.state in RUNNING_STATES:
        time.sleep(poll_s)
        previous, state = state, kernel_state(cli, kernel)
        if state != previous:
            print(state.describe(), flush=True)
    if state.state in FAILED_STATES:
        raise KernelFailedError(f"{state.describe()}; its log: python -m fashioncomp.kaggle output --kernel {kernel} "
                                "--run <run directory>")
    return state
