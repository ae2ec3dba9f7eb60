"""Conformance: the official ``mistralai`` SDK drives the emulator over a real socket.

Every JSON answer the SDK receives is captured (an ``httpx2`` response hook on the SDK's
own client) and, at the end of each test, validated against Mistral's OpenAPI schema for
its route (``../shared/specs/mistral``). Objects must also parse into the SDK's models with
every required field present and no field the models do not know.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import orjson
import pydantic
import pytest
import yaml
from mistralai.client import Mistral, models
from mistralai.client.errors import SDKError
from mistralai.extra.batch.client import BatchClient, BatchInput, BatchOutput

from omnibatch.emulator import (
    Emulator,
    EmulatorConfig,
    EmulatorServer,
    ManualClock,
    ScaledClock,
    serve,
)
from omnibatch_mistral.dialect import MistralDialect

SHARED = Path(__file__).parents[2].parent / "shared"
SPECS = SHARED / "specs"
RUNNING = {"QUEUED", "RUNNING", "CANCELLATION_REQUESTED"}

# (method, path regex below /mistral) -> schema of the 200 answer in the OpenAPI spec
ROUTES = [
    ("POST", r"/v1/files", "CreateFileResponse"),
    ("GET", r"/v1/files", "ListFilesResponse"),
    ("GET", r"/v1/files/[^/]+", "GetFileResponse"),
    ("DELETE", r"/v1/files/[^/]+", "DeleteFileResponse"),
    ("POST", r"/v1/batch/jobs", "BatchJob"),
    ("GET", r"/v1/batch/jobs", "ListBatchJobsResponse"),
    ("GET", r"/v1/batch/jobs/[^/]+", "BatchJob"),
    ("POST", r"/v1/batch/jobs/[^/]+/cancel", "BatchJob"),
    ("DELETE", r"/v1/batch/jobs/[^/]+", "DeleteBatchJobResponse"),
]


def shared_file(*parts: str) -> Path:
    path = SPECS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference material {path} is absent (../shared lives beside the repo)")
    return path


def schema_for(method: str, path: str) -> str | None:
    for route_method, pattern, schema in ROUTES:
        if method == route_method and re.fullmatch(r"/mistral" + pattern, path):
            return schema
    return None


def key_paths(value: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            out.add(f"{prefix}.{key}")
            out |= key_paths(item, f"{prefix}.{key}")
    elif isinstance(value, list):
        for item in value:
            out |= key_paths(item, f"{prefix}[]")
    return out


def parse_strict(model: type[pydantic.BaseModel], raw: dict[str, Any]) -> Any:
    """``model.model_validate(raw)`` with every required key present and none unknown."""
    parsed = model.model_validate(raw)
    required = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
    assert required <= set(raw), f"{model.__name__} misses {required - set(raw)}"
    dumped = parsed.model_dump(by_alias=True, mode="json")
    unknown = key_paths(raw) - key_paths(dumped)
    assert not unknown, f"{model.__name__} does not know {unknown}"
    return parsed


class Recorder:
    """Keeps every response the SDK receives."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, str, int, str, bytes]] = []

    def __call__(self, response: httpx2.Response) -> None:
        response.read()
        self.responses.append(
            (
                response.request.method,
                response.request.url.path,
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
            )
        )

    def json_answers(self) -> list[tuple[str, str, Any]]:
        return [
            (method, path, orjson.loads(body))
            for method, path, status, ctype, body in self.responses
            if status == 200 and ctype.startswith("application/json")
        ]


@functools.cache
def spec_document() -> dict[str, Any] | None:
    path = SPECS / "mistral" / "batch_files_subset.yaml"
    if not path.exists():
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return document


@pytest.fixture
def spec() -> dict[str, Any]:
    document = spec_document()
    if document is None:
        pytest.skip(
            f"Mistral's OpenAPI spec is absent from {SPECS} (../shared lives beside the repo)"
        )
    return document


def spec_errors(spec: dict[str, Any], name: str, instance: Any) -> list[str]:
    root = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    validator = jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


@pytest.fixture
def emulator() -> Emulator:
    return Emulator([MistralDialect], EmulatorConfig(seed=5), ManualClock())


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(emulator=emulator) as running:
        yield running


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(server: EmulatorServer, recorder: Recorder) -> Iterator[Mistral]:
    http = httpx2.Client(event_hooks={"response": [recorder]})
    try:
        yield Mistral(api_key="k", server_url=f"{server.base_url}/mistral", client=http)
    finally:
        http.close()


