"""The Gemini adapter without HTTP: translation, inline vs file, flows driven by hand, both
spellings of the states, results joined by key (never by position), and the real payloads
from Google's docs, cookbook and SDK (../shared/specs)."""

from __future__ import annotations

import random
import re
import warnings
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

import omnibatch_gemini.adapter as gemini_adapter
from omnibatch import (
    BatchStatus,
    ConfigurationError,
    ProviderResponseError,
    ProviderServerError,
    ResultStatus,
)
from omnibatch._http import RetryPolicy
from omnibatch._lifecycle import IDEMPOTENCY_KEY, FetchedSource, create_once
from omnibatch._status import UnknownStatusWarning
from omnibatch.adapter import CreateSpec, InputRef, ResultSource
from omnibatch.flows import HttpRequest, HttpResponse, Sleep
from omnibatch.models import BatchRequest
from omnibatch.pipeline import prepare_input
from omnibatch.results import iter_batch_results
from omnibatch_gemini.adapter import (
    DOCUMENTED_STATUSES,
    GEMINI_STATUSES,
    GeminiAdapter,
    inline_records,
)
from omnibatch_gemini.translate import chat_to_request

from ..conftest import REPO, shared_path

KEY = "AIza-test-key-0123456789"
ADAPTER = GeminiAdapter(api_key=KEY)
RESULTS = ResultSource("results")
MODEL = "gemini-2.5-flash"


def _json(*parts: str) -> Any:
    return orjson.loads(shared_path("specs", *parts).read_bytes())


def _recorded(prefix: str) -> list[dict[str, Any]]:
    return [e for e in _json("sdk-requests", "gemini.json") if e["operation"].startswith(prefix)]


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(
        status, {"content-type": "application/json", **(headers or {})}, orjson.dumps(body)
    )


def drive(flow: Generator[Any, Any, Any], answers: Sequence[HttpResponse]) -> tuple[Any, list[Any]]:
    sent: list[Any] = []
    queue = list(answers)
    try:
        effect = next(flow)
        while True:
            sent.append(effect)
            effect = flow.send(queue.pop(0) if isinstance(effect, HttpRequest) else None)
    except StopIteration as stop:
        assert not queue, f"{len(queue)} answers were not asked for"
        return stop.value, sent


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], **extra}


def operation(state: str, **md: Any) -> dict[str, Any]:
    top = md.pop("top", {})
    return {
        "name": "batches/abc123",
        "metadata": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
            "model": f"models/{MODEL}",
            "displayName": "job",
            "createTime": "2025-07-01T10:00:00.000000Z",
            "updateTime": "2025-07-01T10:00:00.000000Z",
            "state": state,
            "name": "batches/abc123",
            **md,
        },
        **top,
    }


def inline_item(key: str | None, text: str = "hi") -> dict[str, Any]:
    item: dict[str, Any] = {
        "response": {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}],
            "usageMetadata": {
                "promptTokenCount": 4,
                "candidatesTokenCount": 2,
                "totalTokenCount": 6,
            },
        }
    }
    if key is not None:
        item["metadata"] = {"key": key}
    return item


# --- translation -----------------------------------------------------------------------------


def test_messages_become_contents_system_instruction_and_generation_config() -> None:
    request, problems = chat_to_request(
        {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi!"},
                {"role": "user", "content": [{"type": "text", "text": "Again"}]},
            ],
            "max_tokens": 64,
            "temperature": 0.3,
            "top_p": 0.8,
            "top_k": 5,
            "stop": ["END"],
            "n": 2,
            "seed": 7,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            },
        }
    )
    assert problems == []
    assert request == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hello"}]},
            {"role": "model", "parts": [{"text": "Hi!"}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "maxOutputTokens": 64,
            "temperature": 0.3,
            "topP": 0.8,
            "topK": 5,
            "stopSequences": ["END"],
            "candidateCount": 2,
            "seed": 7,
            "presencePenalty": 0.1,
            "frequencyPenalty": 0.2,
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
        },
    }
    assert "model" not in request, "the model travels in the URL, once per batch"


