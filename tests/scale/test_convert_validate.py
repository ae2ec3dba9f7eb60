"""``convert_input`` / ``validate_input``: the pipeline behind `omnibatch convert` / `validate`."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibatch import InputValidationError
from omnibatch.pipeline import convert_input, prepare_input, validate_input
from omnibatch_mistral.adapter import MistralAdapter
from omnibatch_openai.adapter import OpenAIAdapter

from ._gen import read_jsonl, request, write_jsonl, write_requests

MISTRAL = MistralAdapter(api_key="k")


def test_convert_writes_one_translated_file(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 2500)
    out = tmp_path / "out" / "mistral.jsonl"
    out.parent.mkdir()
    prepared = convert_input(source, MISTRAL, out)
    lines = list(read_jsonl(out))
    assert [line["custom_id"] for line in lines] == [f"req-{i}" for i in range(2500)]
    assert lines[0] == {
        "custom_id": "req-0",
        "body": {k: v for k, v in request(0)["body"].items() if k != "model"},
    }
    (part,) = prepared.parts
    assert (part.path, part.count, part.size_bytes) == (out, 2500, out.stat().st_size)
    assert prepared.model == "gpt-4o-mini" and prepared.total == 2500
    assert sorted(p.name for p in out.parent.iterdir()) == ["mistral.jsonl"]
    # The same bytes as the parts prepare_input writes.
    parts = prepare_input(source, MISTRAL, tmp_path / "w", max_requests=1000)
    assert b"".join(p.path.read_bytes() for p in parts.parts) == out.read_bytes()


def test_convert_writes_nothing_for_an_invalid_input(tmp_path: Path) -> None:
    lines = [request(0), {"custom_id": "x", "method": "GET", "body": {"model": "gpt-4o-mini"}}]
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputValidationError) as caught:
        convert_input(write_jsonl(tmp_path / "in.jsonl", lines), MISTRAL, out)
    assert [(p.line, p.field) for p in caught.value.problems] == [(2, "method")]
    assert list(tmp_path.iterdir()) == [tmp_path / "in.jsonl"]


def test_validate_reports_problems_and_the_split_without_writing(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 1000)
    report = validate_input(source, OpenAIAdapter(api_key="k"), max_requests=400)
    assert report.ok and report.total == 1000
    assert [(p.index, p.count) for p in report.parts] == [(0, 400), (1, 400), (2, 200)]
    assert report.parts[0].size_bytes == sum(
        len(line) for line in source.read_bytes().splitlines(keepends=True)[:400]
    )
    assert list(tmp_path.iterdir()) == [source]

    bad = [request(0), {**request(1), "url": "/v1/nope"}, "not an object", request(3), {"x": 1}]
    report = validate_input(bad, OpenAIAdapter(api_key="k"))
    assert not report.ok and report.problem_count == 4
    assert [(p.line, p.field) for p in report.problems] == [
        (2, "url"),
        (3, None),
        (5, None),
        (5, "body"),
    ]
    assert "unknown field(s) ['x']" in report.problems[2].message
    error = report.error()
    assert isinstance(error, InputValidationError) and error.problems == report.problems


def test_a_missing_file_is_a_clear_validation_problem(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError, match="cannot read the input: No such file"):
        prepare_input(tmp_path / "nope.jsonl", MISTRAL, tmp_path / "w")
