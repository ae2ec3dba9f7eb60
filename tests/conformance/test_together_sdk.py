"""Conformance: the official ``together`` SDK drives the emulator over a real socket.

Every flow the SDK offers for batches is exercised: the three-step upload (302 with a
pre-signed ``Location``, ``PUT`` of the bytes, ``preprocess``), file retrieve/list/content/
delete, batch create (the 201 ``{"job"}`` wrapper), retrieve, list (a bare array) and cancel,
sync and async. Answers parse into the SDK's own types; when ../shared is present, every JSON
answer is also validated against Together's OpenAPI schema for its route.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
import yaml
from tests.conftest import shared_path
from together import AsyncTogether, Together
from together.types import BatchJob, FileResponse

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_together.dialect import TogetherDialect

SPECS = Path(__file__).parents[2].parent / "shared" / "specs"
RUNNING = {"VALIDATING", "IN_PROGRESS"}

# (method, path below /together) -> schema of the answer in the OpenAPI spec
ROUTES = [
    ("GET", r"/v1/files", "FileList"),
    ("GET", r"/v1/files/[^/]+", "FileResponse"),
    ("DELETE", r"/v1/files/[^/]+", "FileDeleteResponse"),
    ("POST", r"/v1/files/[^/]+/preprocess", "FileResponse"),
    ("POST", r"/v1/batches", "BatchJobWithWarning"),
    ("GET", r"/v1/batches/[^/]+", "BatchJob"),
    ("POST", r"/v1/batches/[^/]+/cancel", "BatchJob"),
]


def schema_for(method: str, path: str) -> str | None:
    for route_method, pattern, schema in ROUTES:
        if method == route_method and re.fullmatch(r"/together" + pattern, path):
            return schema
    return None


@functools.cache
def spec_document() -> dict[str, Any] | None:
    path = SPECS / "together" / "batch_files_subset.yaml"
    if not path.exists():
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return document


def spec_errors(spec: dict[str, Any], name: str, instance: Any) -> list[str]:
    root = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    validator = jsonschema.Draft202012Validator(root)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


class Recorder:
    """Keeps every answer the SDK receives (status, path, body)."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, str, int, httpx.Headers, bytes]] = []

    def record(self, response: httpx.Response) -> None:
        self.responses.append(
            (
                response.request.method,
                response.request.url.path,
                response.status_code,
                response.headers,
                response.content,
            )
        )

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.record(response)

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.record(response)

    def check_against_spec(self) -> int:
        document = spec_document()
        if document is None:
            return 0
        checked = 0
        for method, path, status, headers, body in self.responses:
            if status >= 300 or not headers.get("content-type", "").startswith("application/json"):
                continue
            payload = orjson.loads(body)
            if method == "GET" and re.fullmatch(r"/together/v1/batches", path):
                # The listing is a bare array of BatchJob.
                assert isinstance(payload, list)
                items = [("BatchJob", item) for item in payload]
            else:
                name = schema_for(method, path)
                assert name is not None, f"no schema known for {method} {path}"
                items = [(name, payload)]
            for name, item in items:
                problems = spec_errors(document, name, item)
                assert not problems, f"{method} {path} ({name}): {problems}"
                checked += 1
        return checked


@pytest.fixture
def emulator() -> Emulator:
    # One request per simulated second: a cancel can land part-way through a batch.
    config = EmulatorConfig(
        seed=5, validating_seconds=1.0, requests_per_second=1.0, finalizing_seconds=1.0
    )
    return Emulator([TogetherDialect], config, ManualClock())


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(emulator=emulator) as running:
        yield running


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(server: EmulatorServer, recorder: Recorder) -> Iterator[Together]:
    http = httpx.Client(event_hooks={"response": [recorder]}, follow_redirects=True)
    try:
        yield Together(api_key="k", base_url=f"{server.base_url}/together", http_client=http)
    finally:
        http.close()
    if recorder.responses:
        recorder.check_against_spec()


def write_input(tmp_path: Path, count: int, failing: frozenset[int] = frozenset()) -> Path:
    lines = []
    for index in range(count):
        text = f"Question {index}: say something short."
        if index in failing:
            text += " [[emulator:error]]"
        lines.append(
            orjson.dumps(
                {
                    "custom_id": f"request-{index}",
                    "body": {
                        "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                        "messages": [{"role": "user", "content": text}],
                        "max_tokens": 50,
                    },
                }
            )
        )
    path = tmp_path / "batch_input.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def wait(client: Together, emulator: Emulator, batch_id: str) -> BatchJob:
    for _ in range(1000):
        job = client.batches.retrieve(batch_id)
        if job.status not in RUNNING:
            return job
        emulator.advance(0.5)
    raise AssertionError(f"batch {batch_id} never ended")


