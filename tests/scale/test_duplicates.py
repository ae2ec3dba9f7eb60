"""Duplicate custom ids are found across parts and across the spill to disk, with both lines."""

from __future__ import annotations

from pathlib import Path

import pytest

import omnibatch._index as index_module
from omnibatch import InputValidationError
from omnibatch._index import DuplicateFinder
from omnibatch.pipeline import MAX_PROBLEMS_KEPT, prepare_input, validate_input
from omnibatch_mistral.adapter import MistralAdapter

from ._gen import request, write_jsonl

MISTRAL = MistralAdapter(api_key="k")


def with_repeats(count: int, repeats: dict[int, int]) -> list[dict[str, object]]:
    """``count`` requests where line ``k`` (0-based) reuses the id of line ``repeats[k]``."""
    return [request(i, custom_id=f"req-{repeats.get(i, i)}") for i in range(count)]


def duplicate_problems(exc: InputValidationError) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in exc.problems if p.field == "custom_id"]


@pytest.mark.parametrize("memory_ids", [1_000_000, 100], ids=["in-memory", "spilled"])
def test_duplicates_across_parts_name_both_lines(tmp_path: Path, memory_ids: int) -> None:
    # Line 901 repeats line 6; line 400 repeats line 350 (within one part); with
    # memory_ids=100 the first is found on disk, after the pass.
    source = write_jsonl(tmp_path / "in.jsonl", with_repeats(1000, {900: 5, 399: 349}))
    with pytest.raises(InputValidationError) as caught:
        prepare_input(source, MISTRAL, tmp_path / "w", max_requests=300, memory_ids=memory_ids)
    assert duplicate_problems(caught.value) == [
        (400, "duplicate custom_id 'req-349' (first used on line 350)"),
        (901, "duplicate custom_id 'req-5' (first used on line 6)"),
    ]
    assert not list((tmp_path / "w").glob("part-*")), "nothing may be left to upload"


def test_duplicates_on_both_sides_of_the_spill_boundary(tmp_path: Path) -> None:
    # memory_ids=50 spills after line 50: pairs (in memory, in memory), (in memory, on disk)
    # and (on disk, on disk).
    repeats = {20: 3, 70: 10, 190: 120}
    source = write_jsonl(tmp_path / "in.jsonl", with_repeats(200, repeats))
    report = validate_input(source, MISTRAL, memory_ids=50)
    assert not report.ok and report.problem_count == 3
    assert [(p.line, p.message) for p in report.problems] == [
        (21, "duplicate custom_id 'req-3' (first used on line 4)"),
        (71, "duplicate custom_id 'req-10' (first used on line 11)"),
        (191, "duplicate custom_id 'req-120' (first used on line 121)"),
    ]


def test_no_false_duplicates_after_a_spill(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", (request(i) for i in range(5000)))
    prepared = prepare_input(source, MISTRAL, tmp_path / "w", max_requests=1000, memory_ids=64)
    assert prepared.total == 5000 and len(prepared.parts) == 5


def test_many_duplicates_are_counted_beyond_the_ones_shown(tmp_path: Path) -> None:
    lines = [request(i, custom_id="same") for i in range(MAX_PROBLEMS_KEPT + 50)]
    report = validate_input(lines, MISTRAL, memory_ids=10)
    assert report.problem_count == MAX_PROBLEMS_KEPT + 49
    assert report.problems[-1].message == "49 further problem(s) not shown"
    assert report.problems[0].line == 2 and "first used on line 1" in report.problems[0].message


def test_an_oversized_bucket_is_split_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "_BUCKET_KEYS", 20)
    finder = DuplicateFinder(tmp_path, memory_keys=10)
    try:
        for number in range(1, 3001):
            assert finder.add(f"id-{number}", number) is None or number <= 10
        finder.add("id-7", 3001)
        finder.add("id-2999", 3002)
        found = finder.finish()
    finally:
        finder.close()
    assert [(d.custom_id, d.line, d.first_line) for d in found] == [
        ("id-7", 3001, 7),
        ("id-2999", 3002, 2999),
    ]
    assert not list(tmp_path.iterdir()), "the spill file is removed"