def test_tools_calls_and_answers_keep_the_function_names() -> None:
    request, problems = chat_to_request(
        {
            "model": MODEL,
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "weather",
                        "description": "d",
                        "parameters": {"type": "object"},
                    },
                }
            ],
            "tool_choice": "required",
            "messages": [
                {"role": "user", "content": "Paris?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": '{"sky": "clear"}'},
            ],
        }
    )
    assert problems == []
    assert request["tools"] == [
        {
            "functionDeclarations": [
                {"name": "weather", "description": "d", "parametersJsonSchema": {"type": "object"}}
            ]
        }
    ]
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert request["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}, "id": "c1"}}],
    }
    assert request["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"id": "c1", "name": "weather", "response": {"sky": "clear"}}}
        ],
    }


def test_media_must_be_inline_and_unknown_parameters_are_reported() -> None:
    request, problems = chat_to_request(
        chat(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}
                    ],
                }
            ]
        )
    )
    assert problems == []
    assert request["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}}
    ]
    _, problems = chat_to_request(
        chat(
            stream=True,
            user="u1",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "nope", "content": "x"},
            ],
        )
    )
    fields = {p.field: p for p in problems}
    assert set(fields) == {"body.stream", "body.user", "body.messages[0].content[0].image_url"}
    assert "data:" in (fields["body.messages[0].content[0].image_url"].fix or "")