@pytest.fixture
def checked(client: Mistral, recorder: Recorder) -> Iterator[Mistral]:
    """The SDK client; after the test, every JSON answer it got is validated against the
    spec's schema for its route (when the spec is present)."""
    yield client
    document = spec_document()
    if document is None:
        return
    answers = recorder.json_answers()
    for method, path, body in answers:
        name = schema_for(method, path)
        assert name is not None, f"no schema known for {method} {path}"
        problems = spec_errors(document, name, body)
        assert not problems, f"{method} {path} ({name}): {problems}"
        declared = set(document["components"]["schemas"][name].get("properties", {}))
        assert set(body) <= declared, f"{name}: undeclared {set(body) - declared}"


def batch_input() -> bytes:
    return shared_file("examples", "mistral", "batch_input.jsonl").read_bytes()


def wait(client: Mistral, emulator: Emulator, job_id: str, step: float = 0.25) -> models.BatchJob:
    for _ in range(1000):
        job = client.batch.jobs.get(job_id=job_id)
        if job.status not in RUNNING:
            return job
        emulator.advance(step)
    raise AssertionError("the job never finished")


def chat_lines(n: int, fail: tuple[int, ...] = ()) -> bytes:
    lines = []
    for i in range(n):
        text = f"Question {i}?" + (" [[emulator:error]]" if i in fail else "")
        lines.append(
            orjson.dumps(
                {
                    "custom_id": str(i),
                    "body": {"max_tokens": 32, "messages": [{"role": "user", "content": text}]},
                }
            )
        )
    return b"\n".join(lines) + b"\n"


# -- flows -----------------------------------------------------------------------------------


def test_full_lifecycle_with_the_sdk(
    checked: Mistral, emulator: Emulator, recorder: Recorder
) -> None:
    client = checked
    data = batch_input()
    uploaded = client.files.upload(
        file={"file_name": "batch_input.jsonl", "content": data}, purpose="batch"
    )
    assert (uploaded.size_bytes, uploaded.num_lines, uploaded.sample_type) == (
        len(data),
        3,
        "batch_request",
    )
    retrieved = client.files.retrieve(file_id=uploaded.id)
    assert retrieved.deleted is False and retrieved.filename == "batch_input.jsonl"

    job = client.batch.jobs.create(
        input_files=[uploaded.id],
        model="mistral-small-latest",
        endpoint="/v1/chat/completions",
        metadata={"job_type": "testing"},
        timeout_hours=24,
    )
    assert (
        job.status == "QUEUED"
        and job.total_requests == 3
        and job.metadata == {"job_type": "testing"}
    )
    statuses = set()
    while job.status in RUNNING:
        emulator.advance(0.1)
        job = client.batch.jobs.get(job_id=job.id)
        statuses.add(job.status)
    assert statuses == {"QUEUED", "RUNNING", "SUCCESS"}
    assert job.status == "SUCCESS"
    assert (job.completed_requests, job.succeeded_requests, job.failed_requests) == (3, 3, 0)
    assert job.output_file and job.error_file is None and job.started_at and job.completed_at

    inline = client.batch.jobs.get(job_id=job.id, inline=True)
    assert isinstance(inline.outputs, list) and len(inline.outputs) == 3

    output = client.files.download(file_id=job.output_file).read()
    parsed = BatchOutput.from_jsonl_bytes(output, models.ChatCompletionResponse)
    assert set(parsed.responses) == {"0", "1", "2"} and not parsed.request_errors
    assert not parsed.response_errors
    lines = [orjson.loads(x) for x in output.splitlines()]
    for line in lines + inline.outputs:
        parse_strict(models.ChatCompletionResponse, line["response"]["body"])

    downloads = [r for r in recorder.responses if r[1].endswith("/content")]
    assert downloads and all(r[3] == "application/octet-stream" for r in downloads)

    deleted = client.batch.jobs.delete(job_id=job.id)
    assert deleted.deleted is True
    with pytest.raises(SDKError) as gone:
        client.batch.jobs.get(job_id=job.id)
    assert gone.value.status_code == 404
    assert client.files.delete(file_id=uploaded.id).deleted is True

    for method, path, body in recorder.json_answers():
        by_schema: dict[str, type[pydantic.BaseModel]] = {
            "CreateFileResponse": models.CreateFileResponse,
            "GetFileResponse": models.GetFileResponse,
            "DeleteFileResponse": models.DeleteFileResponse,
            "BatchJob": models.BatchJob,
            "DeleteBatchJobResponse": models.DeleteBatchJobResponse,
        }
        parse_strict(by_schema[str(schema_for(method, path))], body)