def test_upload_is_the_three_step_presigned_flow(
    client: Together, recorder: Recorder, tmp_path: Path
) -> None:
    path = write_input(tmp_path, 3)
    uploaded = client.files.upload(path, purpose="batch-api")
    assert isinstance(uploaded, FileResponse)
    assert uploaded.purpose == "batch-api" and uploaded.bytes == path.stat().st_size
    steps = [(m, p, s) for m, p, s, _, _ in recorder.responses]
    assert steps[0] == ("POST", "/together/v1/files", 302)
    assert steps[1][0] == "PUT" and steps[1][1].startswith("/together/uploads/")
    assert steps[1][2] == 200
    assert steps[2] == ("POST", f"/together/v1/files/{uploaded.id}/preprocess", 200)
    headers = recorder.responses[0][3]
    assert headers["x-together-file-id"] == uploaded.id

    fetched = client.files.retrieve(uploaded.id)
    assert fetched.processing_status == "COMPLETED"
    assert fetched.validation_report is not None and fetched.validation_report.nlines == 3
    listed = client.files.list()
    assert [f.id for f in listed.data] == [uploaded.id]
    assert client.files.content(uploaded.id).read() == path.read_bytes()
    deleted = client.files.delete(uploaded.id)
    assert deleted.id == uploaded.id and deleted.deleted is True
    assert client.files.list().data == []


def test_a_bad_signature_is_refused(client: Together, server: EmulatorServer) -> None:
    answer = httpx.put(f"{server.base_url}/together/uploads/file-x?signature=forged", content=b"x")
    assert answer.status_code == 403


def test_batch_lifecycle_with_results_and_errors(
    client: Together, emulator: Emulator, recorder: Recorder, tmp_path: Path
) -> None:
    uploaded = client.files.upload(
        write_input(tmp_path, 4, failing=frozenset({2})), purpose="batch-api"
    )
    created = client.batches.create(
        endpoint="/v1/chat/completions",
        input_file_id=uploaded.id,
        model_id="meta-llama/Llama-3.3-70B-Instruct-Turbo",
    )
    assert created.job is not None and created.job.status == "VALIDATING"
    assert recorder.responses[-1][2] == 201, "create answers 201 with the job wrapper"
    job = wait(client, emulator, str(created.job.id))
    assert job.status == "COMPLETED" and job.progress == 100.0
    assert job.output_file_id and job.error_file_id
    outputs = [
        orjson.loads(x) for x in client.files.content(job.output_file_id).read().splitlines()
    ]
    errors = [orjson.loads(x) for x in client.files.content(job.error_file_id).read().splitlines()]
    assert sorted(o["custom_id"] for o in outputs) == ["request-0", "request-1", "request-3"]
    assert all(o["response"]["status_code"] == 200 for o in outputs)
    assert [e["custom_id"] for e in errors] == ["request-2"]
    assert errors[0]["error"]["message"]

    listed = client.batches.list()
    assert isinstance(listed, list) and [b.id for b in listed] == [job.id]
    shared_path("specs", "together", "batch_files_subset.yaml")  # skips where ../shared is absent
    assert recorder.check_against_spec() > 0


def test_cancel_has_no_cancelling_state(
    client: Together, emulator: Emulator, tmp_path: Path
) -> None:
    uploaded = client.files.upload(write_input(tmp_path, 20), purpose="batch-api")
    created = client.batches.create(endpoint="/v1/chat/completions", input_file_id=uploaded.id)
    assert created.job is not None
    emulator.advance(3.5)  # validation, then two requests
    cancelled = client.batches.cancel(str(created.job.id))
    assert cancelled.status == "CANCELLED"
    again = client.batches.retrieve(str(created.job.id))
    assert again.status == "CANCELLED"
    assert again.progress is not None and 0 < again.progress < 100.0
    assert again.output_file_id, "the requests done before the cancel keep their results"
    done = client.files.content(again.output_file_id).read().splitlines()
    assert len(done) == round(again.progress * 20 / 100)


def test_async_client_runs_the_same_flow(
    server: EmulatorServer, emulator: Emulator, recorder: Recorder, tmp_path: Path
) -> None:
    path = write_input(tmp_path, 2)

    async def flow() -> BatchJob:
        http = httpx.AsyncClient(event_hooks={"response": [recorder.hook]})
        async with AsyncTogether(
            api_key="k", base_url=f"{server.base_url}/together", http_client=http
        ) as client:
            uploaded = await client.files.upload(path, purpose="batch-api")
            created = await client.batches.create(
                endpoint="/v1/chat/completions", input_file_id=uploaded.id
            )
            assert created.job is not None
            emulator.advance(3600)
            return await client.batches.retrieve(str(created.job.id))

    job = asyncio.run(flow())
    assert job.status == "COMPLETED" and job.output_file_id
    recorder.check_against_spec()


def test_the_sdk_against_the_omnibatch_emulator_serve_command(tmp_path: Path) -> None:
    """The same SDK against ``omnibatch emulator serve`` started as a subprocess."""
    import time

    from tests.cli.conftest import start_emulator

    served = start_emulator(tmp_path, "--speed", "20")
    try:
        client = Together(api_key="k", base_url=f"{served.root}/together")
        uploaded = client.files.upload(write_input(tmp_path, 3), purpose="batch-api")
        created = client.batches.create(endpoint="/v1/chat/completions", input_file_id=uploaded.id)
        assert created.job is not None
        deadline = time.monotonic() + 30
        job = client.batches.retrieve(str(created.job.id))
        while job.status in RUNNING and time.monotonic() < deadline:
            time.sleep(0.05)
            job = client.batches.retrieve(str(created.job.id))
        assert job.status == "COMPLETED" and job.output_file_id
        assert len(client.files.content(job.output_file_id).read().splitlines()) == 3
        client.close()
    finally:
        served.stop()
