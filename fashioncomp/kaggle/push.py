"""Upload built folders with the official Kaggle CLI: kernels are pushed, weights become datasets.

An upload counts only when the CLI's reply says it succeeded (cli_reply): the CLI exits 0 after
many refusals. A dataset that Kaggle refused therefore stops the push before a kernel that would
run against the old (or no) weights goes up. Names are checked against Kaggle's limits before
anything is uploaded.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from fashioncomp.io import read_json
from fashioncomp.kaggle.build import KERNEL_METADATA
from fashioncomp.kaggle.cli_reply import KaggleReplyError, check_reply, refusal
from fashioncomp.kaggle.cli_runner import KaggleSetupError, ready_cli, run_kaggle
from fashioncomp.kaggle.names import check_competition, check_dataset_id, check_kernel_id, check_owner_slug, check_title
from fashioncomp.kaggle.weights import DATASET_METADATA

READY_TIMEOUT_S = 900  # a new dataset version is processed on Kaggle's side before kernels can attach it
READY_POLL_S = 15
DATASET_FAILED = ("failed", "deleted")  # `kaggle datasets status` words that will not turn into "ready"
PUSHED_VERSION = re.compile(r"Kernel version (\d+) successfully pushed")


@dataclass(frozen=True)
class Upload:
    """A folder to upload and its Kaggle metadata file."""

    folder: Path
    metadata_file: str
    metadata: dict[str, Any]

    @property
    def ref(self) -> str:
        return str(self.metadata.get("id") or "")

    def where(self, key: str) -> str:
        return f"{self.folder / self.metadata_file} \"{key}\""


def _check_kernel_names(upload: Upload, version_notes: str | None) -> None:
    meta = upload.metadata
    check_kernel_id(upload.ref, upload.where("id"))
    check_title(str(meta.get("title") or ""), "kernel", upload.where("title"), slug=upload.ref.partition("/")[2])
    for ref in meta.get("dataset_sources") or []:
        check_owner_slug(ref, "dataset", upload.where("dataset_sources"))
    for ref in meta.get("kernel_sources") or []:
        check_owner_slug(ref, "kernel", upload.where("kernel_sources"))
    for slug in meta.get("competition_sources") or []:
        check_competition(slug, upload.where("competition_sources"))


def _check_dataset_names(upload: Upload, version_notes: str | None) -> None:
    check_dataset_id(upload.ref, upload.where("id"))
    if not version_notes:  # a new version keeps the dataset's title
        check_title(str(upload.metadata.get("title") or ""), "dataset", upload.where("title"))


def _kernel_args(upload: Upload, version_notes: str | None) -> list[str]:
    return ["kernels", "push", "-p", str(upload.folder)]


def _dataset_args(upload: Upload, version_notes: str | None) -> list[str]:
    if version_notes:
        return ["datasets", "version", "-p", str(upload.folder), "-m", version_notes]
    return ["datasets", "create", "-p", str(upload.folder)]


def _dataset_hint(version_notes: str | None) -> str:
    if version_notes:
        return ""
    return " (an existing dataset takes a new version: push again with --version-notes 'what changed')"


@dataclass(frozen=True)
class FolderKind:
    """How one kind of built folder is checked and uploaded."""

    metadata_file: str
    check_names: Callable[[Upload, str | None], None]
    args: Callable[[Upload, str | None], list[str]]
    hint: Callable[[str | None], str]  # added to the CLI's message when it refuses
    is_dataset: bool


FOLDER_KINDS = (
    FolderKind(KERNEL_METADATA, _check_kernel_names, _kernel_args, lambda notes: "", is_dataset=False),
    FolderKind(DATASET_METADATA, _check_dataset_names, _dataset_args, _dataset_hint, is_dataset=True),
)


def folder_kind(folder: Path) -> FolderKind:
    for kind in FOLDER_KINDS:
        if (folder / kind.metadata_file).is_file():
            return kind
    raise KaggleSetupError(f"{folder}: neither {KERNEL_METADATA} nor {DATASET_METADATA} found; "
                           "build it first with `python -m fashioncomp.kaggle build` or `build-inference`")


def read_upload(folder: Path | str) -> tuple[FolderKind, Upload]:
    folder = Path(folder)
    kind = folder_kind(folder)
    metadata = read_json(folder / kind.metadata_file)
    if not isinstance(metadata, dict):
        raise KaggleSetupError(f"{folder / kind.metadata_file}: not a JSON object")
    return kind, Upload(folder, kind.metadata_file, metadata)


def wait_until_ready(cli: str, dataset_id: str, timeout_s: float | None = None, poll_s: float | None = None) -> None:
    """Poll `kaggle datasets status` until the uploaded dataset can be attached to a kernel."""
    deadline = time.monotonic() + (READY_TIMEOUT_S if timeout_s is None else timeout_s)
    poll_s = READY_POLL_S if poll_s is None else poll_s
    while True:
        reply = run_kaggle(cli, ["datasets", "status", dataset_id], echo=False)
        why = refusal(reply)  # right after the upload the dataset may not be found yet: poll on
        status = reply.lines[-1].strip().lower() if reply.lines and why is None else ""
        if status == "ready":
            print(f"dataset {dataset_id}: ready")
            return
        if status in DATASET_FAILED or time.monotonic() > deadline:
            raise KaggleReplyError(f"dataset {dataset_id} is not ready ({status or why}); push the kernel again once "
                                   f"`kaggle datasets status {dataset_id}` says ready")
        time.sleep(poll_s)


def push(folders: Sequence[Path | str], version_notes: str | None = None, poll_s: float | None = None) -> None:
    """Upload each folder in order; a kernel pushed after a dataset waits until that dataset is ready."""
    uploads = [read_upload(folder) for folder in folders]
    for kind, upload in uploads:  # local mistakes first, before the CLI and credentials are needed
        kind.check_names(upload, version_notes)
    cli = ready_cli()
    pending: list[str] = []  # datasets uploaded by this push, not yet seen ready
    for kind, upload in uploads:
        if not kind.is_dataset:
            for dataset_id in pending:
                wait_until_ready(cli, dataset_id, poll_s=poll_s)
            pending = []
        reply = check_reply(run_kaggle(cli, kind.args(upload, version_notes)), kind.hint(version_notes))
        if kind.is_dataset:
            pending.append(upload.ref)
            continue
        version = next((m.group(1) for line in reply.lines if (m := PUSHED_VERSION.search(line))), None)
        print(f"kernel {upload.ref}: version {version or '?'} pushed; follow it with "
              f"`python -m fashioncomp.kaggle status --kernel {upload.ref} --wait`")
