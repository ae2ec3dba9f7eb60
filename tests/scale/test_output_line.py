"""The merge's fast result conversion gives exactly what the models give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from omnibatch.adapter import ProviderAdapter, ResultSource
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
            expected = adapter.parse_result_line(record, SOURCE).to_output_line()
        except (KeyError, TypeError, ValueError):
            with pytest.raises((KeyError, TypeError, ValueError)):
                adapter.output_line(record, SOURCE)
            continue
        assert adapter.output_line(record, SOURCE) == expected, record


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_encode_line_matches_encode_request(adapter: ProviderAdapter) -> None:
    from omnibatch.models import BatchRequest

    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    line = adapter.encode_line("c-1", "/v1/chat/completions", body)
    assert line == adapter.encode_request(
        BatchRequest(custom_id="c-1", url="/v1/chat/completions", body=body)
    )
    assert body["model"] == "m", "encode_line must not change the body it was given"