def test_a_tool_answer_without_its_call_is_reported() -> None:
    _, problems = chat_to_request(
        chat(
            messages=[
                {"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "c9", "content": "x"},
            ]
        )
    )
    assert [p.field for p in problems] == ["body.messages[1].tool_call_id"]


def test_pipeline_writes_keyed_lines_without_the_model(tmp_path: Path) -> None:
    prepared = prepare_input(
        [{"custom_id": "a", "body": chat(max_tokens=3)}, {"custom_id": "b", "body": chat()}],
        ADAPTER,
        tmp_path,
    )
    assert prepared.model == MODEL
    lines = [orjson.loads(x) for x in prepared.parts[0].path.read_bytes().splitlines()]
    assert lines[0] == {
        "key": "a",
        "request": {
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "generationConfig": {"maxOutputTokens": 3},
        },
    }
    assert lines[1]["key"] == "b"


def test_one_model_per_batch(tmp_path: Path) -> None:
    from omnibatch import InputValidationError

    with pytest.raises(InputValidationError, match="one model per batch"):
        prepare_input(
            [
                {"custom_id": "a", "body": chat()},
                {"custom_id": "b", "body": {**chat(), "model": "gemini-2.5-pro"}},
            ],
            ADAPTER,
            tmp_path,
        )
    assert ADAPTER.model_of(BatchRequest(custom_id="x", body=chat(model="models/g-1"))) == "g-1"


# --- inline or file --------------------------------------------------------------------------


def _part(tmp_path: Path, count: int = 2) -> Any:
    source = [{"custom_id": f"r{i}", "body": chat(max_tokens=5)} for i in range(count)]
    return prepare_input(source, ADAPTER, tmp_path).parts[0]


def test_small_inputs_go_inline_without_io(tmp_path: Path) -> None:
    part = _part(tmp_path)
    ref, sent = drive(ADAPTER.upload(part), [])
    assert sent == [] and ref.part == part and ref.file_id is None
    assert ref.extra["mode"] == "inline"


def test_large_inputs_are_uploaded_like_the_sdk(tmp_path: Path, monkeypatch: Any) -> None:
    part = _part(tmp_path, count=3)
    data = part.path.read_bytes()
    monkeypatch.setattr(gemini_adapter, "CHUNK_BYTES", 100)  # several chunks from a small file
    adapter = GeminiAdapter(api_key=KEY, options={"inline_max_bytes": 10})
    assert adapter.input_mode(part) == "file"
    url = "http://up.test/upload/v1beta/files?upload_id=U1&upload_protocol=resumable"
    chunks = -(-len(data) // 100)
    answers = [ok({}, headers={"x-goog-upload-url": url, "x-goog-upload-status": "active"})]
    answers += [ok({}, headers={"x-goog-upload-status": "active"})] * (chunks - 1)
    answers.append(
        ok(
            {"file": {"name": "files/abc123xyz", "state": "ACTIVE"}},
            headers={"x-goog-upload-status": "final"},
        )
    )
    ref, sent = drive(adapter.upload(part), answers)
    start, *parts = sent
    recorded = _recorded("files.upload (batch input JSONL from a path")[0]["request"]
    assert (start.method, start.path) == (recorded["method"], recorded["path"])
    for header in ("X-Goog-Upload-Protocol", "X-Goog-Upload-Command"):
        assert start.headers[header] == recorded["headers"][header]
    assert start.headers["X-Goog-Upload-Header-Content-Length"] == str(len(data))
    assert start.json == {
        "file": {"display_name": part.path.name, "mime_type": "jsonl", "size_bytes": len(data)}
    }
    assert start.retry_safe
    assert [p.path for p in parts] == [url] * chunks
    assert b"".join(p.content for p in parts) == data
    assert [p.headers["X-Goog-Upload-Offset"] for p in parts] == [
        str(i * 100) for i in range(chunks)
    ]
    commands = [p.headers["X-Goog-Upload-Command"] for p in parts]
    assert commands == ["upload"] * (chunks - 1) + ["upload, finalize"]
    assert ref.file_id == "files/abc123xyz" and ref.extra["mode"] == "file"


def test_an_upload_that_does_not_finalize_is_an_error(tmp_path: Path) -> None:
    part = _part(tmp_path)
    adapter = GeminiAdapter(api_key=KEY, options={"input_mode": "file"})
    with pytest.raises(ProviderResponseError, match="x-goog-upload-url"):
        drive(adapter.upload(part), [ok({})])
    with pytest.raises(ProviderResponseError, match="did not finalize"):
        drive(
            adapter.upload(part),
            [
                ok({}, headers={"x-goog-upload-url": "http://u.test/x"}),
                ok({}, headers={"x-goog-upload-status": "active"}),
            ],
        )


def test_forced_modes(tmp_path: Path) -> None:
    part = _part(tmp_path)
    assert GeminiAdapter(options={"input_mode": "file"}).input_mode(part) == "file"
    with pytest.raises(ConfigurationError, match="under 10 bytes"):
        GeminiAdapter(options={"input_mode": "inline", "inline_max_bytes": 10}).input_mode(part)
    with pytest.raises(ConfigurationError, match="auto, inline or file"):
        GeminiAdapter(options={"input_mode": "stream"}).input_mode(part)


# --- create and the other flows --------------------------------------------------------------


def test_inline_create_matches_the_sdk_and_carries_the_idempotency_key(tmp_path: Path) -> None:
    part = _part(tmp_path)
    spec = CreateSpec(
        endpoint="/v1/chat/completions",
        model=MODEL,
        metadata={IDEMPOTENCY_KEY: "k-42"},
        options={"display_name": "nightly"},
    )
    created = _recorded("batches.create (inline")[0]
    batch, sent = drive(
        ADAPTER.create(InputRef(part=part), spec), [ok(created["response"]["body"])]
    )
    (request,) = sent
    assert (request.method, request.path) == ("POST", created["request"]["path"])
    assert not request.retry_safe
    body = request.json["batch"]
    assert body["displayName"] == "nightly [omnibatch-key:k-42]"
    items = body["inputConfig"]["requests"]["requests"]
    assert [i["metadata"] for i in items] == [{"key": "r0"}, {"key": "r1"}]
    assert items[0]["request"]["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    assert set(body) == set(created["request"]["body"]["batch"])
    assert batch.id == "batches/inl123abc" and batch.status is BatchStatus.QUEUED


def test_file_create_sends_the_file_name(tmp_path: Path) -> None:
    created = _recorded("batches.create (file source)")[0]
    spec = CreateSpec(endpoint="/v1/chat/completions", model=f"models/{MODEL}")
    batch, sent = drive(
        ADAPTER.create(InputRef(part=_part(tmp_path), file_id="files/abc123xyz"), spec),
        [ok(created["response"]["body"])],
    )
    assert sent[0].path == created["request"]["path"]
    assert (
        sent[0].json["batch"]["inputConfig"] == created["request"]["body"]["batch"]["inputConfig"]
    )
    assert sent[0].json["batch"]["displayName"] == "omnibatch"
    assert batch.request_counts.total == 2 and batch.request_counts.pending == 2


def test_create_without_a_model_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="model"):
        drive(
            ADAPTER.create(
                InputRef(part=None, file_id="files/x"), CreateSpec(endpoint="/v1/chat/completions")
            ),
            [],
        )


def test_retrieve_list_cancel_delete_and_download_paths() -> None:
    pending = _recorded("batches.create (file")[0]["response"]["body"]
    _, sent = drive(ADAPTER.retrieve("fil456def"), [ok(pending)])
    assert sent[0].path == "/v1beta/batches/fil456def"  # a bare id gets its batches/ prefix
    batch, sent = drive(ADAPTER.cancel("batches/fil456def"), [ok({}), ok(pending)])
    assert [(r.method, r.path) for r in sent] == [
        ("POST", "/v1beta/batches/fil456def:cancel"),
        ("GET", "/v1beta/batches/fil456def"),
    ]
    assert sent[0].retry_safe and batch.id == "batches/fil456def"
    _, sent = drive(ADAPTER.delete_batch("batches/x"), [ok({})])
    assert (sent[0].method, sent[0].path) == ("DELETE", "/v1beta/batches/x")
    _, sent = drive(ADAPTER.delete_file("files/in1"), [ok({})])
    assert (sent[0].method, sent[0].path) == ("DELETE", "/v1beta/files/in1")
    download = ADAPTER.download_file("files/batch-fil456def")
    assert download.path == "/download/v1beta/files/batch-fil456def:download"
    assert list(download.params) == [("alt", "media")]
    v1 = GeminiAdapter(api_key=KEY, options={"api_version": "v1"})
    _, sent = drive(v1.retrieve("batches/x"), [ok(pending)])
    assert sent[0].path == "/v1/batches/x"


def test_list_follows_next_page_token() -> None:
    first, second = _recorded("batches.list")
    page, sent = drive(
        ADAPTER.list_batches(cursor=None, limit=1, filters={}), [ok(first["response"]["body"])]
    )
    assert list(sent[0].params) == [tuple(p) for p in first["request"]["query"]]
    assert [b.id for b in page.items] == ["batches/inl123abc"] and page.next_cursor == "tokPage2"
    page, sent = drive(
        ADAPTER.list_batches(cursor="tokPage2", limit=1, filters={}),
        [ok(second["response"]["body"])],
    )
    assert list(sent[0].params) == [tuple(p) for p in second["request"]["query"]]
    assert page.next_cursor is None


def test_an_ambiguous_create_is_reconciled_through_the_display_name(tmp_path: Path) -> None:
    """The core's create_once, with Gemini: the key rides in displayName, so after a 5xx
    the listing finds the batch and nothing is created twice."""
    part = _part(tmp_path)
    listed = operation(
        "BATCH_STATE_PENDING",
        displayName="omnibatch [omnibatch-key:k-7]",
        batchStats={"requestCount": "2"},
    )
    flow = create_once(
        ADAPTER,
        InputRef(part=part),
        CreateSpec(endpoint="/v1/chat/completions", model=MODEL),
        key="k-7",
        since=None,
        policy=RetryPolicy(max_attempts=3),
        rng=random.Random(1),
    )
    create = next(flow)
    assert create.json["batch"]["displayName"] == "omnibatch [omnibatch-key:k-7]"
    pause = flow.throw(ProviderServerError("lost", status_code=502))
    assert isinstance(pause, Sleep)
    listing = flow.send(None)
    assert listing.method == "GET" and listing.path == "/v1beta/batches"
    with pytest.raises(StopIteration) as done:
        flow.send(ok({"operations": [operation("BATCH_STATE_RUNNING"), listed]}))
    assert done.value.value.id == "batches/abc123"
    assert done.value.value.metadata == {IDEMPOTENCY_KEY: "k-7"}


# --- statuses and counts ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", sorted(GeminiAdapter.documented_statuses))
def test_every_documented_state_in_both_spellings_is_mapped(raw: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = ADAPTER.parse_batch(operation(raw, batchStats={"requestCount": "1"}))
    assert batch.status is GEMINI_STATUSES[raw] and batch.provider_status == raw
    twin = raw.replace("JOB_STATE_", "BATCH_STATE_")
    assert GEMINI_STATUSES[twin] is GEMINI_STATUSES[raw]


def test_all_seven_documented_rest_states_in_both_spellings() -> None:
    names = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"]
    expected = [
        BatchStatus.QUEUED,
        BatchStatus.RUNNING,
        BatchStatus.SUCCEEDED,
        BatchStatus.FAILED,
        BatchStatus.CANCELLED,
        BatchStatus.EXPIRED,
    ]
    for prefix in ("BATCH_STATE_", "JOB_STATE_"):
        assert [GEMINI_STATUSES[prefix + n] for n in names] == expected
        assert {prefix + n for n in names} <= DOCUMENTED_STATUSES
        assert GEMINI_STATUSES[prefix + "CANCELLING"] is BatchStatus.CANCELLING
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # unspecified is documented: no warning
            parsed = ADAPTER.parse_batch(operation(prefix + "UNSPECIFIED"))
        assert parsed.status is BatchStatus.UNKNOWN and not parsed.is_terminal


def test_unknown_state_is_unknown_with_a_warning() -> None:
    with pytest.warns(UnknownStatusWarning, match="BATCH_STATE_PAUSED"):
        batch = ADAPTER.parse_batch(operation("BATCH_STATE_PAUSED"))
    assert batch.status is BatchStatus.UNKNOWN


def test_counts_are_int64_strings_and_stopped_batches_count_what_never_ran() -> None:
    running = ADAPTER.parse_batch(
        operation(
            "BATCH_STATE_RUNNING",
            batchStats={
                "requestCount": "10",
                "successfulRequestCount": "4",
                "failedRequestCount": "1",
                "pendingRequestCount": "5",
            },
        )
    )
    c = running.request_counts
    assert (c.total, c.succeeded, c.failed, c.pending) == (10, 4, 1, 5)
    cancelled = ADAPTER.parse_batch(
        operation(
            "BATCH_STATE_CANCELLED",
            batchStats={"requestCount": "10", "successfulRequestCount": "4"},
        )
    )
    assert cancelled.request_counts.cancelled == 6 and cancelled.request_counts.pending == 0
    expired = ADAPTER.parse_batch(operation("JOB_STATE_EXPIRED", batchStats={"requestCount": "3"}))
    assert expired.request_counts.expired == 3 and expired.is_partial
    failed = ADAPTER.parse_batch(
        operation("BATCH_STATE_FAILED", top={"error": {"code": 3, "message": "bad input file"}})
    )
    assert failed.errors[0].message == "bad input file" and failed.errors[0].code == "3"


def test_golden_operations_parse() -> None:
    for entry in _json("sdk-requests", "gemini.json"):
        body = (entry.get("response") or {}).get("body")
        items = body.get("operations", [body]) if isinstance(body, dict) else []
        for item in items:
            if isinstance(item, dict) and str(item.get("name", "")).startswith("batches/"):
                batch = ADAPTER.parse_batch(item)
                assert batch.id == item["name"]
                assert batch.model in {MODEL, "gemini-embedding-001"}
                assert batch.created_at is not None
    done = ADAPTER.parse_batch(_recorded("batches.get (file-based")[0]["response"]["body"])
    assert done.status is BatchStatus.SUCCEEDED and done.output_file_ids == (
        "files/batch-fil456def",
    )
    assert done.request_counts.succeeded == 2 and done.ended_at is not None


# --- results -------------------------------------------------------------------------------


def test_golden_result_file_is_joined_by_key(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(shared_path("specs", "examples", "gemini", "result_file.jsonl").read_bytes())
    results = {
        r.custom_id: r
        for r in iter_batch_results(
            ADAPTER,
            [FetchedSource(RESULTS, path)],
            batch_id="b",
            expected_ids=["request_1", "request_2", "request_3"],
        )
    }
    first = results["request_1"]
    assert first.ok and first.response is not None
    assert first.response["candidates"][0]["content"]["parts"][0]["text"].startswith("AI learns")
    assert first.usage is not None  # thinking tokens are output tokens
    assert (first.usage.input_tokens, first.usage.output_tokens, first.usage.total_tokens) == (
        8,
        840,
        848,
    )
    assert results["request_3"].error.code == "missing_result"  # type: ignore[union-attr]


def test_golden_inline_responses_are_read_from_the_nested_list() -> None:
    raw = _recorded("batches.get (inline job")[0]["response"]["body"]
    batch = ADAPTER.parse_batch(raw)
    sources, _ = drive(ADAPTER.result_sources(batch), [])
    (source,) = sources
    assert source.records is not None and source.download is None
    fetched = [FetchedSource(source, None)]
    results = {r.custom_id: r for r in iter_batch_results(ADAPTER, fetched, batch_id=batch.id)}
    assert set(results) == {"request_1", "request_2"}
    assert results["request_2"].response["responseId"] == "7FFkaJK7EaWOjMcP-LvX2AQ"  # type: ignore[index]


def _inline_batch(state: str, total: int, items: list[dict[str, Any]]) -> Any:
    output = {"inlinedResponses": {"inlinedResponses": items}}
    return ADAPTER.parse_batch(
        operation(state, batchStats={"requestCount": str(total)}, output=output)
    )


def test_inline_responses_are_joined_by_key_whatever_their_order() -> None:
    items = [inline_item(f"k{i}", text=f"answer {i}") for i in range(5)]
    random.Random(3).shuffle(items)
    batch = _inline_batch("BATCH_STATE_SUCCEEDED", 5, items)
    sources, _ = drive(ADAPTER.result_sources(batch), [])
    results = list(
        iter_batch_results(ADAPTER, [FetchedSource(sources[0], None)], batch_id=batch.id)
    )
    for result in results:
        text = result.response["candidates"][0]["content"]["parts"][0]["text"]  # type: ignore[index]
        assert text == f"answer {result.custom_id[1:]}"


@pytest.mark.parametrize(
    ("state", "total", "keys", "message"),
    [
        ("BATCH_STATE_SUCCEEDED", 2, ["a", None], "inline response 2 carries no metadata.key"),
        ("BATCH_STATE_SUCCEEDED", 3, ["a", "b"], "2 inline responses for 3 requests"),
        ("BATCH_STATE_SUCCEEDED", 1, ["a", "b"], "2 inline responses for 1 requests"),
        ("BATCH_STATE_CANCELLED", 1, ["a", "b"], "2 inline responses for 1 requests"),
        ("BATCH_STATE_SUCCEEDED", 2, ["a", "a"], "two inline responses carry the key 'a'"),
    ],
)
def test_inline_responses_never_join_by_position(
    state: str, total: int, keys: list[str | None], message: str
) -> None:
    batch = _inline_batch(state, total, [inline_item(k) for k in keys])
    with pytest.raises(ProviderResponseError, match=re.escape(message)):
        drive(ADAPTER.result_sources(batch), [])


def test_a_cancelled_batch_may_answer_fewer_requests() -> None:
    batch = _inline_batch("BATCH_STATE_CANCELLED", 3, [inline_item("b")])
    assert len(inline_records(batch)) == 1
    sources, _ = drive(ADAPTER.result_sources(batch), [])
    results = {
        r.custom_id: r.status
        for r in iter_batch_results(
            ADAPTER,
            [FetchedSource(sources[0], None)],
            batch_id=batch.id,
            expected_ids=["a", "b", "c"],
            batch_status=batch.status,
        )
    }
    assert results == {
        "a": ResultStatus.CANCELLED,
        "b": ResultStatus.SUCCEEDED,
        "c": ResultStatus.CANCELLED,
    }


def test_an_expired_batch_has_no_results_to_fetch() -> None:
    batch = ADAPTER.parse_batch(operation("BATCH_STATE_EXPIRED", batchStats={"requestCount": "2"}))
    sources, _ = drive(ADAPTER.result_sources(batch), [])
    assert sources == []


@pytest.mark.parametrize(
    ("record", "code", "http"),
    [
        ({"key": "a", "error": {"code": 3, "message": "bad"}}, "3", None),
        (
            {
                "metadata": {"key": "a"},
                "error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"},
            },
            "INVALID_ARGUMENT",
            400,
        ),
        ({"key": "a", "status": {"code": 13, "message": "internal"}}, "13", None),
    ],
)
def test_error_lines_are_errored_results(
    record: dict[str, Any], code: str, http: int | None
) -> None:
    result = ADAPTER.parse_result_line(record, RESULTS)
    assert result.custom_id == "a" and result.status is ResultStatus.ERRORED
    assert result.error is not None and result.error.code == code and result.error.message
    assert result.status_code == http


def test_a_line_without_key_is_a_response_error(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"response": {"candidates": []}}\n')
    with pytest.raises(ProviderResponseError, match="line 1"):
        list(iter_batch_results(ADAPTER, [FetchedSource(RESULTS, path)], batch_id="b"))


def test_auth_and_error_info() -> None:
    assert ADAPTER.auth_headers() == {"x-goog-api-key": KEY}
    assert KEY not in repr(ADAPTER)
    info = ADAPTER.error_info(
        ok(
            {"error": {"code": 401, "message": "API key not valid.", "status": "UNAUTHENTICATED"}},
            401,
        )
    )
    assert (info.message, info.code) == ("API key not valid.", "UNAUTHENTICATED")


# --- docs ----------------------------------------------------------------------------------


def test_the_docs_status_table_matches_the_code() -> None:
    text = (REPO / "docs" / "providers" / "gemini.md").read_text(encoding="utf-8")
    section = text[text.index("## Status mapping") :]
    table = section.split("\n\n")[1]
    rows = dict(re.findall(r"^\|\s*`([^`]+)`\s*\|\s*`([^`]+)`", table, re.M))
    assert rows == {raw: status.value for raw, status in GEMINI_STATUSES.items()}
    assert "UNSPECIFIED" in section  # explained below the table


def test_check_then_encode_translates_each_body_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = gemini_adapter.chat_to_request

    def counting(body: Any) -> Any:
        calls.append(body)
        return real(body)

    monkeypatch.setattr(gemini_adapter, "chat_to_request", counting)
    adapter = GeminiAdapter(api_key=KEY)
    body = chat(max_tokens=5)
    frozen = orjson.dumps(body)
    # As the pipeline builds it: model_construct keeps the body object itself.
    request = BatchRequest.model_construct(
        custom_id="a", method="POST", url="/v1/chat/completions", body=body
    )
    assert adapter.check_request(request) == []
    line = adapter.encode_line("a", "/v1/chat/completions", body)
    assert len(calls) == 1 and line["request"]["generationConfig"] == {"maxOutputTokens": 5}
    other = adapter.encode_line("b", "/v1/chat/completions", chat(max_tokens=6))
    assert other["request"]["generationConfig"] == {"maxOutputTokens": 6}
    assert len(calls) == 2 and orjson.dumps(body) == frozen, "the body must not change"
