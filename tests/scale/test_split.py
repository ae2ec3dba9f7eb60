"""Splitting: every part under the limits, no request lost or repeated, input order kept."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from omnibatch import BatchRequest, InputValidationError
from omnibatch.adapter import ProviderLimits
from omnibatch.pipeline import PreparedInput, prepare_input
from omnibatch_mistral.adapter import MistralAdapter
from omnibatch_openai.adapter import OpenAIAdapter

from ._gen import read_jsonl, request, write_jsonl, write_requests

MISTRAL = MistralAdapter(api_key="k")
OPENAI = OpenAIAdapter(api_key="k")


class TinyOpenAI(OpenAIAdapter):
    """OpenAI with limits small enough to reach in a test."""

    limits: ClassVar[ProviderLimits] = ProviderLimits(max_requests=7, max_bytes=3000)


def part_ids(prepared: PreparedInput) -> list[str]:
    ids: list[str] = []
    for part in prepared.parts:
        assert part.custom_ids_path is not None
        lines = [line["custom_id"] for line in read_jsonl(part.path)]
        listed = part.custom_ids_path.read_text().splitlines()
        assert lines == listed, f"{part.path} and its .ids file disagree"
        assert part.count == len(lines)
        assert part.size_bytes == part.path.stat().st_size
        ids.extend(lines)
    return ids


def test_split_by_count_keeps_every_request_once_in_order(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 1000)
    prepared = prepare_input(source, MISTRAL, tmp_path / "w", max_requests=300)
    assert [p.count for p in prepared.parts] == [300, 300, 300, 100]
    assert [p.index for p in prepared.parts] == [0, 1, 2, 3]
    assert part_ids(prepared) == [f"req-{i}" for i in range(1000)]
    assert prepared.total == 1000
    first = next(read_jsonl(prepared.parts[0].path))
    # Mistral lines: custom_id and body only, the model goes on the batch.
    assert set(first) == {"custom_id", "body"} and "model" not in first["body"]
    assert prepared.model == "gpt-4o-mini"
    assert all(
        p.model == "gpt-4o-mini" and p.endpoint == "/v1/chat/completions" for p in prepared.parts
    )


def test_split_by_bytes_keeps_each_part_under_the_limit(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 500)
    limit = 20_000
    prepared = prepare_input(source, OPENAI, tmp_path / "w", max_bytes=limit)
    sizes = [p.path.stat().st_size for p in prepared.parts]
    assert len(sizes) > 5
    assert all(size <= limit for size in sizes)
    # Parts are cut only when the next line would not fit: each is nearly full.
    assert all(size > limit - 400 for size in sizes[:-1])
    assert part_ids(prepared) == [f"req-{i}" for i in range(500)]
    lines = [line for p in prepared.parts for line in read_jsonl(p.path)]
    assert lines == [request(i) for i in range(500)]  # OpenAI lines are the input unchanged


def test_provider_limits_apply_by_default_and_overrides_only_lower_them(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 30)
    prepared = prepare_input(source, TinyOpenAI(api_key="k"), tmp_path / "a")
    assert all(p.count <= 7 and p.size_bytes <= 3000 for p in prepared.parts)
    assert part_ids(prepared) == [f"req-{i}" for i in range(30)]
    bigger = prepare_input(source, TinyOpenAI(api_key="k"), tmp_path / "b", max_requests=100)
    assert max(p.count for p in bigger.parts) <= 7
    smaller = prepare_input(source, TinyOpenAI(api_key="k"), tmp_path / "c", max_requests=2)
    assert [p.count for p in smaller.parts] == [2] * 15


def test_a_request_bigger_than_a_batch_is_a_problem_with_its_line(tmp_path: Path) -> None:
    lines = [request(0), request(1, words=2000), request(2)]
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    with pytest.raises(InputValidationError) as caught:
        prepare_input(source, OPENAI, tmp_path / "w", max_bytes=5000)
    (problem,) = caught.value.problems
    assert problem.line == 2
    assert "bytes" in problem.message and "5000" in problem.message
    assert not list((tmp_path / "w").glob("part-*"))


def test_split_false_refuses_an_input_over_one_batch(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 20)
    with pytest.raises(InputValidationError) as caught:
        prepare_input(source, OPENAI, tmp_path / "w", max_requests=10, split=False)
    assert "20 requests exceed one openai batch (10 requests" in str(caught.value)
    assert not list((tmp_path / "w").glob("part-*"))


def test_request_objects_and_dicts_are_accepted(tmp_path: Path) -> None:
    objects: list[BatchRequest | dict[str, object]] = [
        BatchRequest.model_validate(request(0)),
        request(1),
        {"body": {"model": "gpt-4o-mini", "messages": []}},  # no custom_id: one is generated
    ]
    prepared = prepare_input(objects, OPENAI, tmp_path / "w")
    assert part_ids(prepared) == ["req-0", "req-1", "request-3"]
    assert prepared.generated_ids == 1


def test_input_hash_is_the_sha256_of_the_file(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 3000)  # several read blocks
    prepared = prepare_input(source, OPENAI, tmp_path / "w")
    assert prepared.input_hash == hashlib.sha256(source.read_bytes()).hexdigest()


def test_crlf_blank_lines_and_no_final_newline_keep_line_numbers(tmp_path: Path) -> None:
    good = orjson.dumps(request(0))
    bad = b'{"custom_id": "x", "body": 5}'
    source = tmp_path / "in.jsonl"
    source.write_bytes(good + b"\r\n\r\n   \n" + orjson.dumps(request(1)) + b"\r\n" + bad)
    with pytest.raises(InputValidationError) as caught:
        prepare_input(source, OPENAI, tmp_path / "w")
    assert [(p.line, p.field) for p in caught.value.problems] == [(5, "body")]


def test_override_model_replaces_every_model(tmp_path: Path) -> None:
    lines = [request(0), {**request(1), "body": {**request(1)["body"], "model": "other"}}]
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    prepared = prepare_input(source, OPENAI, tmp_path / "w", model="gpt-4.1", override_model=True)
    assert {line["body"]["model"] for line in read_jsonl(prepared.parts[0].path)} == {"gpt-4.1"}
    assert prepared.model == "gpt-4.1"
    # Without override, a second model in a one-model-per-batch provider is a problem.
    with pytest.raises(InputValidationError) as caught:
        prepare_input(source, OPENAI, tmp_path / "x", model="gpt-4.1")
    assert [(p.line, p.field) for p in caught.value.problems] == [(2, "body.model")]
