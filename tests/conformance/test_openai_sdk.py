"""Conformance: the official ``openai`` SDK drives the emulator over a real socket.

Every response must parse into the SDK's own types with no unknown and no missing
required field, validate against OpenAI's OpenAPI schemas (``../shared/specs``), and have
the key set of the golden payloads published by OpenAI.

About the OpenAPI check: the spec declares optional properties such as ``output_file_id``
or ``failed_at`` as plain strings/integers, while the live API (and the spec's own
examples, ``specs/examples/openai``) send ``null`` for them. Nulls are therefore removed
before validation; a ``null`` in a *required* property still fails (as missing).
:func:`test_the_schema_check_accepts_goldens_and_catches_mistakes` shows the check on
OpenAI's own examples and on broken objects.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jsonschema
import openai
import orjson
import pydantic
import pytest
import yaml
from openai import OpenAI
from openai.types import Batch, Completion, CreateEmbeddingResponse, FileDeleted, FileObject
from openai.types.chat import ChatCompletion
from openai.types.responses import Response as ResponsesResponse

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_openai.dialect import OpenAIDialect

SHARED = Path(__file__).parents[2].parent / "shared"
SPECS = SHARED / "specs"
EXAMPLES = SPECS / "examples" / "openai"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


# -- helpers ----------------------------------------------------------------------------------


def shared_file(*parts: str) -> Path:
    path = SPECS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference material {path} is absent (../shared lives beside the repo)")
    return path


def load_yaml(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return data


def load_json(name: str) -> Any:
    return orjson.loads(shared_file("examples", "openai", name).read_bytes())


def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


class Spec:
    """Validate instances against ``components.schemas`` of an OpenAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.components = document["components"]

    def schema(self, name: str) -> dict[str, Any]:
        schema: dict[str, Any] = self.components["schemas"][name]
        return schema

    def errors(self, name: str, instance: Any) -> list[str]:
        root = {"$ref": f"#/components/schemas/{name}", "components": self.components}
        validator = jsonschema.Draft202012Validator(
            root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        return [
            f"{list(e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(drop_nulls(instance))
        ]

    def check(self, name: str, instance: Any) -> None:
        problems = self.errors(name, instance)
        assert not problems, f"{name}: {problems}"
        properties = set(self.schema(name).get("properties", {}))
        if properties and isinstance(instance, dict):
            unknown = set(instance) - properties
            assert not unknown, f"{name} has keys the spec does not declare: {unknown}"


def sdk_extras(obj: Any, where: str = "") -> list[str]:
    """Keys the SDK's models did not recognise, anywhere in the parsed object."""
    found: list[str] = []
    if isinstance(obj, pydantic.BaseModel):
        here = f"{where}{type(obj).__name__}"
        found += [f"{here}.{k}" for k in (obj.model_extra or {})]
        for name in type(obj).model_fields:
            found += sdk_extras(getattr(obj, name), f"{here}.{name}/")
    elif isinstance(obj, list):
        for item in obj:
            found += sdk_extras(item, where)
    elif isinstance(obj, dict):
        for item in obj.values():
            found += sdk_extras(item, where)
    return found


def parse_strict(model: type[pydantic.BaseModel], raw: dict[str, Any]) -> Any:
    """``model.model_validate(raw)``, asserting no unknown key and every required key."""
    parsed = model.model_validate(raw)
    assert sdk_extras(parsed) == []
    required = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
    assert required <= set(raw), f"missing {required - set(raw)}"
    return parsed


def raw_json(response: Any) -> Any:
    return orjson.loads(response.content)


def keys(obj: dict[str, Any]) -> set[str]:
    return set(obj)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Emulator:
    return Emulator([OpenAIDialect], EmulatorConfig(seed=11), ManualClock())


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(emulator=emulator) as running:
        yield running


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{server.base_url}/openai/v1", api_key="k") as sdk:
        yield sdk


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec(load_yaml(shared_file("openai", "batch_files_subset.yaml")))


@pytest.fixture(scope="module")
def line_spec() -> Spec:
    return Spec(load_yaml(shared_file("openai", "batch_line_schemas_2025-04-29.yaml")))


def chat_jsonl(n: int, *, fail: tuple[int, ...] = (), model: str = "gpt-4o-mini") -> bytes:
    lines = []
    for i in range(n):
        text = f"Question number {i}?" + (" [[emulator:error]]" if i in fail else "")
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        line = {
            "custom_id": f"request-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": body,
        }
        lines.append(orjson.dumps(line))
    return b"\n".join(lines) + b"\n"


def upload(client: OpenAI, data: bytes) -> FileObject:
    return client.files.create(file=io.BytesIO(data), purpose="batch")


def wait(client: OpenAI, emulator: Emulator, batch_id: str, step: float = 0.25) -> Batch:
    for _ in range(1000):
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        emulator.advance(step)
    raise AssertionError("the batch never finished")


# -- flows ---------------------------------------------------------------------------------------


def test_full_lifecycle_with_the_sdk(
    client: OpenAI, emulator: Emulator, spec: Spec, line_spec: Spec
) -> None:
    data = chat_jsonl(30, fail=(4, 9))
    raw_file = client.files.with_raw_response.create(
        file=("batch_input.jsonl", data), purpose="batch"
    )
    file_json = raw_json(raw_file)
    uploaded = parse_strict(FileObject, file_json)
    spec.check("OpenAIFile", file_json)
    assert (uploaded.bytes, uploaded.purpose, uploaded.filename) == (
        len(data),
        "batch",
        "batch_input.jsonl",
    )

    retrieved = client.files.with_raw_response.retrieve(uploaded.id)
    assert raw_json(retrieved) == file_json

    metadata = {"customer_id": "user_123456789", "batch_description": "Nightly eval job"}
    created_raw = client.batches.with_raw_response.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata,
    )
    created_json = raw_json(created_raw)
    created = parse_strict(Batch, created_json)
    spec.check("Batch", created_json)
    assert created.status == "validating" and created.metadata == metadata
    assert emulator.stats.creates["openai"] == 1

    seen = set()
    batch = created
    while batch.status not in TERMINAL:
        emulator.advance(0.02)
        raw = client.batches.with_raw_response.retrieve(created.id)
        batch_json = raw_json(raw)
        batch = parse_strict(Batch, batch_json)
        spec.check("Batch", batch_json)
        seen.add(batch.status)
    assert seen >= {"validating", "in_progress", "finalizing", "completed"}
    assert batch.request_counts is not None
    assert (
        batch.request_counts.total,
        batch.request_counts.completed,
        batch.request_counts.failed,
    ) == (30, 28, 2)
    assert batch.usage is not None and batch.usage.total_tokens > 0
    assert batch.output_file_id and batch.error_file_id

    output = client.files.content(batch.output_file_id).content
    errors = client.files.content(batch.error_file_id).content
    out_lines = [orjson.loads(x) for x in output.splitlines()]
    err_lines = [orjson.loads(x) for x in errors.splitlines()]
    assert len(out_lines) == 28 and len(err_lines) == 2
    assert sorted(x["custom_id"] for x in err_lines) == ["request-4", "request-9"]
    for line in out_lines + err_lines:
        line_spec.check("BatchRequestOutput", line)
    for line in out_lines:
        completion = parse_strict(ChatCompletion, line["response"]["body"])
        assert completion.choices[0].message.content
    for line in err_lines:
        assert line["response"]["status_code"] == 400 and line["error"] is None
        assert line["response"]["body"]["error"]["message"]

    output_meta = raw_json(client.files.with_raw_response.retrieve(batch.output_file_id))
    parse_strict(FileObject, output_meta)
    spec.check("OpenAIFile", output_meta)
    assert output_meta["purpose"] == "batch_output" and output_meta["bytes"] == len(output)

    deleted_raw = client.files.with_raw_response.delete(uploaded.id)
    deleted_json = raw_json(deleted_raw)
    parse_strict(FileDeleted, deleted_json)
    spec.check("DeleteFileResponse", deleted_json)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_list_across_pages(client: OpenAI, emulator: Emulator, spec: Spec) -> None:
    file_id = upload(client, chat_jsonl(2)).id
    ids = []
    for i in range(5):
        b = client.batches.create(
            input_file_id=file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"n": str(i)},
        )
        ids.append(b.id)
        emulator.advance(1)
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]

    page = client.batches.list(limit=2)
    assert page.has_more is True and len(page.data) == 2
    second = page.get_next_page()
    assert [b.id for b in second.data] == ids[::-1][2:4]

    after = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"limit": 2}
        if after:
            kwargs["after"] = after
        raw = raw_json(client.batches.with_raw_response.list(**kwargs))
        spec.check("ListBatchesResponse", raw)
        for item in raw["data"]:
            parse_strict(Batch, item)
        assert raw["first_id"] == raw["data"][0]["id"] and raw["last_id"] == raw["data"][-1]["id"]
        pages += 1
        if not raw["has_more"]:
            break
        after = raw["data"][-1]["id"]
    assert pages == 3

    files = list(client.files.list(limit=10, purpose="batch"))
    assert [f.id for f in files] == [file_id]


