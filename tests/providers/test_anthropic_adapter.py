"""The Anthropic adapter without HTTP: translation, flows driven by hand, statuses, and the
real payloads from Anthropic's docs and SDK (../shared/specs)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from omnibatch import (
    BatchStateError,
    BatchStatus,
    ConfigurationError,
    InputValidationError,
    ProviderResponseError,
    ResultStatus,
)
from omnibatch._lifecycle import FetchedSource
from omnibatch._status import UnknownStatusWarning
from omnibatch.adapter import CreateSpec, InputRef, ResultSource
from omnibatch.flows import HttpRequest, HttpResponse
from omnibatch.models import BatchRequest
from omnibatch.pipeline import prepare_input
from omnibatch.results import iter_batch_results
from omnibatch_anthropic.adapter import (
    ANTHROPIC_STATUSES,
    API_VERSION,
    DOCUMENTED_API_VERSION,
    AnthropicAdapter,
)
from omnibatch_anthropic.translate import chat_to_params

from ..conftest import REPO, shared_path

KEY = "sk-ant-test-0123456789"
ADAPTER = AnthropicAdapter(api_key=KEY)
RESULTS = ResultSource("results")


def _json(*parts: str) -> Any:
    return orjson.loads(shared_path("specs", *parts).read_bytes())


def ok(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, orjson.dumps(body))


def drive(flow: Generator[Any, Any, Any], answers: Sequence[HttpResponse]) -> tuple[Any, list[Any]]:
    """Run a flow by hand: every effect is recorded, each request gets the next answer."""
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
    return {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], **extra}


def batch_raw(status: str, **fields: Any) -> dict[str, Any]:
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    counts.update(fields.pop("counts", {}))
    return {
        "id": "msgbatch_01Test",
        "type": "message_batch",
        "processing_status": status,
        "request_counts": counts,
        "created_at": "2024-09-24T18:37:24.100435Z",
        "expires_at": "2024-09-25T18:37:24.100435Z",
        "ended_at": None,
        "cancel_initiated_at": None,
        "results_url": None,
        **fields,
    }


# --- translation -----------------------------------------------------------------------------


def test_system_messages_move_to_system_and_roles_stay() -> None:
    params, problems = chat_to_params(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi!"},
                {"role": "developer", "content": [{"type": "text", "text": "No emojis."}]},
                {"role": "user", "content": "Again"},
            ],
        }
    )
    assert problems == []
    assert params == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": "Be brief.\n\nNo emojis.",
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "Again"},
        ],
    }


def test_max_tokens_is_required_unless_a_default_is_configured() -> None:
    _, problems = chat_to_params(chat())
    assert [(p.field, p.message) for p in problems] == [
        ("body.max_tokens", "Anthropic requires max_tokens on every request")
    ]
    assert "max_tokens" in (problems[0].fix or "")
    params, problems = chat_to_params(chat(), default_max_tokens=256)
    assert problems == [] and params["max_tokens"] == 256
    params, _ = chat_to_params(chat(max_tokens=10, max_completion_tokens=20))
    assert params["max_tokens"] == 20  # the newer OpenAI name wins


def test_sampling_stop_user_and_passthrough_options() -> None:
    params, problems = chat_to_params(
        chat(
            max_tokens=5,
            temperature=0.2,
            top_p=0.9,
            stop="END",
            user="u-1",
            top_k=3,
            n=1,
            stream=False,
        )
    )
    assert problems == []
    assert params["temperature"] == 0.2 and params["top_p"] == 0.9 and params["top_k"] == 3
    assert params["stop_sequences"] == ["END"]
    assert params["metadata"] == {"user_id": "u-1"}
    assert "n" not in params and "stream" not in params


def test_tools_tool_calls_and_tool_results() -> None:
    params, problems = chat_to_params(
        {
            "model": "m",
            "max_tokens": 50,
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "weather",
                        "description": "Weather by city",
                        "parameters": {"type": "object", "properties": {"city": {}}},
                    },
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "parallel_tool_calls": False,
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "c2", "content": "rainy"},
            ],
        }
    )
    assert problems == []
    assert params["tools"] == [
        {
            "name": "weather",
            "description": "Weather by city",
            "input_schema": {"type": "object", "properties": {"city": {}}},
        }
    ]
    assert params["tool_choice"] == {
        "type": "tool",
        "name": "weather",
        "disable_parallel_tool_use": True,
    }
    assert params["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "c2", "name": "weather", "input": {"city": "Rome"}},
    ]
    # Both results in one user turn, right after the assistant's calls.
    assert params["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "c2", "content": "rainy"},
        ],
    }
    assert len(params["messages"]) == 3


def test_images_and_pdfs() -> None:
    params, problems = chat_to_params(
        chat(
            max_tokens=5,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
                        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
                    ],
                }
            ],
        )
    )
    assert problems == []
    assert params["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
        },
    ]


def test_untranslatable_requests_are_reported_with_field_and_fix() -> None:
    _, problems = chat_to_params(
        chat(
            max_tokens=5,
            stream=True,
            n=2,
            temperature=1.5,
            logprobs=True,
            messages=[{"role": "function", "content": "x"}],
        )
    )
    by_field = {p.field: p for p in problems}
    assert set(by_field) == {
        "body.stream",
        "body.n",
        "body.temperature",
        "body.logprobs",
        "body.messages[0].role",
    }
    assert "streaming" in by_field["body.stream"].message
    assert "/v1/messages" in (by_field["body.logprobs"].fix or "")
    assert all(p.fix or p.field == "body.temperature" for p in problems)


def test_check_request_reaches_the_pipeline_with_line_numbers(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [
        {"custom_id": "ok-1", "body": chat(max_tokens=5)},
        {"custom_id": "no-max", "body": chat()},
        {"custom_id": "bad id!", "body": chat(max_tokens=5)},
        {"custom_id": "streams", "body": chat(max_tokens=5, stream=True)},
    ]
    source.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    with pytest.raises(InputValidationError) as caught:
        prepare_input(source, ADAPTER, tmp_path / "work")
    found = {(p.line, p.field) for p in caught.value.problems}
    assert found == {(2, "body.max_tokens"), (3, "custom_id"), (4, "body.stream")}
    assert not list((tmp_path / "work").glob("part-*")), "nothing may be left to upload"


def test_models_may_be_mixed_in_one_batch(tmp_path: Path) -> None:
    source = [
        {"custom_id": "a", "body": chat(max_tokens=5)},
        {"custom_id": "b", "body": {**chat(max_tokens=5), "model": "claude-haiku-4-5"}},
    ]
    prepared = prepare_input(source, ADAPTER, tmp_path)
    assert len(prepared.parts) == 1
    items = [orjson.loads(x) for x in prepared.parts[0].path.read_bytes().splitlines()]
    assert [i["custom_id"] for i in items] == ["a", "b"]
    assert [i["params"]["model"] for i in items] == ["claude-sonnet-4-5", "claude-haiku-4-5"]


def test_native_messages_endpoint_is_sent_as_is() -> None:
    native = {
        "model": "claude-x",
        "system": [{"type": "text", "text": "s"}],
        "messages": [{"role": "user", "content": "hi"}],
        "top_k": 2,
    }
    request = BatchRequest(custom_id="n1", url="/v1/messages", body=native)
    issues = ADAPTER.check_request(request)
    assert [i.field for i in issues] == ["body.max_tokens"]
    with_default = AnthropicAdapter(api_key=KEY, options={"max_tokens": 64})
    assert with_default.check_request(request) == []
    assert with_default.encode_request(request) == {
        "custom_id": "n1",
        "params": {**native, "max_tokens": 64},
    }


def test_a_bad_default_max_tokens_option_is_a_configuration_error() -> None:
    adapter = AnthropicAdapter(api_key=KEY, options={"max_tokens": "lots"})
    with pytest.raises(ConfigurationError, match="max_tokens must be a positive integer"):
        adapter.check_request(BatchRequest(custom_id="x", body=chat()))


# --- credentials ------------------------------------------------------------------------------


def test_headers_match_the_sdk_and_the_documented_style_is_an_option() -> None:
    assert ADAPTER.auth_headers() == {"Authorization": f"Bearer {KEY}"}
    assert ADAPTER.default_headers() == {"anthropic-version": API_VERSION}
    assert API_VERSION == "2026-10-21"
    documented = AnthropicAdapter(
        api_key=KEY, options={"auth_header": "x-api-key", "anthropic_version": "2023-06-01"}
    )
    assert documented.auth_headers() == {"x-api-key": KEY}
    assert documented.default_headers() == {"anthropic-version": DOCUMENTED_API_VERSION}
    assert KEY not in repr(ADAPTER)


def test_headers_and_paths_are_those_the_official_sdk_sends() -> None:
    recorded = _json("sdk-requests", "anthropic.json")
    for entry in recorded:
        headers = entry["request"]["headers"]
        assert headers["anthropic-version"] == ADAPTER.default_headers()["anthropic-version"]
        assert "Authorization" in headers and "x-api-key" not in {h.lower() for h in headers}
    paths = {(e["request"]["method"], e["request"]["path"]) for e in recorded}
    bid = "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d"
    _, sent = drive(ADAPTER.retrieve(bid), [ok(batch_raw("in_progress", id=bid))])
    _, cancel = drive(ADAPTER.cancel(bid), [ok(batch_raw("canceling", id=bid))])
    _, delete = drive(ADAPTER.delete_batch(bid), [ok({"id": bid, "type": "message_batch_deleted"})])
    _, listing = drive(
        ADAPTER.list_batches(cursor=None, limit=2, filters={}),
        [ok({"data": [], "has_more": False, "first_id": None, "last_id": None})],
    )
    ours = {(r.method, r.path) for r in [*sent, *cancel, *delete, *listing]}
    assert ours <= paths, ours - paths


# --- flows ---------------------------------------------------------------------------------


def test_upload_does_no_io_and_create_sends_the_part_inline(tmp_path: Path) -> None:
    source = [
        {
            "custom_id": "my-first-request",
            "body": {
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": "Hello, world"}],
            },
        },
        {
            "custom_id": "my-second-request",
            "body": {
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": "Hi again, friend"}],
            },
        },
    ]
    part = prepare_input(source, ADAPTER, tmp_path).parts[0]
    ref, effects = drive(ADAPTER.upload(part), [])
    assert effects == [] and ref == InputRef(part=part)
    created = _json("examples", "anthropic", "batch_created_in_progress.json")
    batch, sent = drive(
        ADAPTER.create(ref, CreateSpec(endpoint="/v1/chat/completions")), [ok(created)]
    )
    (request,) = sent
    assert (request.method, request.path) == ("POST", "/v1/messages/batches")
    assert request.headers["Content-Type"] == "application/json"
    assert not request.retry_safe, "a create is never resent blindly"
    # Exactly the docs' create body (same requests, same order).
    assert orjson.loads(request.content) == _json("examples", "anthropic", "create_request.json")
    assert batch.id == created["id"] and batch.status is BatchStatus.RUNNING
    assert batch.request_counts.total == 2 and batch.request_counts.pending == 2


def test_create_from_a_file_id_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="inline"):
        drive(
            ADAPTER.create(
                InputRef(part=None, file_id="file-1"), CreateSpec(endpoint="/v1/chat/completions")
            ),
            [],
        )


def test_list_pages_with_after_id_and_clamps_the_limit() -> None:
    recorded = _json("sdk-requests", "anthropic.json")
    first, second = (e for e in recorded if e["operation"].startswith("messages.batches.list"))
    page, sent = drive(
        ADAPTER.list_batches(cursor=None, limit=2, filters={}), [ok(first["response"]["body"])]
    )
    assert list(sent[0].params) == [("limit", "2")]
    assert [b.id for b in page.items] == [
        "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d",
        "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF",
    ]
    assert page.next_cursor == first["response"]["body"]["last_id"]
    page2, sent2 = drive(
        ADAPTER.list_batches(cursor=page.next_cursor, limit=2, filters={}),
        [ok(second["response"]["body"])],
    )
    assert [tuple(p) for p in sent2[0].params] == [tuple(p) for p in second["request"]["query"]]
    assert page2.next_cursor is None
    _, sent3 = drive(
        ADAPTER.list_batches(cursor=None, limit=5000, filters={}),
        [ok({"data": [], "has_more": False})],
    )
    assert list(sent3[0].params) == [("limit", "1000")]


def test_cancel_and_delete() -> None:
    canceling = _json("examples", "anthropic", "batch_canceling.json")
    batch, sent = drive(ADAPTER.cancel(canceling["id"]), [ok(canceling)])
    assert sent[0].method == "POST" and sent[0].path.endswith("/cancel") and sent[0].retry_safe
    assert batch.status is BatchStatus.CANCELLING
    assert batch.cancel_requested_at is not None
    _, sent = drive(ADAPTER.delete_batch("msgbatch_1"), [ok({})])
    assert (sent[0].method, sent[0].path) == ("DELETE", "/v1/messages/batches/msgbatch_1")


def test_results_come_from_results_url_verbatim() -> None:
    url = "https://elsewhere.test/v1/messages/batches/msgbatch_01Test/results"
    batch = ADAPTER.parse_batch(batch_raw("ended", results_url=url, counts={"succeeded": 1}))
    sources, _ = drive(ADAPTER.result_sources(batch), [])
    (source,) = sources
    assert source.kind == "results" and source.download is not None
    assert source.download.path == url and source.download.method == "GET"


def test_an_ended_batch_without_results_url_is_an_error_and_archived_is_explained() -> None:
    batch = ADAPTER.parse_batch(batch_raw("ended", counts={"succeeded": 1}))
    with pytest.raises(ProviderResponseError, match="no results_url"):
        drive(ADAPTER.result_sources(batch), [])
    archived = ADAPTER.parse_batch(
        batch_raw("ended", counts={"succeeded": 1}, archived_at="2024-10-23T18:37:24Z")
    )
    with pytest.raises(BatchStateError, match="archived"):
        drive(ADAPTER.result_sources(archived), [])


# --- statuses and counts ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", sorted(AnthropicAdapter.documented_statuses))
def test_every_documented_status_is_mapped(raw: str) -> None:
    assert raw in ANTHROPIC_STATUSES
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = ADAPTER.parse_batch(batch_raw(raw, counts={"succeeded": 1}))
    assert batch.status is ANTHROPIC_STATUSES[raw] and batch.provider_status == raw


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"counts": {"succeeded": 3}}, BatchStatus.SUCCEEDED),
        ({"counts": {"succeeded": 1, "expired": 2}}, BatchStatus.EXPIRED),
        (
            {
                "counts": {"succeeded": 1, "canceled": 2},
                "cancel_initiated_at": "2024-09-24T18:39:03Z",
            },
            BatchStatus.CANCELLED,
        ),
        # A cancel that came too late to stop anything is still a cancelled batch.
        (
            {"counts": {"succeeded": 3}, "cancel_initiated_at": "2024-09-24T18:39:03Z"},
            BatchStatus.CANCELLED,
        ),
        # Cancel wins over expiry.
        (
            {
                "counts": {"expired": 1, "canceled": 1},
                "cancel_initiated_at": "2024-09-24T18:39:03Z",
            },
            BatchStatus.CANCELLED,
        ),
        # Every request errored: the batch still succeeded; the counts tell the truth.
        ({"counts": {"errored": 3}}, BatchStatus.SUCCEEDED),
    ],
)
def test_ended_is_resolved_from_cancel_and_counts(
    fields: dict[str, Any], status: BatchStatus
) -> None:
    batch = ADAPTER.parse_batch(batch_raw("ended", **fields))
    assert batch.status is status and batch.provider_status == "ended"
    assert batch.is_terminal


def test_counts_are_normalized_and_all_errored_is_partial_not_collapsed() -> None:
    batch = ADAPTER.parse_batch(batch_raw("ended", counts={"errored": 3}))
    counts = batch.request_counts
    assert (counts.total, counts.succeeded, counts.failed, counts.pending) == (3, 0, 3, 0)
    assert batch.is_partial
    ended = ADAPTER.parse_batch(
        batch_raw(
            "ended",
            counts={"succeeded": 5, "errored": 1, "canceled": 2, "expired": 3},
            cancel_initiated_at="2024-09-24T18:39:03Z",
        )
    )
    c = ended.request_counts
    assert (c.total, c.succeeded, c.failed, c.cancelled, c.expired) == (11, 5, 1, 2, 3)
    running = ADAPTER.parse_batch(batch_raw("in_progress", counts={"processing": 7}))
    assert running.request_counts.total == 7 and running.request_counts.pending == 7


def test_unknown_status_is_unknown_with_a_warning() -> None:
    with pytest.warns(UnknownStatusWarning, match="paused"):
        batch = ADAPTER.parse_batch(batch_raw("paused"))
    assert batch.status is BatchStatus.UNKNOWN and not batch.is_terminal


def test_a_batch_without_id_is_a_response_error() -> None:
    with pytest.raises(ProviderResponseError):
        ADAPTER.parse_batch({"processing_status": "ended"})


# --- golden payloads -------------------------------------------------------------------------


def test_golden_batch_objects_parse() -> None:
    reference = ADAPTER.parse_batch(
        _json("examples", "anthropic", "batch_api_reference_example.json")
    )
    assert reference.status is BatchStatus.RUNNING  # the example says in_progress
    assert reference.request_counts.total == 200
    assert reference.request_counts.pending == 100
    canceling = ADAPTER.parse_batch(_json("examples", "anthropic", "batch_canceling.json"))
    assert canceling.status is BatchStatus.CANCELLING
    assert canceling.cancel_requested_at is not None and canceling.ended_at is None
    assert canceling.expires_at is not None and canceling.created_at is not None
    for entry in _json("sdk-requests", "anthropic.json"):
        body = entry["response"]["body"]
        items = body.get("data") if isinstance(body, dict) and "data" in body else [body]
        for item in items:
            if isinstance(item, dict) and item.get("type") == "message_batch":
                parsed = ADAPTER.parse_batch(item)
                assert parsed.id == item["id"]
                if item["processing_status"] == "ended":
                    assert parsed.status is BatchStatus.SUCCEEDED


def test_golden_results_parse_and_join_by_custom_id(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(shared_path("specs", "examples", "anthropic", "results.jsonl").read_bytes())
    results = list(
        iter_batch_results(
            ADAPTER,
            [FetchedSource(RESULTS, path)],
            batch_id="msgbatch_x",
            expected_ids=["my-first-request", "my-second-request", "never-answered"],
        )
    )
    by_id = {r.custom_id: r for r in results}
    first = by_id["my-first-request"]
    assert first.status is ResultStatus.SUCCEEDED and first.status_code == 200
    assert first.response is not None and first.response["id"] == "msg_01FqfsLoHwgeFbguDgpz48m7"
    assert first.usage is not None
    assert (first.usage.input_tokens, first.usage.output_tokens, first.usage.total_tokens) == (
        10,
        34,
        44,
    )
    assert by_id["my-second-request"].usage.output_tokens == 36  # type: ignore[union-attr]
    assert by_id["never-answered"].error.code == "missing_result"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("result", "status", "code", "http"),
    [
        (
            {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "max_tokens: Field required",
                    },
                    "request_id": "req_1",
                },
            },
            ResultStatus.ERRORED,
            "invalid_request_error",
            400,
        ),
        (
            {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "Overloaded"},
                },
            },
            ResultStatus.ERRORED,
            "overloaded_error",
            529,
        ),
        ({"type": "canceled"}, ResultStatus.CANCELLED, "canceled", None),
        ({"type": "expired"}, ResultStatus.EXPIRED, "expired", None),
    ],
)
def test_every_result_type_is_normalized(
    result: dict[str, Any], status: ResultStatus, code: str, http: int | None
) -> None:
    parsed = ADAPTER.parse_result_line({"custom_id": "r1", "result": result}, RESULTS)
    assert parsed.status is status and parsed.status_code == http
    assert parsed.error is not None and parsed.error.code == code and parsed.error.message
    assert parsed.to_output_line()["status"] == status.value


def test_message_usage_counts_cache_tokens_as_input() -> None:
    parsed = ADAPTER.parse_result_line(
        {
            "custom_id": "r",
            "result": {
                "type": "succeeded",
                "message": {
                    "id": "m",
                    "usage": {
                        "input_tokens": 3,
                        "cache_read_input_tokens": 100,
                        "cache_creation_input_tokens": 20,
                        "output_tokens": 7,
                    },
                },
            },
        },
        RESULTS,
    )
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens, parsed.usage.total_tokens) == (
        123,
        7,
        130,
    )


def test_an_unknown_result_type_is_a_response_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(
        b'{"custom_id":"a","result":{"type":"succeeded","message":{}}}\n'
        b'{"custom_id":"b","result":{"type":"vanished"}}\n'
    )
    with pytest.raises(ProviderResponseError, match=r"line 2: .*vanished"):
        list(iter_batch_results(ADAPTER, [FetchedSource(RESULTS, path)], batch_id="x"))


def test_error_info_takes_the_request_id_from_the_body() -> None:
    body = {
        "type": "error",
        "error": {"type": "not_found_error", "message": "no such batch"},
        "request_id": "req_0123",
    }
    info = ADAPTER.error_info(ok(body, 404))
    assert (info.message, info.code, info.request_id) == (
        "no such batch",
        "not_found_error",
        "req_0123",
    )


# --- docs ----------------------------------------------------------------------------------


def test_the_docs_status_table_matches_the_code() -> None:
    text = (REPO / "docs" / "providers" / "anthropic.md").read_text(encoding="utf-8")
    section = text[text.index("## Status mapping") :]
    rows = dict(re.findall(r"^\|\s*`([^`]+)`\s*\|\s*`([^`]+)`", section.split("\n\n")[1], re.M))
    assert rows == {raw: status.value for raw, status in ANTHROPIC_STATUSES.items()}
    # The ended resolution table lists the three outcomes resolve_status can give.
    assert {"`succeeded`", "`expired`", "`cancelled`"} <= set(re.findall(r"`\w+`", section))


def test_check_then_encode_translates_each_body_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import omnibatch_anthropic.adapter as module

    calls = []
    real = module.chat_to_params

    def counting(body: Any, default: Any = None) -> Any:
        calls.append(body)
        return real(body, default)

    monkeypatch.setattr(module, "chat_to_params", counting)
    adapter = AnthropicAdapter(api_key=KEY)
    body = chat(max_tokens=5)
    frozen = orjson.dumps(body)
    # As the pipeline builds it: model_construct keeps the body object itself.
    request = BatchRequest.model_construct(
        custom_id="a", method="POST", url="/v1/chat/completions", body=body
    )
    assert adapter.check_request(request) == []
    first = adapter.encode_line("a", "/v1/chat/completions", body)
    assert len(calls) == 1 and first["params"]["max_tokens"] == 5
    other = chat(max_tokens=6)  # a different body is translated, not taken from the memo
    assert adapter.encode_line("b", "/v1/chat/completions", other)["params"]["max_tokens"] == 6
    assert len(calls) == 2 and orjson.dumps(body) == frozen, "the body must not change"
