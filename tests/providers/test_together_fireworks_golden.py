"""Together's and Fireworks' published example payloads (../shared/specs/examples) through the
adapters and the emulator dialects."""

from __future__ import annotations

import json
from typing import Any

from omnibatch import BatchRequest, ResultStatus
from omnibatch._answers import line_normalizer
from omnibatch.adapter import ResultSource
from omnibatch.emulator.engine import StoredFile
from omnibatch.results import complete_result
from omnibatch_fireworks.adapter import FireworksAdapter
from omnibatch_fireworks.dialect import parse_dataset
from omnibatch_together.adapter import TogetherAdapter
from omnibatch_together.dialect import parse_input

from ..conftest import shared_path

TOGETHER = TogetherAdapter(api_key="k")
FIREWORKS = FireworksAdapter(api_key="k", options={"account_id": "a"})


def _raw(*parts: str) -> bytes:
    return shared_path("specs", "examples", *parts).read_bytes()


def _lines(*parts: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _raw(*parts).splitlines() if line.strip()]


def _stored(data: bytes, purpose: str) -> StoredFile:
    return StoredFile("f", data, purpose, "in.jsonl", 0.0, "x")


def test_together_output_lines() -> None:
    (line,) = _lines("together", "batch_output.jsonl")
    source = ResultSource("output")
    result = complete_result(TOGETHER.parse_result_line(line, source), TOGETHER.read_answer)
    assert result.status is ResultStatus.SUCCEEDED and result.custom_id == "request-1"
    assert result.usage is not None and result.usage.input_tokens == 12
    assert result.text == "Hello!" and result.finish_reason is not None
    normalize = line_normalizer(TOGETHER.read_answer)
    assert normalize(TOGETHER.output_line(line, source)) == result.to_output_line()


def test_together_error_lines() -> None:
    source = ResultSource("error")
    results = [
        TOGETHER.parse_result_line(x, source) for x in _lines("together", "batch_error.jsonl")
    ]
    assert [(r.custom_id, r.status) for r in results] == [
        ("req-1", ResultStatus.ERRORED),
        ("req-5", ResultStatus.ERRORED),
    ]
    assert results[0].error is not None and results[0].error.code == "invalid_model"
    normalize = line_normalizer(TOGETHER.read_answer)
    for line, result in zip(_lines("together", "batch_error.jsonl"), results, strict=True):
        whole = complete_result(result, TOGETHER.read_answer)
        assert normalize(TOGETHER.output_line(line, source)) == whole.to_output_line()


def test_together_input_lines_are_what_the_docs_show() -> None:
    documented = _lines("together", "batch_input.jsonl")
    for line in documented:
        ours = TOGETHER.encode_request(
            BatchRequest(custom_id=line["custom_id"], url="/v1/chat/completions", body=line["body"])
        )
        assert ours == line
    requests, issues = parse_input(_stored(_raw("together", "batch_input.jsonl"), "batch-api"))
    assert not issues and [r.custom_id for r in requests] == ["request-1", "request-2"]


def test_fireworks_dataset_lines_are_what_the_docs_show() -> None:
    documented = _lines("fireworks", "batch_input_dataset.jsonl")
    for line in documented:
        body = {"model": "accounts/fireworks/models/x", **line["body"]}
        ours = FIREWORKS.encode_request(
            BatchRequest(custom_id=line["custom_id"], url="/v1/chat/completions", body=body)
        )
        assert ours == line  # the model moved to the job
    requests, issues = parse_dataset(_stored(_raw("fireworks", "batch_input_dataset.jsonl"), "d"))
    assert not issues and len(requests) == 3
