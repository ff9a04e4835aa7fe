"""push / status / output / submit drive the real `kaggle` CLI; only Kaggle's server is faked.

The CLI runs as a subprocess, parses its arguments and talks HTTP as it would to kaggle.com:
KAGGLE_API_ENVIRONMENT and http_proxy send its requests to tests/fake_kaggle_server.py, which
answers like the API (successes, refusals in a 200 reply, HTTP errors) and records what it got.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

from fake_kaggle_server import FakeKaggle, FakeKaggleServer, Reply, error_reply
from fashioncomp.config import dump_config, load_config
from fashioncomp.kaggle import names, submit
from fashioncomp.kaggle import push as push_module
from fashioncomp.kaggle.__main__ import main as kaggle_main
from fashioncomp.kaggle.build import KernelSpec, title_for
from fashioncomp.kaggle.cli_reply import CliReply, refusal
from fashioncomp.kaggle.push import push

if importlib.util.find_spec("kaggle") is None:  # (not imported here: importing it reads credentials)
    pytest.skip("the kaggle CLI is not installed (pip install -e '.[dev]')", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
COMPETITION = "fashion-tiny"
KERNEL_ID = "tester/fashioncomp-tiny"
WEIGHTS_ID = "tester/fashioncomp-tiny-weights"


def cli(*args: object) -> int:
    return kaggle_main([str(a) for a in args])


def kaggle_bin_dir() -> Path:
    beside_python = Path(sys.executable).parent
    found = shutil.which("kaggle")
    return beside_python if (beside_python / "kaggle").exists() or found is None else Path(found).parent


@pytest.fixture
def kaggle_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKaggle]:
    """The fake server, and an environment in which the real CLI reaches it with fake credentials."""
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
                 "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", f"{kaggle_bin_dir()}:/usr/bin:/bin")
    monkeypatch.setattr(push_module, "READY_TIMEOUT_S", 60.0)  # a never-ready dataset fails in a minute (a poll is a CLI start-up)
    monkeypatch.setattr(push_module, "READY_POLL_S", 0.05)
    (tmp_path / "home").mkdir()
    with FakeKaggleServer() as fake:
        for name, value in fake.env(tmp_path / "home").items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def folders(tmp_path: Path) -> SimpleNamespace:
    """A kernel folder and a weights dataset folder as build / build-inference write them."""
    kernel, weights = tmp_path / "kernel", tmp_path / "weights"
    kernel.mkdir()
    weights.mkdir()
    spec = KernelSpec(competition=COMPETITION, kernel_id=KERNEL_ID)
    (kernel / "kernel-metadata.json").write_text(json.dumps(spec.metadata([WEIGHTS_ID])))
    (kernel / spec.code_file).write_text("print('the kernel')\n")
    (weights / "dataset-metadata.json").write_text(json.dumps(
        {"title": title_for(WEIGHTS_ID), "id": WEIGHTS_ID, "licenses": [{"name": "CC0-1.0"}]}))
    (weights / "fold_0_best.pt").write_bytes(b"checkpoint bytes")
    return SimpleNamespace(kernel=kernel, weights=weights, script=kernel / spec.code_file)


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------ names


@pytest.mark.parametrize("check, args", [
    (names.check_kernel_id, ["tester/fashioncomp-tiny"]),
    (names.check_kernel_id, ["Some_User/abcde"]),
    (names.check_kernel_id, ["tester/" + "a" * 50]),
    (names.check_dataset_id, ["tester/abcdef"]),
    (names.check_title, ["fashioncomp tiny", "kernel", "title", "fashioncomp-tiny"]),
    (names.check_title, ["My Weights", "dataset"]),
    (names.check_competition, ["fashion-tiny"]),
])
def test_names_within_kaggles_limits_pass(check, args: list) -> None:
    assert check(*args) == args[0]


@pytest.mark.parametrize("check, args, message", [
    (names.check_kernel_id, ["tester/abcd"], "has 4 characters; Kaggle takes 5-50"),
    (names.check_kernel_id, ["tester/" + "a" * 51], "has 51 characters; Kaggle takes 5-50"),
    (names.check_kernel_id, ["no-owner-here"], "not a Kaggle owner/slug"),
    (names.check_kernel_id, ["tester/a/b"], "not a Kaggle owner/slug"),
    (names.check_kernel_id, ["tester/Capital-Slug"], "not a Kaggle kernel slug"),
    (names.check_kernel_id, ["tester/two--dashes"], "not a Kaggle kernel slug"),
    (names.check_dataset_id, ["tester/short"], "has 5 characters; Kaggle takes 6-50"),
    (names.check_title, ["abcd"], "the kernel title 'abcd' has 4 characters; Kaggle takes 5-50"),
    (names.check_title, ["x" * 51], "Kaggle takes 5-50"),
    (names.check_title, ["Wghts", "dataset"], "Kaggle takes 6-50"),
    (names.check_title, ["My Kernel", "kernel", "title", "my-kernel-2"], "gives the slug 'my-kernel', not 'my-kernel-2'"),
    (names.check_competition, ["ab"], "Kaggle takes 3-50"),
])
def test_names_outside_kaggles_limits_are_refused(check, args: list, message: str) -> None:
    with pytest.raises(names.KaggleNameError, match=message.replace("(", r"\(")):
        check(*args)


def test_build_refuses_names_the_cli_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["--competition", COMPETITION, "--out", tmp_path / "k"]
    assert cli("build", "--config", REPO / "configs" / "default.yaml", "--kernel-id", "tester/abcd", *base) == 2
    assert "has 4 characters; Kaggle takes 5-50" in one_error_line(capsys)
    assert cli("build-inference", "--run", tmp_path / "run", "--dataset-id", "tester/short", "--kernel-id", KERNEL_ID,
               "--weights-out", tmp_path / "w", *base) == 2
    assert "'short' has 5 characters; Kaggle takes 6-50" in one_error_line(capsys)
    assert not (tmp_path / "k").exists() and not (tmp_path / "w").exists()


# ------------------------------------------------------------------------------ reading the CLI's replies


def test_a_reply_without_the_clis_confirmation_is_not_a_success() -> None:
    bar = "100%|##########| 4.00/4.00 [00:00<00:00, 1.38kB/s]"
    assert refusal(CliReply(("kernels", "push", "-p", "k"), 0, ("Kernel version 2 successfully pushed.  Please check",
                                                                  bar))) is None
    assert refusal(CliReply(("kernels", "push"), 0, ("something else", bar))) == \
        "it did not confirm success: something else"
    assert refusal(CliReply(("competitions", "submit"), 1, (bar, "Too many requests", bar))) == \
        "Too many requests (exit status 1)"


# ------------------------------------------------------------------------------ push


def test_push_uploads_the_dataset_then_the_kernel(kaggle_api: FakeKaggle, folders: SimpleNamespace,
                                                  capsys: pytest.CaptureFixture) -> None:
    assert cli("push", "--path", folders.weights, "--path", folders.kernel) == 0
    assert kaggle_api.methods() == ["GetDatasetStatus", "StartBlobUpload", "PUT /upload/token-1", "CreateDataset",
                                    "GetDatasetStatus", "SaveKernel"]  # the kernel waits until the dataset is ready
    assert kaggle_api.bodies("StartBlobUpload")[0]["name"] == "fold_0_best.pt"
    assert kaggle_api.uploads == {"token-1": b"checkpoint bytes"}
    created = kaggle_api.bodies("CreateDataset")[0]
    assert (created["ownerSlug"], created["slug"], created["title"]) == ("tester", "fashioncomp-tiny-weights",
                                                                         "fashioncomp tiny weights")
    assert created["files"] == [{"token": "token-1"}] and created["isPrivate"] is True
    kernel = kaggle_api.bodies("SaveKernel")[0]
    assert (kernel["slug"], kernel["newTitle"]) == (KERNEL_ID, "fashioncomp tiny")
    assert kernel["text"] == folders.script.read_text()
    assert kernel["datasetDataSources"] == [WEIGHTS_ID] and kernel["competitionDataSources"] == [COMPETITION]
    assert kernel["enableInternet"] is False
    assert f"kernel {KERNEL_ID}: version 3 pushed" in capsys.readouterr().out


@pytest.mark.parametrize("refuse, message", [
    (lambda fake: fake.datasets.add(WEIGHTS_ID),  # the CLI finds it exists and refuses by itself
     'Dataset creation error: The requested title "fashioncomp tiny weights" is already in use'),
    (lambda fake: fake.answer("CreateDataset", Reply({"status": "Error", "error": "Your storage quota is full"})),
     "Dataset creation error: Your storage quota is full"),
    (lambda fake: fake.answer("StartBlobUpload", error_reply("Blob storage unavailable")),
     "Blob storage unavailable (exit status 1)"),
    (lambda fake: setattr(fake, "upload_status", 400),  # the CLI creates the dataset without the file, exit 0
     "Upload unsuccessful: fold_0_best.pt (the rest went up without it)"),
])
def test_a_refused_dataset_stops_the_push_before_the_kernel(kaggle_api: FakeKaggle, folders: SimpleNamespace,
                                                            capsys: pytest.CaptureFixture, refuse, message: str) -> None:
    refuse(kaggle_api)
    assert cli("push", "--path", folders.weights, "--path", folders.kernel) == 2
    err = one_error_line(capsys)
    assert "`kaggle datasets create` failed: " + message in err and "--version-notes" in err
    assert "SaveKernel" not in kaggle_api.methods()


def test_push_version_notes_make_a_new_dataset_version(kaggle_api: FakeKaggle, folders: SimpleNamespace,
                                                       capsys: pytest.CaptureFixture) -> None:
    kaggle_api.datasets.add(WEIGHTS_ID)
    assert cli("push", "--path", folders.weights, "--version-notes", "new folds") == 0
    request = kaggle_api.bodies("CreateDatasetVersion")[0]
    assert (request["ownerSlug"], request["datasetSlug"]) == ("tester", "fashioncomp-tiny-weights")
    assert request["body"]["versionNotes"] == "new folds" and request["body"]["files"] == [{"token": "token-1"}]

    kaggle_api.answer("CreateDatasetVersion", Reply({"status": "Error", "error": "Dataset is being processed"}))
    assert cli("push", "--path", folders.weights, "--version-notes", "again") == 2
    assert "`kaggle datasets version` failed: Dataset version creation error: Dataset is being processed" \
        in one_error_line(capsys)


@pytest.mark.parametrize("reply, message", [
    (Reply({"error": "Notebook exceeds the maximum size"}), "Kernel push error: Notebook exceeds the maximum size"),
    (error_reply("Competition fashion-tiny not found", 404), "Competition fashion-tiny not found (exit status 1)"),
    (Reply({"ref": KERNEL_ID, "url": "u", "versionNumber": 2, "invalidDatasetSources": [WEIGHTS_ID]}),
     "not valid dataset sources and could not be added to the kernel: ['tester/fashioncomp-tiny-weights'] "
     "(the kernel would run without them)"),
    (error_reply("Unauthenticated", 401), "Authentication required to call the Kaggle API. (check KAGGLE_USERNAME"),
])
def test_push_fails_with_the_clis_message_when_the_kernel_is_refused(kaggle_api: FakeKaggle, folders: SimpleNamespace,
                                                                     capsys: pytest.CaptureFixture, reply: Reply,
                                                                     message: str) -> None:
    kaggle_api.answer("SaveKernel", reply)
    assert cli("push", "--path", folders.kernel) == 2
    assert "`kaggle kernels push` failed: " in (err := one_error_line(capsys)) and message in err


@pytest.mark.parametrize("metadata, message", [
    ({"id": "tester/abcd", "title": "abcd"}, "kernel-metadata.json \"id\": the kernel slug 'abcd' has 4 characters"),
    ({"title": "fashioncomp tiny 2"}, "\"title\": the kernel title 'fashioncomp tiny 2' gives the slug "
                                      "'fashioncomp-tiny-2', not 'fashioncomp-tiny'"),
    ({"dataset_sources": ["no-owner"]}, "\"dataset_sources\": 'no-owner' is not a Kaggle owner/slug"),
])
def test_push_checks_kernel_names_before_uploading_anything(kaggle_api: FakeKaggle, folders: SimpleNamespace,
                                                            capsys: pytest.CaptureFixture, metadata: dict,
                                                            message: str) -> None:
    path = folders.kernel / "kernel-metadata.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **metadata}))
    assert cli("push", "--path", folders.weights, "--path", folders.kernel) == 2
    assert message in one_error_line(capsys)
    assert kaggle_api.calls == []


def test_push_checks_dataset_names_before_uploading_anything(kaggle_api: FakeKaggle, folders: SimpleNamespace,
                                                             capsys: pytest.CaptureFixture) -> None:
    (folders.weights / "dataset-metadata.json").write_text(json.dumps(
        {"title": "short", "id": "tester/short", "licenses": [{"name": "CC0-1.0"}]}))
    assert cli("push", "--path", folders.weights) == 2
    assert "dataset-metadata.json \"id\": the dataset slug 'short' has 5 characters; Kaggle takes 6-50" \
        in one_error_line(capsys)
    assert kaggle_api.calls == []


def test_push_waits_for_the_dataset_and_stops_if_processing_fails(kaggle_api: FakeKaggle, folders: SimpleNamespace,
                                                                  capsys: pytest.CaptureFixture) -> None:
    not_found = error_reply("Dataset not found", 404)  # the CLI's check before creating, then our polls
    kaggle_api.answer("GetDatasetStatus", not_found, not_found, Reply({"status": "BLOBS_RECEIVED"}),
                      Reply({"status": "READY"}))
    push([folders.weights, folders.kernel])
    assert kaggle_api.methods().count("GetDatasetStatus") == 4 and kaggle_api.methods()[-1] == "SaveKernel"
    assert f"dataset {WEIGHTS_ID}: ready" in capsys.readouterr().out

    kaggle_api.calls.clear()
    kaggle_api.datasets.clear()
    kaggle_api.answer("GetDatasetStatus", not_found, Reply({"status": "FAILED"}))
    assert cli("push", "--path", folders.weights, "--path", folders.kernel) == 2
    assert f"dataset {WEIGHTS_ID} is not ready (failed)" in one_error_line(capsys)
    assert "SaveKernel" not in kaggle_api.methods()


def test_push_without_the_kaggle_cli_says_what_to_install(folders: SimpleNamespace, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PATH", str(folders.kernel))  # no `kaggle` there
    assert cli("push", "--path", folders.kernel) == 2
    assert "pip install kaggle" in one_error_line(capsys)


def test_push_without_credentials_says_what_to_set(kaggle_api: FakeKaggle, folders: SimpleNamespace,
                                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                   tmp_path: Path) -> None:
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    assert cli("push", "--path", folders.kernel) == 2
    err = one_error_line(capsys)
    assert "~/.kaggle/kaggle.json" in err and "KAGGLE_USERNAME and KAGGLE_KEY" in err
    assert kaggle_api.calls == [], "the CLI must not run without credentials"

    (tmp_path / "home" / ".kaggle").mkdir(parents=True)
    (tmp_path / "home" / ".kaggle" / "kaggle.json").write_text('{"username": "tester", "key": "k"}')
    assert cli("push", "--path", folders.kernel) == 0
    assert kaggle_api.methods() == ["SaveKernel"]


def test_push_refuses_a_folder_that_was_not_built(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli("push", "--path", tmp_path) == 2
    assert "build it first" in one_error_line(capsys)


# ------------------------------------------------------------------------------ status


@pytest.mark.parametrize("reply, code, shown", [
    (Reply({"status": "RUNNING"}), 0, f"kernel {KERNEL_ID}: running"),
    (Reply({"status": "ERROR", "failureMessage": "CUDA out of memory"}), 2, "error (CUDA out of memory)"),
    (Reply({"status": "CANCEL_ACKNOWLEDGED"}), 2, "cancel_acknowledged"),
    (error_reply("Permission denied", 403), 2, "Cannot access kernel 'tester/fashioncomp-tiny'"),
])
def test_status_prints_the_state_and_fails_on_error_or_cancel(kaggle_api: FakeKaggle, capsys: pytest.CaptureFixture,
                                                              reply: Reply, code: int, shown: str) -> None:
    kaggle_api.answer("GetKernelSessionStatus", reply)
    assert cli("status", "--kernel", KERNEL_ID) == code
    assert kaggle_api.bodies("GetKernelSessionStatus") == [{"userName": "tester", "kernelSlug": "fashioncomp-tiny"}]
    assert shown in (capsys.readouterr().out if code == 0 else one_error_line(capsys))


def test_status_wait_polls_until_the_kernel_stops(kaggle_api: FakeKaggle, capsys: pytest.CaptureFixture) -> None:
    kaggle_api.answer("GetKernelSessionStatus", Reply({"status": "QUEUED"}), Reply({"status": "RUNNING"}),
                      Reply({"status": "RUNNING"}), Reply({"status": "COMPLETE"}))
    assert cli("status", "--kernel", KERNEL_ID, "--wait", "--poll-seconds", "0.01") == 0
    assert capsys.readouterr().out.splitlines() == [f"kernel {KERNEL_ID}: {state}"
                                                    for state in ("queued", "running", "complete")]
    assert len(kaggle_api.bodies("GetKernelSessionStatus")) == 4


# ------------------------------------------------------------------------------ output


@pytest.fixture
def kernel_output(kaggle_api: FakeKaggle) -> FakeKaggle:
    kaggle_api.output_files.update({"category.csv": b"file_path,category_label\nimg/1.jpg,3\n",
                                    "runs/default/config.yaml": b"seed: 1\n"})
    kaggle_api.output_log = "the kernel's log"
    return kaggle_api


def test_output_downloads_into_the_run_and_never_overwrites_silently(kernel_output: FakeKaggle, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("mine\n")
    assert cli("output", "--kernel", KERNEL_ID, "--run", run) == 0
    asked = kernel_output.bodies("ListKernelSessionOutput")[0]
    assert (asked["userName"], asked["kernelSlug"]) == ("tester", "fashioncomp-tiny")
    out = run / "kaggle-output"
    assert (out / "category.csv").read_bytes() == kernel_output.output_files["category.csv"]
    assert (out / "runs" / "default" / "config.yaml").read_text() == "seed: 1\n"
    assert (out / "fashioncomp-tiny.log").read_text() == "the kernel's log"
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "kaggle-output"]  # no staging folder left
    assert "3 file(s)" in capsys.readouterr().out

    (out / "category.csv").write_text("edited\n")
    kernel_output.output_files["category.csv"] = b"file_path,category_label\nimg/1.jpg,4\n"
    assert cli("output", "--kernel", KERNEL_ID, "--run", run) == 2
    assert "already exists" in one_error_line(capsys) and (out / "category.csv").read_text() == "edited\n"
    assert cli("output", "--kernel", KERNEL_ID, "--run", run, "--force") == 0
    assert (out / "category.csv").read_bytes().endswith(b",4\n")
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "kaggle-output"]
    assert (run / "config.yaml").read_text() == "mine\n"


@pytest.mark.parametrize("refuse, message", [
    (lambda fake: fake.answer("ListKernelSessionOutput", error_reply("Permission denied", 403)),
     "Cannot access kernel 'tester/fashioncomp-tiny'"),
    (lambda fake: (fake.output_files.clear(), setattr(fake, "output_log", "")), "has no output yet"),
])
def test_output_fails_without_leaving_a_partial_folder(kernel_output: FakeKaggle, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture, refuse, message: str) -> None:
    refuse(kernel_output)
    assert cli("output", "--kernel", KERNEL_ID, "--run", tmp_path / "r2") == 2
    assert message in one_error_line(capsys)
    assert list((tmp_path / "r2").iterdir()) == []


# ------------------------------------------------------------------------------ submit


@pytest.fixture
def finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """runs/r1 with its config, and the two CSVs make_submission writes to submissions/r1/."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(load_config(None)))
    (tmp_path / "submissions" / "r1").mkdir(parents=True)
    (tmp_path / "submissions" / "r1" / "category.csv").write_text("file_path,category_label\nimg/1.jpg,3\n")
    (tmp_path / "submissions" / "r1" / "attribute.csv").write_text("file_path,attribute_label\nimg/1.jpg,0 4\n")
    return run


