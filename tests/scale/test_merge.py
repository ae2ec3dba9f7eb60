"""Merging a job's results: input order, one line per request, nothing silently dropped."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import omnibatch._index as index_module
import omnibatch.results as results_module
from omnibatch import BatchStatus, ProviderResponseError, ResultStatus
from omnibatch._index import ids_text
from omnibatch._lifecycle import FetchedSource
from omnibatch.adapter import ResultSource
from omnibatch.pipeline import prepare_input
from omnibatch.results import MISSING_CODE, PartResults, iter_batch_results, write_output
from omnibatch_openai.adapter import OpenAIAdapter

from ._gen import read_jsonl, request, result, shuffled, write_jsonl

OPENAI = OpenAIAdapter(api_key="k")
OUTPUT = ResultSource("output", name="output file")
ERRORS = ResultSource("error", name="error file")


@pytest.fixture(params=["memory", "disk"])
def join_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run each merge test through the in-memory join and through the on-disk one, with
    buffers small enough that the disk join uses many buckets and range files."""
    if request.param == "disk":
        monkeypatch.setattr(results_module, "MEMORY_RESULT_BYTES", 0)
        monkeypatch.setattr(results_module, "_BUCKET_BYTES", 4096)
        monkeypatch.setattr(results_module, "_BUCKET_ITEMS", 16)
        monkeypatch.setattr(results_module, "_MIN_SPAN", 7)
    yield request.param


def line_order(part: PartResults, join_path: str) -> list[str]:
    """The custom ids of a part's output lines, in the order ``write_output`` writes them: input
    order for a part joined in memory; for a part joined on disk, the order of its result files
    (the first result of each of its ids), then the ids no result answered, in input order."""
    ids = list(results_module.read_ids(part.ids_path))
    if join_path == "memory":
        return ids
    wanted = set(ids)
    answered: list[str] = []
    for fetched in part.fetched:
        for record in read_jsonl(fetched.path or Path()):
            custom_id = record["custom_id"]
            if custom_id in wanted and custom_id not in answered:
                answered.append(custom_id)
    rest = set(answered)
    missing = []
    for custom_id in ids:
        if custom_id in rest:
            rest.discard(custom_id)  # its first position has the result
        else:
            missing.append(custom_id)
    return answered + missing


def make_part(
    tmp_path: Path,
    name: str,
    ids: list[str],
    ok: list[str],
    failed: list[str],
    batch_status: BatchStatus | None = None,
) -> PartResults:
    """A part whose output and error files hold ``ok`` / ``failed`` in a shuffled order."""
    ids_path = tmp_path / f"{name}.ids"
    ids_path.write_bytes(ids_text(ids))
    out = write_jsonl(tmp_path / f"{name}-out.jsonl", (result(i) for i in shuffled(ok)))
    err = write_jsonl(tmp_path / f"{name}-err.jsonl", (result(i, ok=False) for i in failed))
    fetched = [FetchedSource(OUTPUT, out), FetchedSource(ERRORS, err)]
    return PartResults(OPENAI, f"batch_{name}", ids_path, fetched, batch_status)


