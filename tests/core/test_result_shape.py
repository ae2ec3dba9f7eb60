"""One result shape on every provider: the same job, run on every registered built-in provider over
the emulator, gives OUTPUT lines and ``BatchResult`` s with the same keys and the same types, line
by line; ``--format openai`` lines validate with the openai SDK's own types on every provider."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from omnibatch import BatchClient
from omnibatch._answers import (
    ERROR_KINDS,
    FINISH_REASONS,
    candidates_answer,
    chat_answer,
    messages_answer,
    normalize_line,
    openai_line,
)
from omnibatch._http import RetryPolicy
from omnibatch._lifecycle import PollPolicy
from omnibatch._plugins import get_registry
from omnibatch.config import FileConfig, ProviderSettings
from omnibatch.emulator import ERROR_MARKER, Emulator, ManualClock
from omnibatch.jobs import JobOptions, JobRunner
from omnibatch.ledger import Ledger
from omnibatch.results import OutputSummary

BUILTINS = sorted(name for name, entry in get_registry().providers.items() if entry.origin.builtin)
# Known where the provider says so, None where it does not: the one documented exception.
NULLABLE_USAGE = {"cached_input_tokens", "reasoning_tokens"}


def requests(model: str = "some-model") -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "max_tokens": 40,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": f"Question {i}?"},
                ],
            },
        }
        for i in range(4)
    ]
    lines[2]["body"]["messages"][1]["content"] = "fail " + ERROR_MARKER.decode()
    return lines


def write_input(path: Path, model: str = "some-model") -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in requests(model)))
    return path


def run_job(provider: str, tmp: Path, output_format: str = "omnibatch") -> list[dict[str, Any]]:
    """The job through the job runner (the merge's path), OUTPUT read back by custom id order."""
    return run_job_summary(provider, tmp, output_format)[0]


def run_job_summary(
    provider: str, tmp: Path, output_format: str = "omnibatch", *, model: str = "some-model"
) -> tuple[list[dict[str, Any]], OutputSummary]:
    """:func:`run_job`, with the summary of what the merge wrote."""
    emulator = Emulator(clock=ManualClock(start=time.time()))
    clock = emulator.clock
    assert isinstance(clock, ManualClock)
    adapter_cls = get_registry().provider(provider)
    prefix = adapter_cls.emulator_prefix
    ledger = Ledger(tmp / provider / "home")
    runner = JobRunner(
        ledger,
        config=FileConfig(),
        transport=emulator.transport(),
        poll=PollPolicy(initial=1.0, multiplier=1.0, maximum=1.0, max_consecutive_errors=3),
        retry=RetryPolicy(initial_delay=0.0, max_delay=0.0),
        clock=clock.now,
        sleep=clock.advance,
    )
    out = tmp / provider / f"out-{output_format}.jsonl"
    try:
        result = runner.run(
            write_input(tmp / f"in-{provider}.jsonl", model),
            out,
            ProviderSettings(
                provider,
                "http://emulator" + prefix,
                "k",
                options=dict(adapter_cls.emulator_options),  # an emulator's placeholders
                sources={"api_key": "test"},
            ),
            JobOptions(),
            format=output_format,
        )
    finally:
        runner.close()
        ledger.close()
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert result.summary is not None
    return sorted(lines, key=lambda line: str(line["custom_id"])), result.summary


def client_lines(provider: str) -> list[dict[str, Any]]:
    """The same job through ``BatchClient.results()``: each result's output line."""
    emulator = Emulator(clock=ManualClock())
    adapter_cls = get_registry().provider(provider)
    with BatchClient(
        provider,
        api_key="k",
        base_url="http://e" + adapter_cls.emulator_prefix,
        options=dict(adapter_cls.emulator_options),
        transport=emulator.transport(),
        sleep=emulator.advance,
    ) as client:
        batch = client.wait(client.submit(requests()).id)
        results = sorted(client.results(batch.id), key=lambda r: r.custom_id)
    for result in results:
        assert result.to_output_line()["text"] == result.text
    return [result.to_output_line() for result in results]


def shape(value: Any, path: str = "") -> Any:
    """Keys and types, recursively through dicts (the response body is the provider's own)."""
    if path == ".response":
        # The provider's own body, untouched: an errored request has one on some providers.
        assert value is None or isinstance(value, dict)
        return "body"
    if isinstance(value, dict):
        return {key: shape(item, f"{path}.{key}") for key, item in value.items()}
    if path.startswith(".usage.") and path[len(".usage.") :] in NULLABLE_USAGE:
        return "int|None" if value is None or isinstance(value, int) else type(value).__name__
    if isinstance(value, list):
        return ["list", *(shape(item, f"{path}[]") for item in value[:1])]
    return type(value).__name__


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("shape")
    return {provider: run_job(provider, tmp) for provider in BUILTINS}


def test_every_builtin_provider_is_covered() -> None:
    assert {"openai", "mistral", "anthropic", "gemini"} <= set(BUILTINS)


def test_the_same_job_gives_the_same_shape_on_every_provider(
    outputs: dict[str, list[dict[str, Any]]],
) -> None:
    reference = outputs["openai"]
    assert [line["custom_id"] for line in reference] == ["q0", "q1", "q2", "q3"]
    for provider, lines in outputs.items():
        assert len(lines) == len(reference), provider
        for ours, theirs in zip(lines, reference, strict=True):
            assert list(ours) == list(theirs), (provider, ours["custom_id"])
            assert shape(ours) == shape(theirs), (provider, ours, theirs)


@pytest.mark.parametrize("provider", BUILTINS)
def test_the_normalized_values_mean_the_same_on_every_provider(
    provider: str, outputs: dict[str, list[dict[str, Any]]]
) -> None:
    for line in outputs[provider]:
        if line["custom_id"] == "q2":
            assert line["status"] == "errored"
            assert line["text"] is None and line["usage"] is None
            assert line["error"]["kind"] == "invalid_request", line["error"]
            assert line["error"]["kind"] in ERROR_KINDS and line["error"]["message"]
            continue
        assert line["status"] == "succeeded" and line["error"] is None
        assert isinstance(line["text"], str) and line["text"]
        assert line["finish_reason"] in FINISH_REASONS
        assert line["provider_finish_reason"] is not None
        assert line["tool_calls"] == []
        usage = line["usage"]
        assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0, usage
        assert isinstance(line["response"], dict)


@pytest.mark.parametrize("provider", BUILTINS)
def test_batch_results_carry_the_lines_the_merge_writes(
    provider: str, outputs: dict[str, list[dict[str, Any]]]
) -> None:
    from_client = client_lines(provider)
    merged = outputs[provider]
    for ours, theirs in zip(from_client, merged, strict=True):
        assert shape(ours) == shape(theirs)
        for key in ("custom_id", "status", "text", "finish_reason", "tool_calls", "usage"):
            assert ours[key] == theirs[key], (provider, key)


@pytest.mark.parametrize("provider", BUILTINS)
def test_openai_format_validates_with_the_openai_sdk(provider: str, tmp_path: Path) -> None:
    lines = run_job(provider, tmp_path, "openai")
    assert [line["custom_id"] for line in lines] == ["q0", "q1", "q2", "q3"]
    for line in lines:
        assert set(line) == {"id", "custom_id", "response", "error"}
        if line["custom_id"] == "q2":
            response = line["response"]
            failed = response is not None and response["status_code"] >= 400
            assert failed or line["error"]["message"], line
            continue
        assert line["error"] is None and line["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(line["response"]["body"])
        assert completion.object == "chat.completion"
        assert completion.choices[0].message.content
        assert completion.usage is not None and completion.usage.completion_tokens > 0


# --- the readers, on bodies the emulator does not produce ----------------------------------------


def test_tool_calls_come_out_in_openai_shape_from_every_body() -> None:
    anthropic = messages_answer(
        {
            "type": "message",
            "model": "claude-haiku-4-5",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 5, "cache_read_input_tokens": 7, "output_tokens": 3},
        }
    )
    gemini = candidates_answer(
        {
            "candidates": [
                {
                    "content": {
                        "parts": [{"functionCall": {"name": "lookup", "args": {"q": "x"}}}]
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 12,
                "candidatesTokenCount": 3,
                "thoughtsTokenCount": 4,
                "cachedContentTokenCount": 2,
            },
            "modelVersion": "gemini-2.5-flash",
        }
    )
    call = {"type": "function", "function": {"name": "lookup", "arguments": '{"q":"x"}'}}
    assert anthropic["tool_calls"] == [{"id": "toolu_1", **call}]
    assert anthropic["finish_reason"] == "tool_calls" and anthropic["text"] == "Let me look."
    assert anthropic["usage"] == {
        "input_tokens": 12,
        "output_tokens": 3,
        "cached_input_tokens": 7,
        "reasoning_tokens": None,
    }
    assert gemini["tool_calls"] == [{"id": "call_0", **call}]
    assert gemini["finish_reason"] == "tool_calls" and gemini["provider_finish_reason"] == "STOP"
    assert gemini["usage"] == {
        "input_tokens": 12,
        "output_tokens": 7,
        "cached_input_tokens": 2,
        "reasoning_tokens": 4,
    }
    assert gemini["model"] == "gemini-2.5-flash"


@pytest.mark.parametrize(
    ("reader", "raw", "normalized"),
    [
        (chat_answer, "length", "length"),
        (chat_answer, "model_length", "length"),
        (chat_answer, "content_filter", "content_filter"),
        (chat_answer, "something_new", "other"),
        (messages_answer, "max_tokens", "length"),
        (messages_answer, "end_turn", "stop"),
        (messages_answer, "refusal", "content_filter"),
        (candidates_answer, "SAFETY", "content_filter"),
        (candidates_answer, "MAX_TOKENS", "length"),
        (candidates_answer, "MALFORMED_FUNCTION_CALL", "error"),
    ],
)
def test_finish_reasons_are_normalized_with_the_raw_kept(
    reader: Any, raw: str, normalized: str
) -> None:
    body: dict[str, Any] = {
        chat_answer: {"choices": [{"message": {"content": "x"}, "finish_reason": raw}]},
        messages_answer: {"content": [{"type": "text", "text": "x"}], "stop_reason": raw},
        candidates_answer: {"candidates": [{"content": {"parts": []}, "finishReason": raw}]},
    }[reader]
    answer = reader(body)
    assert (answer["finish_reason"], answer["provider_finish_reason"]) == (normalized, raw)


def embedding_lines() -> Iterator[tuple[Any, dict[str, Any]]]:
    yield (
        chat_answer,
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        },
    )
    yield candidates_answer, {"embedding": {"values": [0.5, -0.25]}, "tokenCount": "3"}


@pytest.mark.parametrize(("reader", "body"), list(embedding_lines()))
def test_embeddings_get_the_vector_and_translate_to_openai(reader: Any, body: Any) -> None:
    line = normalize_line({"custom_id": "e1", "status": "succeeded", "response": body}, reader)
    assert "text" not in line and line["embedding"] == [0.5, -0.25]
    assert line["usage"]["input_tokens"] == 3 and line["usage"]["output_tokens"] == 0
    converted = openai_line(line, created=1)
    embeddings = CreateEmbeddingResponse.model_validate(converted["response"]["body"])
    assert embeddings.data[0].embedding == [0.5, -0.25]


def test_lines_that_never_ran_translate_as_openai_writes_them() -> None:
    line = normalize_line(
        {"custom_id": "x", "status": "expired", "error": {"code": "expired", "message": "late"}},
        chat_answer,
    )
    assert line["error"] == {"kind": "expired", "message": "late", "code": "expired"}
    assert openai_line(line, created=1) == {
        "id": "batch_req_x",
        "custom_id": "x",
        "response": None,
        "error": {"code": "batch_expired", "message": "late"},
    }