def test_inline_requests_and_error_file(checked: Mistral, emulator: Emulator) -> None:
    client = checked
    requests = [orjson.loads(x) for x in chat_lines(6, fail=(1, 4)).splitlines()]
    job = client.batch.jobs.create(
        model="mistral-small-latest", endpoint="/v1/chat/completions", requests=requests
    )
    assert job.input_files == [] and job.total_requests == 6
    emulator.complete(job.id)
    done = client.batch.jobs.get(job_id=job.id)
    assert done.status == "SUCCESS" and (done.succeeded_requests, done.failed_requests) == (4, 2)
    assert done.output_file and done.error_file
    errors = BatchOutput.from_jsonl_bytes(
        client.files.download(file_id=done.error_file).read(), models.ChatCompletionResponse
    )
    assert sorted(e.custom_id or "" for e in errors.request_errors) == ["1", "4"]
    assert {e.status_code for e in errors.request_errors} == {400}
    ok = BatchOutput.from_jsonl_bytes(
        client.files.download(file_id=done.output_file).read(), models.ChatCompletionResponse
    )
    assert sorted(ok.responses) == ["0", "2", "3", "5"]
    error_meta = client.files.retrieve(file_id=done.error_file)
    assert error_meta.sample_type == "batch_error" and error_meta.source == "mistral"


def test_list_with_pages_and_filters(checked: Mistral, emulator: Emulator) -> None:
    client = checked
    emulator.config.validating_seconds = 1000  # jobs stay QUEUED until completed
    file_id = client.files.upload(
        file={"file_name": "in.jsonl", "content": chat_lines(2)}, purpose="batch"
    ).id
    start = emulator.clock.now()
    ids = []
    for i in range(5):
        job = client.batch.jobs.create(
            input_files=[file_id],
            model="mistral-small-latest" if i % 2 else "ministral-8b-latest",
            endpoint="/v1/chat/completions",
            metadata={"job_type": "x" if i < 3 else "y"},
        )
        ids.append(job.id)
        emulator.advance(10)
    emulator.complete(ids[0])
    emulator.complete(ids[3])

    everything = client.batch.jobs.list()
    assert everything.total == 5 and [j.id for j in everything.data or []] == ids[::-1]
    first = client.batch.jobs.list(page=0, page_size=2)
    second = client.batch.jobs.list(page=1, page_size=2)
    third = client.batch.jobs.list(page=2, page_size=2)
    assert [j.id for j in (first.data or []) + (second.data or []) + (third.data or [])] == ids[
        ::-1
    ]
    assert first.total == second.total == third.total == 5
    assert [j.id for j in client.batch.jobs.list(status=["SUCCESS"]).data or []] == [ids[3], ids[0]]
    assert [j.id for j in client.batch.jobs.list(metadata={"job_type": "y"}).data or []] == [
        ids[4],
        ids[3],
    ]
    after = datetime.fromtimestamp(start + 25, tz=UTC)
    recent = client.batch.jobs.list(created_after=after)
    assert [j.id for j in recent.data or []] == [ids[4], ids[3]]
    naive = client.batch.jobs.list(
        created_after=after.replace(tzinfo=None), created_by_me=True, model="mistral-small-latest"
    )
    assert [j.id for j in naive.data or []] == [ids[3]]
    assert (
        client.batch.jobs.list(
            status=["SUCCESS", "QUEUED"], metadata={"job_type": "x"}, page_size=100
        ).total
        == 3
    )
    for page in (everything, first, third):
        parse_strict(models.ListBatchJobsResponse, page.model_dump(by_alias=True, mode="json"))