def test_submit_uploads_the_chosen_file_with_the_competition_and_message(kaggle_api: FakeKaggle, finished_run: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    assert cli("submit", "--run", finished_run, "-c", COMPETITION, "-m", "two folds, tta") == 2
    assert "writes 2 files (category.csv, attribute.csv) and a competition takes one: choose it with --file" \
        in one_error_line(capsys)
    assert kaggle_api.calls == []

    assert cli("submit", "--run", finished_run, "-c", COMPETITION, "-m", "two folds, tta", "--file", "category.csv") == 0
    data = Path("submissions/r1/category.csv").read_bytes()
    started = kaggle_api.bodies("StartSubmissionUpload")[0]
    assert (started["competitionName"], started["fileName"], started["contentLength"]) == \
        (COMPETITION, "category.csv", len(data))
    assert kaggle_api.uploads == {"token-1": data}
    assert kaggle_api.bodies("CreateSubmission") == [{"competitionName": COMPETITION, "blobFileTokens": "token-1",
                                                      "submissionDescription": "two folds, tta"}]
    assert "Successfully submitted to Fashion Tiny" in capsys.readouterr().out


@pytest.mark.parametrize("refuse, message", [
    (lambda fake: fake.answer("CreateSubmission", error_reply("You have reached the daily submission limit")),
     "You have reached the daily submission limit (exit status 1)"),
    (lambda fake: fake.answer("StartSubmissionUpload", error_reply("no such competition", 404)),
     "no such competition (exit status 1)"),
])
def test_submit_fails_with_the_servers_message(kaggle_api: FakeKaggle, finished_run: Path,
                                               capsys: pytest.CaptureFixture, refuse, message: str) -> None:
    refuse(kaggle_api)
    assert cli("submit", "--run", finished_run, "-c", COMPETITION, "-m", "x", "--file", "attribute.csv") == 2
    assert "`kaggle competitions submit` failed: " + message in one_error_line(capsys)


def test_submit_takes_a_one_file_format_from_the_fetched_kernel_output(kaggle_api: FakeKaggle, finished_run: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    (finished_run / "config.yaml").write_text(dump_config(load_config(None, ["submission.format=image_label_ids"])))
    shutil.rmtree("submissions")
    (finished_run / "kaggle-output").mkdir()
    (finished_run / "kaggle-output" / "submission.csv").write_text("image_id,label_id\n1,3 4\n")
    assert cli("submit", "--run", finished_run, "-c", COMPETITION, "-m", "kernel v3") == 0
    assert kaggle_api.bodies("StartSubmissionUpload")[0]["fileName"] == "submission.csv"
    assert list(kaggle_api.uploads.values()) == [b"image_id,label_id\n1,3 4\n"]


@pytest.mark.parametrize("prepare, args, message", [
    (lambda run: (Path("submissions/r1/category.csv").unlink(), Path("submissions/r1/attribute.csv").unlink()),
     [], "no submission of run"),
    (lambda run: (run / "kaggle-output").mkdir() or (run / "kaggle-output" / "category.csv").write_text("a\n1\n"),
     [], "has submissions in both"),
    (lambda run: Path("submissions/r1/category.csv").write_text("file_path,category_label\n"), [], "only a header"),
    (lambda run: None, ["--file", "other.csv"], "--file other.csv: the run's submission format writes"),
    (lambda run: None, ["--version", "2"], "--version goes with --kernel"),
    (lambda run: None, ["--dir", "elsewhere"], "elsewhere/category.csv: file not found"),
    (lambda run: None, ["-c", "a b"], "not a Kaggle competition slug"),
])
def test_submit_refuses_what_it_cannot_submit_before_calling_kaggle(kaggle_api: FakeKaggle, finished_run: Path,
                                                                    capsys: pytest.CaptureFixture, prepare, args: list,
                                                                    message: str) -> None:
    prepare(finished_run)
    assert cli("submit", "--run", finished_run, "-c", COMPETITION, "-m", "x", "--file", "category.csv", *args) == 2
    assert message in one_error_line(capsys)
    assert kaggle_api.calls == []


def test_submit_a_kernel_version_to_a_code_competition(kaggle_api: FakeKaggle, capsys: pytest.CaptureFixture) -> None:
    assert cli("submit", "--kernel", KERNEL_ID, "-c", COMPETITION, "-m", "code run") == 2
    assert "--kernel OWNER/SLUG --version N" in one_error_line(capsys) and kaggle_api.calls == []

    assert cli("submit", "--kernel", KERNEL_ID, "--version", 3, "-c", COMPETITION, "-m", "code run") == 0
    assert kaggle_api.bodies("CreateCodeSubmission") == [{
        "competitionName": COMPETITION, "kernelOwner": "tester", "kernelSlug": "fashioncomp-tiny", "kernelVersion": 3,
        "fileName": "submission.csv", "submissionDescription": "code run"}]

    kaggle_api.answer("CreateCodeSubmission", error_reply("Notebook version 3 has no submission.csv output"))
    assert cli("submit", "--kernel", KERNEL_ID, "--version", 3, "-c", COMPETITION, "-m", "again") == 2
    assert "Notebook version 3 has no submission.csv output" in one_error_line(capsys)