def test_results_shuffled_across_parts_come_back_in_input_order(
    tmp_path: Path, join_path: str
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", (request(i) for i in range(250)))
    prepared = prepare_input(source, OPENAI, tmp_path / "w", max_requests=100)
    parts = []
    for part in prepared.parts:
        assert part.custom_ids_path is not None
        ids = part.custom_ids_path.read_text().splitlines()
        failed = [i for i in ids if i.endswith("3")]
        gone = {i for i in ids if i.endswith("7")}  # never answered
        ok = [i for i in ids if i not in gone and i not in failed]
        parts.append(make_part(tmp_path, f"p{part.index}", ids, ok, failed))
    out = tmp_path / "out.jsonl"
    summary = write_output(parts, out)
    lines = list(read_jsonl(out))
    assert [line["custom_id"] for line in lines] == [
        custom_id for part in parts for custom_id in line_order(part, join_path)
    ]
    assert sorted(line["custom_id"] for line in lines) == sorted(f"req-{i}" for i in range(250))
    if join_path == "memory":
        assert [line["custom_id"] for line in lines] == [f"req-{i}" for i in range(250)]
    for line in lines:
        number = line["custom_id"].removeprefix("req-")
        if number.endswith("7"):
            assert line["status"] == "errored"
            assert line["error"]["code"] == MISSING_CODE
        elif number.endswith("3"):
            assert line["status"] == "errored" and line["error"]["code"] == "server_error"
        else:
            assert line["status"] == "succeeded"
            assert line["response"]["choices"][0]["message"]["content"] == line["custom_id"]
    assert (summary.total, summary.succeeded, summary.errored, summary.missing) == (
        250,
        200,
        50,
        25,
    )
    assert not list(tmp_path.glob(".out.jsonl.*")), "scratch files are removed"


def test_a_batch_without_any_result_is_all_missing(tmp_path: Path, join_path: str) -> None:
    ids = [f"id-{i}" for i in range(60)]
    part = make_part(tmp_path, "p", ids, [], [], BatchStatus.CANCELLED)
    summary = write_output([part], tmp_path / "out.jsonl")
    lines = list(read_jsonl(tmp_path / "out.jsonl"))
    assert [line["custom_id"] for line in lines] == ids
    assert {line["status"] for line in lines} == {"cancelled"}
    assert lines[0]["error"] == {
        "kind": "cancelled",
        "message": "the batch was cancelled before it ran",
        "code": MISSING_CODE,
    }
    assert (summary.cancelled, summary.missing, summary.total) == (60, 60, 60)


def test_unknown_and_repeated_results_are_counted_not_written(
    tmp_path: Path, join_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [f"id-{i}" for i in range(40)]
    part = make_part(tmp_path, "p", ids, [*ids[:30], "stranger", ids[3]], [ids[3], ids[35]])
    with caplog.at_level(logging.WARNING, logger="omnibatch.results"):
        summary = write_output([part], tmp_path / "out.jsonl")
    lines = list(read_jsonl(tmp_path / "out.jsonl"))
    assert [line["custom_id"] for line in lines] == line_order(part, join_path)
    by_id = {line["custom_id"]: line for line in lines}
    assert by_id[ids[3]]["status"] == "succeeded"  # the output file comes first: its line wins
    assert by_id[ids[35]]["status"] == "errored"
    assert by_id[ids[35]]["error"]["code"] == "server_error"
    assert (summary.unexpected, summary.duplicates, summary.missing) == (1, 2, 9)
    assert "1 result(s) named a custom id that is not in the input" in caplog.text


def test_a_repeated_input_id_gets_one_result_and_one_missing_line(
    tmp_path: Path, join_path: str
) -> None:
    ids = ["a", "b", "a", "c"]
    part = make_part(tmp_path, "p", ids, ["a", "b", "c"], [])
    write_output([part], tmp_path / "out.jsonl")
    statuses = [(x["custom_id"], x["status"]) for x in read_jsonl(tmp_path / "out.jsonl")]
    expected = [("a", "succeeded"), ("b", "succeeded"), ("a", "errored"), ("c", "succeeded")]
    if join_path == "memory":
        assert statuses == expected
    else:  # the results in their order, then the missing line of the second "a"
        assert sorted(statuses) == sorted(expected) and statuses[-1] == ("a", "errored")
        assert [x[0] for x in statuses] == line_order(part, join_path)


def test_unusual_custom_ids_survive_the_ids_file_and_the_join(
    tmp_path: Path, join_path: str
) -> None:
    ids = ['"quoted"', "new\nline", "tab\tand space ", "ünïcødé-日本", "back\\slash", "x"]
    source = write_jsonl(
        tmp_path / "in.jsonl", (request(n, custom_id=i) for n, i in enumerate(ids))
    )
    prepared = prepare_input(source, OPENAI, tmp_path / "w")
    ids_path = prepared.parts[0].custom_ids_path
    assert ids_path is not None
    assert list(results_module.read_ids(ids_path)) == ids
    part = PartResults(
        OPENAI,
        "b",
        ids_path,
        [FetchedSource(OUTPUT, write_jsonl(tmp_path / "o.jsonl", map(result, shuffled(ids))))],
    )
    write_output([part], tmp_path / "out.jsonl")
    written = [x["custom_id"] for x in read_jsonl(tmp_path / "out.jsonl")]
    assert written == line_order(part, join_path) and sorted(written) == sorted(ids)


def test_a_bad_result_line_names_the_file_and_line(tmp_path: Path, join_path: str) -> None:
    ids = [f"id-{i}" for i in range(5)]
    part = make_part(tmp_path, "p", ids, ids[:3], [])
    with open(part.fetched[1].path or "", "ab") as fh:  # the error file
        fh.write(orjson.dumps(result("id-3", ok=False)) + b"\n\n{not json\n")
    with pytest.raises(ProviderResponseError) as caught:
        write_output([part], tmp_path / "out.jsonl")
    message = str(caught.value)
    assert f"error file ({part.fetched[1].path}) line 3: cannot parse result" in message
    assert not (tmp_path / "out.jsonl").exists()
    assert not list(tmp_path.glob("out.jsonl*")) and not list(tmp_path.glob(".out.jsonl.*"))

    bad = write_jsonl(tmp_path / "bad.jsonl", [result("id-0"), {"response": None, "error": "x"}])
    part = PartResults(OPENAI, "b", part.ids_path, [FetchedSource(OUTPUT, bad)])
    with pytest.raises(ProviderResponseError, match=r"bad.jsonl\) line 2: .*custom_id"):
        write_output([part], tmp_path / "out.jsonl")


def test_inline_records_are_joined_too(tmp_path: Path) -> None:
    ids = ["a", "b", "c"]
    (tmp_path / "p.ids").write_bytes(ids_text(ids))
    inline = ResultSource("output", records=(result("c"), result("a", ok=False)), name="inline")
    part = PartResults(OPENAI, "b", tmp_path / "p.ids", [FetchedSource(inline, None)])
    summary = write_output([part], tmp_path / "out.jsonl")
    lines = list(read_jsonl(tmp_path / "out.jsonl"))
    assert [(x["custom_id"], x["status"]) for x in lines] == [
        ("a", "errored"),
        ("b", "errored"),
        ("c", "succeeded"),
    ]
    assert summary.missing == 1


def test_batch_results_spill_their_seen_ids_and_still_dedupe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "MEMORY_KEYS", 25)
    spill_dir = tmp_path / "tmp"
    spill_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_dir))
    ids = [f"id-{i}" for i in range(100)]
    out = write_jsonl(tmp_path / "o.jsonl", [*map(result, shuffled(ids[:80])), result("id-5")])
    err = write_jsonl(tmp_path / "e.jsonl", [result("id-70", ok=False), result("x", ok=False)])
    fetched = [FetchedSource(OUTPUT, out), FetchedSource(ERRORS, err)]
    stream = iter_batch_results(OPENAI, fetched, batch_id="b", expected_ids=ids)
    got = [next(stream) for _ in range(50)]
    assert list(spill_dir.glob("*.sqlite3")), "past 25 ids the seen set lives on disk"
    got.extend(stream)
    assert len(got) == 101  # 80 answered + "x" + 20 missing, each once
    assert len({r.custom_id for r in got}) == 101
    missing = [r.custom_id for r in got if r.error is not None and r.error.code == MISSING_CODE]
    assert missing == ids[80:]
    assert all(r.batch_id == "b" for r in got)
    assert next(r for r in got if r.custom_id == "id-70").status is ResultStatus.SUCCEEDED
    assert not list(spill_dir.iterdir()), "the spill file is removed"


def test_left_out_results_of_a_later_part_are_cut_from_its_own_lines(
    tmp_path: Path, join_path: str
) -> None:
    first = make_part(tmp_path, "a", ["a1", "a2"], ["a2", "a1"], [])
    ids = [f"b{i}" for i in range(30)]
    second = make_part(tmp_path, "b", ids, ["x", *ids[:20], "y", ids[4]], [ids[25]])
    summary = write_output([first, second], tmp_path / "out.jsonl")
    written = [x["custom_id"] for x in read_jsonl(tmp_path / "out.jsonl")]
    assert written == line_order(first, join_path) + line_order(second, join_path)
    assert sorted(written) == sorted(["a1", "a2", *ids])
    assert (summary.total, summary.unexpected, summary.duplicates, summary.missing) == (
        32,
        2,
        1,
        9,
    )
    assert (summary.succeeded, summary.errored) == (22, 10)
