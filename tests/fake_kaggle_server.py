"""A stand-in for Kaggle's API server, for tests that run the real `kaggle` CLI.

The CLI (kaggle 2.x, over kagglesdk and requests) is pointed at it without being patched:
KAGGLE_API_ENVIRONMENT=LOCALHOST makes it call http://localhost/api/v1/<service>/<Method>, and
http_proxy routes those requests (and the file uploads and downloads) to this server, which
listens on a free port. It records every request and answers like the real API: JSON bodies
with the fields kagglesdk reads, errors as {"code": ..., "message": ...}.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

API_PREFIX = "/api/v1/"
HOST = "http://localhost"


@dataclass
class Reply:
    body: Any
    status: int = 200


def error_reply(message: str, status: int = 400) -> Reply:
    """How the API refuses a call: the CLI raises it as an HTTPError and exits 1."""
    return Reply({"code": status, "message": message}, status)


@dataclass
class Call:
    method: str  # the API method, e.g. "SaveKernel"; "PUT /upload/1" for a file upload
    body: Any    # the JSON request (bytes for an upload)


@dataclass
class FakeKaggle:
    """The API's state: datasets that exist, kernel output files, scripted replies, requests seen."""

    datasets: set[str] = field(default_factory=set)          # "owner/slug" that GetDatasetStatus finds
    output_files: dict[str, bytes] = field(default_factory=dict)  # a kernel's output, by file name
    output_log: str = ""
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)  # upload token -> bytes received
    scripted: dict[str, list[Reply]] = field(default_factory=dict)
    upload_status: int = 200  # what the upload URL answers a file's bytes with
    port: int = 0

    def answer(self, method: str, *replies: Reply) -> None:
        """Reply to `method` with these, in order; the last one repeats."""
        self.scripted[method] = list(replies)

    def bodies(self, method: str) -> list[Any]:
        return [call.body for call in self.calls if call.method == method]

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def env(self, home: Path) -> dict[str, str]:
        """Environment for the CLI: this server, fake credentials, a fresh HOME."""
        proxy = f"http://127.0.0.1:{self.port}"
        return {"HOME": str(home), "KAGGLE_API_ENVIRONMENT": "LOCALHOST", "http_proxy": proxy, "HTTP_PROXY": proxy,
                "KAGGLE_USERNAME": "tester", "KAGGLE_KEY": "not-a-real-key"}

    # -------------------------------------------------------------------------------- the API

    def reply(self, method: str, body: Any) -> Reply:
        if self.scripted.get(method):
            queue = self.scripted[method]
            return queue.pop(0) if len(queue) > 1 else queue[0]
        default = DEFAULT_REPLIES.get(method)
        return default(self, body) if default else error_reply(f"fake server: no reply for {method}", 404)

    def start_upload(self, _body: Any) -> Reply:
        token = f"token-{len(self.uploads) + 1}"
        self.uploads[token] = b""
        return Reply({"token": token, "createUrl": f"{HOST}/upload/{token}"})

    def dataset_status(self, body: Any) -> Reply:
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        return Reply({"status": "READY"}) if ref in self.datasets else error_reply(f"Dataset {ref} not found", 404)

    def create_dataset(self, body: Any) -> Reply:
        ref = f"{body['ownerSlug']}/{body['slug']}"
        self.datasets.add(ref)
        return Reply({"ref": ref, "url": f"{HOST}/datasets/{ref}", "status": "Ok"})

    def save_kernel(self, body: Any) -> Reply:
        return Reply({"ref": body.get("slug"), "url": f"{HOST}/code/{body.get('slug')}", "versionNumber": 3})

    def kernel_output(self, _body: Any) -> Reply:
        files = [{"fileName": name, "url": f"{HOST}/output/{name}"} for name in self.output_files]
        return Reply({"files": files, "log": self.output_log or None})


DEFAULT_REPLIES: dict[str, Callable[[FakeKaggle, Any], Reply]] = {
    "StartBlobUpload": FakeKaggle.start_upload,
    "StartSubmissionUpload": FakeKaggle.start_upload,
    "GetDatasetStatus": FakeKaggle.dataset_status,
    "CreateDataset": FakeKaggle.create_dataset,
    "CreateDatasetVersion": lambda fake, body: Reply({"ref": "", "url": f"{HOST}/datasets/new-version", "status": "Ok"}),
    "SaveKernel": FakeKaggle.save_kernel,
    "GetKernelSessionStatus": lambda fake, body: Reply({"status": "COMPLETE"}),
    "ListKernelSessionOutput": FakeKaggle.kernel_output,
    "CreateSubmission": lambda fake, body: Reply({"message": "Successfully submitted to Fashion Tiny", "ref": 7}),
    "CreateCodeSubmission": lambda fake, body: Reply({"message": "Successfully submitted to Fashion Tiny", "ref": 8}),
    "GetSubmissionLimits": lambda fake, body: Reply({"numAllowedNow": 4}),
}


def _handler(fake: FakeKaggle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep the test output clean
            pass

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # the API: every call is a POST of a JSON request
            path = urlsplit(self.path).path
            body = json.loads(self._body() or b"{}")
            method = path.rpartition("/")[2] if path.startswith(API_PREFIX) else path
            fake.calls.append(Call(method, body))
            reply = fake.reply(method, body)
            self._send(reply.status, json.dumps(reply.body).encode())

        def do_PUT(self) -> None:  # a resumable upload to the createUrl the API handed out
            path = urlsplit(self.path).path
            token = path.rpartition("/")[2]
            data = self._body()
            fake.calls.append(Call(f"PUT {path}", data))
            if token not in fake.uploads:
                self._send(404, b"{}")
                return
            if fake.upload_status == 200:
                fake.uploads[token] += data
            self._send(fake.upload_status, b"{}")

        def do_GET(self) -> None:  # a kernel output file
            name = urlsplit(self.path).path.removeprefix("/output/")
            fake.calls.append(Call(f"GET {name}", None))
            if name not in fake.output_files:
                self._send(404, b"not found", "text/plain")
                return
            self._send(200, fake.output_files[name], "application/octet-stream")

    return Handler


class FakeKaggleServer:
    """Serve a FakeKaggle on a free port in a background thread (a context manager)."""

    def __init__(self) -> None:
        self.fake = FakeKaggle()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.fake))
        self.fake.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKaggle:
        self._thread.start()
        return self.fake

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