def test_cancel_flow(client: OpenAI, emulator: Emulator, spec: Spec) -> None:
    batch = client.batches.create(
        input_file_id=upload(client, chat_jsonl(400)).id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    emulator.advance(0.75)  # 100 of 400 processed
    raw = raw_json(client.batches.with_raw_response.cancel(batch.id))
    cancelling = parse_strict(Batch, raw)
    spec.check("Batch", raw)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    done = wait(client, emulator, batch.id)
    assert done.status == "cancelled"
    assert done.request_counts is not None and done.request_counts.completed == 100
    assert done.output_file_id and done.error_file_id
    out = client.files.content(done.output_file_id).text.splitlines()
    err = [orjson.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert len(out) == 100 and len(err) == 300
    assert {e["error"]["code"] for e in err} == {"batch_cancelled"}
    with pytest.raises(openai.ConflictError) as conflict:
        client.with_options(max_retries=0).batches.cancel(batch.id)  # the SDK retries 409s
    assert conflict.value.status_code == 409 and conflict.value.type == "invalid_request_error"


def test_expired_batch_has_partial_output_and_expired_lines(
    client: OpenAI, emulator: Emulator, line_spec: Spec
) -> None:
    batch = client.batches.create(
        input_file_id=upload(client, chat_jsonl(100)).id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    emulator.advance(0.6)
    emulator.expire(batch.id)
    expired = wait(client, emulator, batch.id)
    assert expired.status == "expired" and expired.expired_at is not None
    assert expired.output_file_id and expired.error_file_id
    err = [
        orjson.loads(x) for x in client.files.content(expired.error_file_id).content.splitlines()
    ]
    assert len(err) == 60 and {e["error"]["code"] for e in err} == {"batch_expired"}
    for line in err:
        line_spec.check("BatchRequestOutput", line)
    golden = [
        orjson.loads(x)
        for x in shared_file("examples", "openai", "batch_error_expired_guide.jsonl")
        .read_bytes()
        .splitlines()
    ]
    assert keys(err[0]) == keys(golden[0])
    assert keys(err[0]["error"]) == keys(golden[0]["error"])
    assert err[0]["error"]["message"] == golden[0]["error"]["message"]


def test_failed_validation_reports_errors_through_the_sdk(
    client: OpenAI, emulator: Emulator, spec: Spec
) -> None:
    data = chat_jsonl(2) + chat_jsonl(1, model="gpt-4o")  # line 3: another model, same custom_id
    batch = client.batches.create(
        input_file_id=upload(client, data).id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    failed = wait(client, emulator, batch.id)
    assert failed.status == "failed" and failed.failed_at is not None
    assert failed.errors is not None and failed.errors.data is not None
    assert [(e.code, e.line) for e in failed.errors.data] == [("duplicate_custom_id", 3)]
    spec.check("Batch", raw_json(client.batches.with_raw_response.retrieve(batch.id)))


def test_other_endpoints_parse_into_sdk_types(client: OpenAI, emulator: Emulator) -> None:
    cases: dict[str, tuple[dict[str, Any], type[pydantic.BaseModel]]] = {
        "/v1/embeddings": (
            {"model": "text-embedding-3-small", "input": ["a b", "c"]},
            CreateEmbeddingResponse,
        ),
        "/v1/completions": ({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"}, Completion),
        "/v1/responses": (
            {"model": "gpt-4o-mini", "input": "Say hi", "max_output_tokens": 3},
            ResponsesResponse,
        ),
    }
    for endpoint, (body, model) in cases.items():
        line = {"custom_id": "only", "method": "POST", "url": endpoint, "body": body}
        batch = client.batches.create(
            input_file_id=upload(client, orjson.dumps(line)).id,
            endpoint=cast(Any, endpoint),
            completion_window="24h",
        )
        emulator.complete(batch.id)
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed" and done.output_file_id, endpoint
        (out,) = [
            orjson.loads(x) for x in client.files.content(done.output_file_id).content.splitlines()
        ]
        parsed = parse_strict(model, out["response"]["body"])
        if isinstance(parsed, ResponsesResponse):
            assert parsed.status == "incomplete" and parsed.output_text


def test_http_errors_map_to_sdk_exceptions(client: OpenAI, server: EmulatorServer) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.batches.retrieve("batch_missing")
    assert missing.value.status_code == 404 and "batch_missing" in missing.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.batches.create(
            input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert bad.value.param == "input_file_id"
    server.emulator.config.api_key = "the-real-key"
    with (
        OpenAI(base_url=server.url("openai"), api_key="a-wrong-key", max_retries=0) as wrong,
        pytest.raises(openai.AuthenticationError) as denied,
    ):
        wrong.batches.list()
    assert denied.value.code == "invalid_api_key" and denied.value.type == "invalid_request_error"
    assert "a-wrong-key" not in str(denied.value.body)


# -- the golden payloads ------------------------------------------------------------------------


def test_key_sets_match_the_golden_payloads(client: OpenAI, emulator: Emulator) -> None:
    file_json = raw_json(
        client.files.with_raw_response.create(file=("in.jsonl", chat_jsonl(400)), purpose="batch")
    )
    golden_file = load_json("file_object.json")
    assert keys(golden_file) <= keys(file_json)
    assert keys(file_json) - keys(golden_file) == {
        "status",
        "status_details",
    }  # spec-required status

    def batch_json(batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = raw_json(client.batches.with_raw_response.retrieve(batch_id))
        return result

    created = raw_json(
        client.batches.with_raw_response.create(
            input_file_id=file_json["id"],
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"k": "v"},
        )
    )
    # The older examples predate the `model` and `usage` fields; the spec's Batch example has them.
    newer = {"model", "usage"}
    assert keys(created) - newer == keys(load_json("batch_create_response.json"))
    emulator.advance(0.6)
    cancelling = raw_json(client.batches.with_raw_response.cancel(created["id"]))
    assert keys(cancelling) - newer == keys(load_json("batch_cancel_cancelling.json"))
    assert keys(cancelling["request_counts"]) == keys(
        load_json("batch_cancel_cancelling.json")["request_counts"]
    )

    other = client.batches.create(
        input_file_id=file_json["id"], endpoint="/v1/chat/completions", completion_window="24h"
    )
    emulator.complete(other.id)
    completed = batch_json(other.id)
    with_usage = load_json("batch_object_with_usage.json")
    assert keys(completed) == keys(with_usage)
    assert keys(completed["usage"]) == keys(with_usage["usage"])
    assert keys(completed["usage"]["input_tokens_details"]) == keys(
        with_usage["usage"]["input_tokens_details"]
    )
    assert keys(completed) - newer == keys(load_json("batch_retrieve_completed.json"))

    listing = raw_json(client.batches.with_raw_response.list(limit=1))
    golden_list = load_json("batch_list_response.json")
    assert keys(listing) == keys(golden_list)
    assert keys(listing["data"][0]) - newer == keys(golden_list["data"][0])

    deleted = raw_json(client.files.with_raw_response.delete(file_json["id"]))
    assert keys(deleted) == keys(load_json("file_deleted.json"))

    out = orjson.loads(
        client.files.content(str(completed["output_file_id"])).content.splitlines()[0]
    )
    golden_line = orjson.loads(
        shared_file("examples", "openai", "batch_output_guide.jsonl").read_bytes().splitlines()[0]
    )
    assert keys(out) == keys(golden_line)
    assert keys(out["response"]) == keys(golden_line["response"])
    body, golden_body = out["response"]["body"], golden_line["response"]["body"]
    assert keys(body) == keys(golden_body)
    assert keys(body["choices"][0]) == keys(golden_body["choices"][0])
    assert keys(body["choices"][0]["message"]) == keys(golden_body["choices"][0]["message"])
    assert keys(body["usage"]) == keys(golden_body["usage"])


def test_the_schema_check_accepts_goldens_and_catches_mistakes(spec: Spec, line_spec: Spec) -> None:
    for name, schema in [
        ("batch_create_response.json", "Batch"),
        ("batch_retrieve_completed.json", "Batch"),
        ("batch_cancel_cancelling.json", "Batch"),
        ("batch_object_with_usage.json", "Batch"),
        ("batch_list_response.json", "ListBatchesResponse"),
        ("file_deleted.json", "DeleteFileResponse"),
    ]:
        assert spec.errors(schema, load_json(name)) == [], name
    for raw in (
        shared_file("examples", "openai", "batch_output_guide.jsonl").read_bytes().splitlines()
    ):
        assert line_spec.errors("BatchRequestOutput", orjson.loads(raw)) == []
    good = load_json("batch_retrieve_completed.json")
    assert spec.errors("Batch", {**good, "status": "done"})
    assert spec.errors("Batch", {**good, "created_at": "yesterday"})
    assert spec.errors("Batch", {k: v for k, v in good.items() if k != "input_file_id"})
    assert spec.errors("Batch", {**good, "id": None})  # a null in a required field fails
    with pytest.raises(AssertionError, match="does not declare"):
        spec.check("Batch", {**good, "surprise": 1})
    with pytest.raises(AssertionError):
        parse_strict(Batch, {**good, "surprise": 1})
    with pytest.raises(pydantic.ValidationError, match="status"):
        parse_strict(FileObject, load_json("file_object.json"))  # the example lacks `status`
