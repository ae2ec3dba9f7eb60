"""The merge's fast result conversion gives exactly what the models give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from omnibatch._answers import normalize_line
from omnibatch.adapter import ProviderAdapter, ResultSource
from omnibatch.results import complete_result
from omnibatch_mistral.adapter import MistralAdapter
from omnibatch_openai.adapter import OpenAIAdapter

from ..conftest import shared_path
from ._gen import result

SOURCE = ResultSource("output", name="output file")
ADAPTERS = [OpenAIAdapter(api_key="k"), MistralAdapter(api_key="k")]

VARIANTS: list[dict[str, Any]] = [
    result("ok"),
    result("failed", ok=False),
    result("expired", ok=False, code="batch_expired"),
    result("cancelled", ok=False, code="batch_cancelled"),
    {
        "custom_id": "http",
        "response": {
            "status_code": 429,
            "body": {
                "error": {
                    "message": "slow down",
                    "type": "rate_limit",
                    "code": "rate_limit_exceeded",
                }
            },
        },
        "error": None,
    },
    {"custom_id": "http-bare", "response": {"status_code": 500, "body": {}}, "error": None},
    {"custom_id": "string-error", "error": "it broke", "response": None},
    {"custom_id": "no-body", "response": {"status_code": 200}, "error": None},
    {
        "custom_id": "err-with-body",
        "error": {"message": "m"},
        "response": {"status_code": 400, "body": {"x": 1}},
    },
]


def examples() -> list[dict[str, Any]]:
    records = list(VARIANTS)
    for provider, name in [
        ("openai", "batch_output_guide.jsonl"),
        ("openai", "batch_output_spec_example.jsonl"),
        ("openai", "batch_error_expired_guide.jsonl"),
        ("mistral", "batch_output.jsonl"),
        ("mistral", "sdk_test_output_lines.jsonl"),
    ]:
        path = Path("specs", "examples", provider, name)
        records.extend(
            orjson.loads(line)
            for line in shared_path(*path.parts).read_bytes().splitlines()
            if line.strip()
        )
    return records


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_output_line_matches_parse_result_line(adapter: ProviderAdapter) -> None:
    for record in examples():
        try:
            parsed = adapter.parse_result_line(record, SOURCE)
        except (KeyError, TypeError, ValueError):
            with pytest.raises((KeyError, TypeError, ValueError)):
                adapter.output_line(record, SOURCE)
            continue
        # The merge normalizes the adapter's line; results() completes the parsed result.
        expected = complete_result(parsed, adapter.read_answer).to_output_line()
        line = normalize_line(adapter.output_line(record, SOURCE), adapter.read_answer)
        assert line == expected, record


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_encode_line_matches_encode_request(adapter: ProviderAdapter) -> None:
    from omnibatch.models import BatchRequest

    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    line = adapter.encode_line("c-1", "/v1/chat/completions", body)
    assert line == adapter.encode_request(
        BatchRequest(custom_id="c-1", url="/v1/chat/completions", body=body)
    )
    assert body["model"] == "m", "encode_line must not change the body it was given"


EDGES: list[dict[str, Any]] = [
    {"custom_id": "s-str", "response": {"status_code": "200", "body": {"a": 1}}, "error": None},
    {"custom_id": "s-bool", "response": {"status_code": True, "body": {"a": 1}}, "error": None},
    {"custom_id": "s-399", "response": {"status_code": 399, "body": {"a": 1}}, "error": None},
    {"custom_id": "s-400", "response": {"status_code": 400, "body": {"a": 1}}, "error": None},
    {"custom_id": "s-none", "response": {"body": {"a": 1}}, "error": None},
    {"custom_id": "body-list", "response": {"status_code": 200, "body": [1]}, "error": None},
    {"custom_id": "body-none", "response": {"status_code": 200, "body": None}},
    {"custom_id": "empty-error", "response": {"status_code": 200, "body": {}}, "error": {}},
    {"custom_id": "false-error", "response": {"status_code": 200, "body": {}}, "error": ""},
    {"custom_id": 7, "response": {"status_code": 200, "body": {}}, "error": None},
    {"response": {"status_code": 200, "body": {}}, "error": None},
    {"custom_id": "resp-list", "response": [], "error": None},
    {"custom_id": "resp-none", "response": None, "error": None},
]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_the_fast_success_path_writes_the_same_bytes(adapter: ProviderAdapter) -> None:
    """``output_line`` reads a plain success without ``_read``: for every example the bytes
    written are those of the general path (or both raise)."""
    from omnibatch import _openai_lines as lines
    from omnibatch_mistral import adapter as mistral

    read = adapter.facts.read_line if isinstance(adapter, OpenAIAdapter) else mistral._read
    for record in [*examples(), *EDGES]:
        try:
            general = orjson.dumps(lines.output_line(read(record)))
        except (KeyError, TypeError, ValueError):
            with pytest.raises((KeyError, TypeError, ValueError)):
                adapter.output_line(record, SOURCE)
            continue
        assert orjson.dumps(adapter.output_line(record, SOURCE)) == general, record


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_the_quick_normalizer_writes_what_the_general_one_does(adapter: ProviderAdapter) -> None:
    """The merge normalizes the usual chat success in one step: the same line as
    ``normalize_line`` for every golden payload and edge case."""
    from omnibatch._answers import line_normalizer

    quick = line_normalizer(adapter.read_answer)
    extra = [
        {"custom_id": "d", "response": {"status_code": 200, "body": body}}
        for body in (
            {
                "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": 3,
                    "completion_tokens": 2,
                    "prompt_tokens_details": {"cached_tokens": 1},
                    "completion_tokens_details": {"reasoning_tokens": 1},
                },
            },
            {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "3"}},
            {"choices": [{"message": {"content": None, "tool_calls": []}}], "usage": {}},
        )
    ]
    for record in [*examples(), *EDGES, *extra]:
        try:
            line = adapter.output_line(record, SOURCE)
        except (KeyError, TypeError, ValueError):
            continue
        assert quick(line) == normalize_line(line, adapter.read_answer), record
