"""Our own adapters send what the official SDKs send, and their bodies validate against the
providers' OpenAPI schemas.

Every request of a full lifecycle is captured on its way to the emulator and compared with the
recordings in ../shared/specs/sdk-requests (method, path, query keys in order, JSON key order,
multipart part names in order) and with the schemas in ../shared/specs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from omnibatch import BatchClient
from omnibatch.emulator import Emulator, ManualClock

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SPECS = SHARED / "specs"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference material {path} is absent (it lives beside the repo in CI)")
    return path


def _recorded(provider: str) -> dict[str, dict[str, Any]]:
    data = json.loads(_need(SPECS / "sdk-requests" / f"{provider}.json").read_text())
    return {op["operation"]: op["request"] for op in data}


class Capture:
    """Forwards to the emulator, keeping every request."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.emulator.handle(request)

    def find(self, method: str, suffix: str) -> httpx.Request:
        for request in self.requests:
            if request.method == method and request.url.path.endswith(suffix):
                return request
        raise AssertionError(f"no {method} …{suffix} among {[str(r.url) for r in self.requests]}")


def _validator(spec_file: Path, name: str) -> jsonschema.Draft202012Validator:
    document = yaml.safe_load(_need(spec_file).read_text())
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def _multipart_names(request: httpx.Request) -> list[str]:
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    names = []
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        head = chunk.split(b"\r\n\r\n", 1)[0].decode()
        names.append(head.split('name="', 1)[1].split('"', 1)[0])
    return names


def _lifecycle(provider: str, prefix: str, tmp_path: Path) -> Capture:
    emulator = Emulator(clock=ManualClock())
    capture = Capture(emulator)
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "mistral-small-latest",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": f"q{i}"}],
            },
        }
        for i in range(3)
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with BatchClient(
        provider,
        api_key="k",
        base_url="http://e" + prefix,
        transport=httpx.MockTransport(capture),
        sleep=emulator.advance,
    ) as client:
        batch = client.submit(source, metadata={"job_type": "x"})
        list(client.list(page_size=2, limit=2))
        client.wait(batch.id)
        list(client.results(batch.id))
        other = client.submit(source)
        client.cancel(other.id)
        client.cleanup(batch.id)
    return capture


def test_openai_requests_match_the_sdk_and_the_schemas(tmp_path: Path) -> None:
    recorded = _recorded("openai")
    capture = _lifecycle("openai", "/openai/v1", tmp_path)

    upload = capture.find("POST", "/v1/files")
    assert _multipart_names(upload) == [
        p["name"] for p in recorded["files.create (batch input, chat)"]["body"]["parts"]
    ]
    line_schema = _validator(
        SPECS / "openai" / "batch_line_schemas_2025-04-29.yaml", "BatchRequestInput"
    )
    payload = upload.content.split(b"\r\n\r\n", 2)[-1]
    for raw in payload.split(b"\r\n--")[0].splitlines():
        line_schema.validate(json.loads(raw))

    create = capture.find("POST", "/v1/batches")
    body = json.loads(create.content)
    assert list(body) == list(recorded["batches.create"]["body"])
    _validator(SPECS / "openai" / "batch_files_subset.yaml", "CreateBatchRequest").validate(body)
    assert create.headers["content-type"] == "application/json"

    listing = capture.find("GET", "/v1/batches")
    assert [k for k, _ in listing.url.params.multi_items()] == ["limit"]
    cancel = capture.find("POST", "/cancel")
    assert cancel.content == b""
    download = capture.find("GET", "/content")
    assert (
        download.headers["accept"] == recorded["files.content (output file)"]["headers"]["accept"]
    )
    deleted = capture.find("DELETE", "")
    assert deleted.url.path.startswith("/openai/v1/files/") and deleted.content == b""


def test_mistral_requests_match_the_sdk_and_the_schemas(tmp_path: Path) -> None:
    recorded = _recorded("mistral")
    capture = _lifecycle("mistral", "/mistral", tmp_path)

    upload = capture.find("POST", "/v1/files")
    assert _multipart_names(upload) == [
        p["name"] for p in recorded["files.upload (batch input)"]["body"]["parts"]
    ]
    create = capture.find("POST", "/v1/batch/jobs")
    body = json.loads(create.content)
    assert list(body) == list(recorded["batch.jobs.create (input_files)"]["body"])
    spec = SPECS / "mistral" / "batch_files_subset.yaml"
    _validator(spec, "CreateBatchJobRequest").validate(body)
    line_schema = _validator(spec, "BatchRequest")
    payload = upload.content.split(b"\r\n\r\n")[-1].split(b"\r\n--")[0]
    for raw in payload.splitlines():
        line_schema.validate(json.loads(raw))

    listing = capture.find("GET", "/v1/batch/jobs")
    sdk_keys = recorded["batch.jobs.list (no arguments: SDK defaults)"]["raw_query"]
    assert [k for k, _ in listing.url.params.multi_items()] == [
        pair.split("=")[0] for pair in sdk_keys.split("&")
    ]
    assert capture.find("POST", "/cancel").content == b""


def test_mistral_list_filters_are_encoded_like_the_sdk() -> None:
    from omnibatch_mistral.adapter import MistralAdapter

    recorded = _recorded("mistral")["batch.jobs.list (filters)"]["raw_query"]
    flow = MistralAdapter(api_key="k").list_batches(
        cursor=None,
        limit=2,
        filters={
            "metadata": {"job_type": "x"},
            "created_after": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
            "status": ["SUCCESS", "RUNNING"],
        },
    )
    request = next(flow)
    built = httpx.Request("GET", "http://e/v1/batch/jobs", params=list(request.params))
    assert built.url.query.decode() == recorded