def test_cancel_and_timeout(checked: Mistral, emulator: Emulator) -> None:
    client = checked
    file_id = client.files.upload(
        file={"file_name": "in.jsonl", "content": chat_lines(400)}, purpose="batch"
    ).id
    job = client.batch.jobs.create(
        input_files=[file_id], model="m", endpoint="/v1/chat/completions"
    )
    emulator.advance(0.75)
    requested = client.batch.jobs.cancel(job_id=job.id)
    assert requested.status == "CANCELLATION_REQUESTED"
    cancelled = wait(client, emulator, job.id)
    assert cancelled.status == "CANCELLED" and cancelled.completed_requests == 100
    assert cancelled.output_file
    assert len(client.files.download(file_id=cancelled.output_file).read().splitlines()) == 100
    with pytest.raises(SDKError) as conflict:
        client.batch.jobs.cancel(job_id=job.id)
    assert conflict.value.status_code == 409

    other = client.batch.jobs.create(
        input_files=[file_id], model="m", endpoint="/v1/chat/completions", timeout_hours=1
    )
    emulator.advance(0.6)
    emulator.expire(other.id)
    timed_out = client.batch.jobs.get(job_id=other.id)
    assert timed_out.status == "TIMEOUT_EXCEEDED" and timed_out.completed_requests == 40
    assert timed_out.output_file is not None


def test_embeddings_parse_into_sdk_types(checked: Mistral, emulator: Emulator) -> None:
    client = checked
    data = shared_file("examples", "mistral", "batch_input_embeddings.jsonl").read_bytes()
    file_id = client.files.upload(
        file={"file_name": "emb.jsonl", "content": data}, purpose="batch"
    ).id
    job = client.batch.jobs.create(
        input_files=[file_id], model="mistral-embed", endpoint="/v1/embeddings"
    )
    emulator.complete(job.id)
    done = client.batch.jobs.get(job_id=job.id)
    raw = client.files.download(file_id=str(done.output_file)).read()
    output = BatchOutput.from_jsonl_bytes(raw, models.EmbeddingResponse)
    assert sorted(output.responses) == ["0", "1", "2"] and not output.response_errors
    assert [len(output.responses[k].data) for k in ("0", "1", "2")] == [2, 1, 3]
    for line in raw.splitlines():
        parse_strict(models.EmbeddingResponse, orjson.loads(line)["response"]["body"])


def test_errors_reach_the_sdk_as_sdk_errors(checked: Mistral, server: EmulatorServer) -> None:
    client = checked
    with pytest.raises(SDKError) as missing:
        client.batch.jobs.get(job_id="00000000-0000-4000-8000-000000000000")
    assert missing.value.status_code == 404
    assert orjson.loads(missing.value.body)["object"] == "error"
    with pytest.raises(SDKError) as invalid:
        client.batch.jobs.create(
            input_files=["00000000-0000-4000-8000-000000000000"],
            model="m",
            endpoint="/v1/chat/completions",
            timeout_hours=500,
        )
    assert invalid.value.status_code == 422
    detail = orjson.loads(invalid.value.body)["message"]["detail"]
    assert [d["loc"] for d in detail] == [["body", "timeout_hours"]]
    server.emulator.config.api_key = "right"
    with (
        Mistral(api_key="wrong", server_url=f"{server.base_url}/mistral") as denied_client,
        pytest.raises(SDKError) as denied,
    ):
        denied_client.batch.jobs.list()
    assert denied.value.status_code == 401
    assert orjson.loads(denied.value.body)["message"] == "Unauthorized"


@pytest.mark.anyio
async def test_the_sdk_batch_helper_runs_end_to_end() -> None:
    """mistralai's own ``BatchClient.run`` (upload or inline, poll, download, clean up)."""
    emulator = Emulator([MistralDialect], EmulatorConfig(seed=2), ScaledClock(200))
    async_http = httpx2.AsyncClient()
    with serve(emulator=emulator) as server:
        sdk = Mistral(api_key="k", server_url=f"{server.base_url}/mistral", async_client=async_http)
        helper: BatchClient[Any, models.ChatCompletionResponse] = BatchClient(
            sdk, endpoint="/v1/chat/completions", response_body_type=models.ChatCompletionResponse
        )
        started = time.monotonic()
        for threshold in (1000, 1):  # inline, then uploaded first
            result = await helper.run(
                BatchInput.from_jsonl_bytes(chat_lines(5, fail=(3,))),
                model="mistral-small-latest",
                poll_interval_seconds=0.01,
                inline_threshold=threshold,
            )
            assert result.status == "SUCCESS"
            assert sorted(result.by_id()) == ["0", "1", "2", "4"]
            assert [e.custom_id for e in result.errors()] == ["3"]
        assert time.monotonic() - started < 20
        await async_http.aclose()


