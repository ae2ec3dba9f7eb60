"""Requests a provider never lists are cancelled / expired when the batch was stopped, errored
(``missing_result``) otherwise: stopping a batch is not a failure of its requests."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from omnibatch import BatchStatus, ResultStatus
from omnibatch._lifecycle import FetchedSource
from omnibatch.adapter import ResultSource
from omnibatch.results import MISSING_CODE, PartResults, iter_batch_results, write_output
from omnibatch_openai.adapter import OpenAIAdapter

LINE = {
    "id": "batch_req_1",
    "custom_id": "ran",
    "response": {"status_code": 200, "request_id": "r", "body": {"usage": {"prompt_tokens": 1}}},
    "error": None,
}


@pytest.fixture
def fetched(tmp_path: Path) -> list[FetchedSource]:
    path = tmp_path / "output.jsonl"
    path.write_bytes(orjson.dumps(LINE) + b"\n")
    return [FetchedSource(ResultSource("output", name="output file"), path)]


@pytest.mark.parametrize(
    ("batch_status", "expected"),
    [
        (BatchStatus.CANCELLED, ResultStatus.CANCELLED),
        (BatchStatus.EXPIRED, ResultStatus.EXPIRED),
        (BatchStatus.SUCCEEDED, ResultStatus.ERRORED),
        (None, ResultStatus.ERRORED),
    ],
)
def test_unlisted_requests_follow_the_batch_outcome(
    fetched: list[FetchedSource], batch_status: BatchStatus | None, expected: ResultStatus
) -> None:
    results = list(
        iter_batch_results(
            OpenAIAdapter(api_key="k"),
            fetched,
            batch_id="b",
            expected_ids=["ran", "never"],
            batch_status=batch_status,
        )
    )
    assert [(r.custom_id, r.status) for r in results] == [
        ("ran", ResultStatus.SUCCEEDED),
        ("never", expected),
    ]
    missing = results[1]
    assert missing.error is not None and missing.error.code == MISSING_CODE
    assert missing.batch_id == "b"


def test_write_output_uses_the_batch_outcome(fetched: list[FetchedSource], tmp_path: Path) -> None:
    ids = tmp_path / "part.ids"
    ids.write_text("never\nran\n")
    out = tmp_path / "out.jsonl"
    part = PartResults(OpenAIAdapter(api_key="k"), "b", ids, fetched, BatchStatus.EXPIRED)
    summary = write_output([part], out)
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(line["custom_id"], line["status"]) for line in lines] == [
        ("never", "expired"),
        ("ran", "succeeded"),
    ]
    assert (summary.expired, summary.succeeded, summary.missing) == (1, 1, 1)
