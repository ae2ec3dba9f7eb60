"""Validation before upload: every problem with its line, field and fix; nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnibatch import BatchRequest, InputValidationError
from omnibatch.pipeline import prepare_input
from omnibatch_mistral.adapter import MistralAdapter
from omnibatch_openai.adapter import OpenAIAdapter

OPENAI = OpenAIAdapter(api_key="k")
MISTRAL = MistralAdapter(api_key="k")


def line(
    custom_id: object = "r1",
    url: str = "/v1/chat/completions",
    model: str = "gpt-4o-mini",
    **extra: object,
) -> str:
    obj: dict[str, object] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
    }
    obj.update(extra)
    return json.dumps(obj)


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_problem_is_reported_with_line_field_and_fix(tmp_path: Path) -> None:
    src = write(
        tmp_path,
        [
            line("a"),
            "{not json",
            line("a"),  # duplicate
            line("c", url="/v1/embeddings"),  # mixed url
            line("d", model="gpt-4o"),  # second model
            line(7),  # custom_id not a string
            json.dumps({"custom_id": "f", "url": "/v1/chat/completions"}),  # no body
        ],
    )
    work = tmp_path / "work"
    with pytest.raises(InputValidationError) as info:
        prepare_input(src, OPENAI, work)
    problems = {(p.line, p.field) for p in info.value.problems}
    assert problems == {
        (2, None),
        (3, "custom_id"),
        (4, "url"),
        (5, "body.model"),
        (6, "custom_id"),
        (7, "body"),
    }
    text = str(info.value)
    assert "line 3, field 'custom_id': duplicate custom_id 'a'" in text
    assert "fix:" in text and "nothing was uploaded" in text
    assert not list(work.glob("part-*")), "no part file may survive a failed validation"


def test_unknown_endpoint_names_the_accepted_ones(tmp_path: Path) -> None:
    src = write(tmp_path, [line("a", url="/v1/fine_tuning/jobs")])
    with pytest.raises(InputValidationError) as info:
        prepare_input(src, MISTRAL, tmp_path / "w")
    (problem,) = info.value.problems
    assert problem.field == "url" and problem.fix and "/v1/chat/completions" in problem.fix


def test_empty_input_is_refused(tmp_path: Path) -> None:
    src = write(tmp_path, ["", "  "])
    with pytest.raises(InputValidationError, match="no requests"):
        prepare_input(src, OPENAI, tmp_path / "w")


def test_translation_to_mistral_lines_and_job_model(tmp_path: Path) -> None:
    src = write(tmp_path, [line("a"), line("b")])
    prepared = prepare_input(src, MISTRAL, tmp_path / "w")
    (part,) = prepared.parts
    assert part.model == "gpt-4o-mini" and part.count == 2
    lines = [json.loads(x) for x in part.path.read_text().splitlines()]
    assert lines[0] == {"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}
    assert part.custom_ids_path is not None
    assert part.custom_ids_path.read_text().split() == ["a", "b"]


def test_objects_with_and_without_custom_ids(tmp_path: Path) -> None:
    items = [
        BatchRequest(custom_id="mine", body={"model": "m", "messages": []}),
        {"body": {"model": "m", "messages": []}},
        {"body": {"model": "m", "messages": []}},
    ]
    prepared = prepare_input(items, OPENAI, tmp_path / "w")
    assert prepared.generated_ids == 2
    ids = prepared.parts[0].custom_ids_path.read_text().split()  # type: ignore[union-attr]
    assert ids == ["mine", "request-2", "request-3"]


def test_split_by_count_and_refusal_without_split(tmp_path: Path) -> None:
    src = write(tmp_path, [line(f"r{i}") for i in range(5)])
    prepared = prepare_input(src, OPENAI, tmp_path / "w", max_requests=2)
    assert [p.count for p in prepared.parts] == [2, 2, 1]
    with pytest.raises(InputValidationError, match="exceed one openai batch"):
        prepare_input(src, OPENAI, tmp_path / "w2", max_requests=2, split=False)


def test_split_by_bytes(tmp_path: Path) -> None:
    src = write(tmp_path, [line(f"r{i}") for i in range(6)])
    size = len(line("r0")) + 1
    prepared = prepare_input(src, OPENAI, tmp_path / "w", max_bytes=size * 2 + 10)
    assert all(p.size_bytes <= size * 2 + 10 for p in prepared.parts)
    assert sum(p.count for p in prepared.parts) == 6


def test_model_argument_fills_missing_models(tmp_path: Path) -> None:
    src = write(tmp_path, [json.dumps({"custom_id": "a", "body": {"messages": []}})])
    with pytest.raises(InputValidationError, match="no model"):
        prepare_input(src, OPENAI, tmp_path / "w")
    prepared = prepare_input(src, OPENAI, tmp_path / "w2", model="gpt-4o-mini")
    body = json.loads(prepared.parts[0].path.read_text())["body"]
    assert body["model"] == "gpt-4o-mini"


def _ids(prepared: object) -> list[str]:
    parts = prepared.parts  # type: ignore[attr-defined]
    return [i for p in parts for i in p.custom_ids_path.read_text().split()]


def test_a_line_without_custom_id_is_a_problem_naming_the_line(tmp_path: Path) -> None:
    source = write(tmp_path, [line("a"), line(None), line("c")])
    with pytest.raises(InputValidationError) as caught:
        prepare_input(source, OPENAI, tmp_path / "w")
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (2, "custom_id")
    assert "--generate-ids" in (problem.fix or "")
    missing = json.loads(line("x"))
    del missing["custom_id"]
    with pytest.raises(InputValidationError, match="custom_id"):
        prepare_input(write(tmp_path, [json.dumps(missing)]), OPENAI, tmp_path / "w2")


def test_generated_ids_never_collide_with_the_files_own(tmp_path: Path) -> None:
    # Line 1 has no id; line 3 names "request-1" explicitly, as a user might.
    source = write(tmp_path, [line(None), line("b"), line("request-1")])
    prepared = prepare_input(source, OPENAI, tmp_path / "w", generate_ids=True)
    ids = _ids(prepared)
    assert ids[1:] == ["b", "request-1"] and ids[0] not in ids[1:]
    assert prepared.generated_ids == 1