# -- golden payloads ------------------------------------------------------------------------


def test_key_sets_match_the_golden_payloads(
    checked: Mistral, emulator: Emulator, spec: dict[str, Any], recorder: Recorder
) -> None:
    client = checked
    uploaded = client.files.upload(
        file={"file_name": "batch_input.jsonl", "content": batch_input()}, purpose="batch"
    )
    job = client.batch.jobs.create(
        input_files=[uploaded.id], model="mistral-small-latest", endpoint="/v1/chat/completions"
    )
    emulator.complete(job.id)
    done = client.batch.jobs.get(job_id=job.id)
    ours = [
        orjson.loads(x)
        for x in client.files.download(file_id=str(done.output_file)).read().splitlines()
    ]
    golden = [
        orjson.loads(x)
        for x in shared_file("examples", "mistral", "batch_output.jsonl").read_bytes().splitlines()
    ]
    assert sorted(x["custom_id"] for x in ours) == sorted(x["custom_id"] for x in golden)
    for mine, theirs in zip(ours, golden, strict=True):
        assert key_paths(mine) == key_paths(theirs)

    emb_golden = orjson.loads(
        shared_file("examples", "mistral", "sdk_test_output_lines.jsonl")
        .read_bytes()
        .splitlines()[0]
    )
    emb_lines = [orjson.dumps({"custom_id": "a", "body": {"input": ["x"]}})]
    file_id = client.files.upload(
        file={"file_name": "e.jsonl", "content": b"\n".join(emb_lines)}, purpose="batch"
    ).id
    emb_job = client.batch.jobs.create(
        input_files=[file_id], model="mistral-embed", endpoint="/v1/embeddings"
    )
    emulator.complete(emb_job.id)
    emb_out = orjson.loads(
        client.files.download(
            file_id=str(client.batch.jobs.get(job_id=emb_job.id).output_file)
        ).read()
    )
    assert key_paths(emb_out["response"]["body"]) == key_paths(emb_golden["response"]["body"])

    examples = spec["paths"]["/v1/files"]["post"]["responses"]["200"]["content"][
        "application/json"
    ]["examples"]
    upload_example = examples["userExample"]["value"]
    upload_raw = orjson.loads(
        next(r[4] for r in recorder.responses if r[0] == "POST" and r[1].endswith("/v1/files"))
    )
    declared = set(spec["components"]["schemas"]["CreateFileResponse"]["properties"])
    assert set(upload_example) <= set(upload_raw) <= declared


def test_the_schema_check_catches_mistakes(spec: dict[str, Any]) -> None:
    body = orjson.loads(
        next(
            orjson.dumps(e["response"]["body"])
            for e in orjson.loads(shared_file("sdk-requests", "mistral.json").read_bytes())
            if e["operation"] == "batch.jobs.get"
        )
    )
    assert spec_errors(spec, "BatchJob", body) == []
    assert spec_errors(spec, "BatchJob", {**body, "status": "DONE"})
    assert spec_errors(spec, "BatchJob", {**body, "output_file": "not-a-uuid"})
    assert spec_errors(spec, "BatchJob", {k: v for k, v in body.items() if k != "total_requests"})
    with pytest.raises(AssertionError, match="does not know"):
        parse_strict(models.BatchJob, {**body, "surprise": 1})
    with pytest.raises(pydantic.ValidationError):
        parse_strict(models.BatchJob, {k: v for k, v in body.items() if k != "total_requests"})
    file_obj = {
        "id": "e85980c9-409e-4a46-9304-36588f6292b0",
        "object": "file",
        "size_bytes": 3,  # the field's Python name: pydantic accepts it, the wire needs "bytes"
        "created_at": 1,
        "filename": "f.jsonl",
        "purpose": "batch",
        "sample_type": "batch_request",
        "source": "upload",
        "deleted": False,
    }
    models.GetFileResponse.model_validate(file_obj)
    with pytest.raises(AssertionError, match="misses"):
        parse_strict(models.GetFileResponse, file_obj)
