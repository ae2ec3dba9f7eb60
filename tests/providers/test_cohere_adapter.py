"""The Cohere adapter: the idempotency key in the batch name, dataset validation, expiry read
from ``status_reason``, results from Avro parts, datasets deleted by cleanup."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest

from omnibatch import BatchClient, BatchStatus, ProviderResponseError, ResultStatus
from omnibatch.adapter import ResultSource
from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock
from omnibatch.plugin import IDEMPOTENCY_KEY, CreateSpec, InputPart, InputRef
from omnibatch_cohere.adapter import CohereAdapter
from omnibatch_cohere.dialect import OUTPUT_SCHEMA, CohereDialect

BASE = "http://emulator.test/cohere"
MODEL = "command-a-03-2025"
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(seed=9, validating_seconds=1, requests_per_second=4)
    return Emulator([CohereDialect], config=config, clock=ManualClock())


def client(emulator: Emulator) -> BatchClient:
    return BatchClient(
        "cohere", api_key="k", base_url=BASE, transport=emulator.transport(), sleep=emulator.advance
    )


def lines(count: int) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"c-{i}",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": f"q{i}"}]},
        }
        for i in range(count)
    ]


def test_the_batch_name_carries_the_idempotency_key() -> None:
    adapter = CohereAdapter(api_key="k", options={"name": "nightly"})
    flow = adapter.create(
        InputRef(part=None, file_id="ds-1"),
        CreateSpec(endpoint="/v1/chat/completions", model=MODEL, metadata={IDEMPOTENCY_KEY: KEY}),
    )
    request = next(flow)
    assert request.json == {
        "name": f"nightly-omnibatch-key-{KEY}",
        "input_dataset_id": "ds-1",
        "model": MODEL,
    }
    batch = adapter.parse_batch(
        {"id": "b", "name": request.json["name"], "status": "BATCH_STATUS_QUEUED"}
    )
    assert batch.metadata == {IDEMPOTENCY_KEY: KEY}
    assert adapter.parse_batch({"id": "b", "name": "mine"}).metadata == {}


def test_a_failed_batch_that_ran_out_of_time_is_expired() -> None:
    adapter = CohereAdapter()
    expired = adapter.parse_batch(
        {"id": "b", "status": "BATCH_STATUS_FAILED", "status_reason": "the batch expired: ..."}
    )
    failed = adapter.parse_batch(
        {"id": "b", "status": "BATCH_STATUS_FAILED", "status_reason": "context window exceeded"}
    )
    assert expired.status is BatchStatus.EXPIRED and failed.status is BatchStatus.FAILED
    assert failed.errors[0].message == "context window exceeded"


def test_submit_waits_for_the_dataset_then_cleanup_deletes_both(emulator: Emulator) -> None:
    with client(emulator) as co:
        batch = co.submit(lines(3))
        stored = emulator.engine.get_file(batch.input_file_ids[0])
        assert stored is not None and stored.purpose == "batch-openai-chat-input"
        checks = emulator.stats.count("GET", "/v1/datasets/")
        assert checks >= 2, "the upload polls the dataset until it is validated"
        done = co.wait(batch.id)
        assert done.status is BatchStatus.SUCCEEDED and done.output_file_ids
        assert done.usage is not None and (done.usage.input_tokens or 0) > 0
        results = list(co.results(batch.id))
        assert sorted(r.custom_id for r in results) == ["c-0", "c-1", "c-2"]
        assert all(r.ok and r.text and r.usage for r in results)
        deleted = co.cleanup(batch.id)
        assert set(deleted) == {*done.input_file_ids, *done.output_file_ids}
        assert all(emulator.engine.get_file(i) is None for i in deleted)


def test_a_dataset_cohere_rejects_is_a_clear_error(emulator: Emulator, tmp_path: Path) -> None:
    # A part only the service rejects (the same custom_id twice: omnibatch's own validation
    # would have caught it, so the part is written directly).
    adapter = CohereAdapter(api_key="k", base_url=BASE)
    path = tmp_path / "dup.jsonl"
    rows = [adapter.encode_line("same", "/v1/chat/completions", line["body"]) for line in lines(2)]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    part = InputPart(path, 0, 2, path.stat().st_size, "/v1/chat/completions", MODEL)
    with client(emulator) as co, pytest.raises(ProviderResponseError, match="line 2: duplicate"):
        co.run(adapter.upload(part))


def test_output_records_parse_whether_nested_values_are_text_or_objects() -> None:
    adapter = CohereAdapter()
    source = ResultSource("output", records=())
    body = {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3}}
    as_text = {"custom_id": "a", "status_code": 200, "response": orjson.dumps(body).decode()}
    as_object = {"custom_id": "a", "status_code": 200, "response": body, "error": None}
    for record in (as_text, as_object):
        result = adapter.parse_result_line(record, source)
        assert result.ok and result.response == body and result.usage is not None
    error = {"custom_id": "b", "status_code": 429, "error": '{"code": "rate", "message": "slow"}'}
    failed = adapter.parse_result_line(error, source)
    assert failed.status is ResultStatus.ERRORED and failed.error is not None
    assert (failed.error.code, failed.error.message, failed.status_code) == ("rate", "slow", 429)
    # The schema the emulator writes round-trips through fastavro.
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(OUTPUT_SCHEMA), [as_text])
    buffer.seek(0)
    assert [dict(r) for r in fastavro.reader(buffer)] == [{**as_text, "error": None}]
