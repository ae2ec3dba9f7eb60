"""A split job through the emulator, in process and over a real socket: upload each part, run
it, download the result files (streamed to disk) and merge them back in input order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from omnibatch import BatchClient
from omnibatch._lifecycle import fetch_results
from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock, serve
from omnibatch.pipeline import prepare_input
from omnibatch.results import PartResults, write_output
from omnibatch_mistral.adapter import MistralAdapter

from ._gen import read_jsonl, request, write_jsonl


@contextmanager
def client_for(emulator: Emulator, how: str) -> Iterator[BatchClient]:
    if how == "mock":
        adapter = MistralAdapter(api_key="k", base_url=emulator.base_url("http://emu", "mistral"))
        with BatchClient(adapter=adapter, transport=emulator.transport()) as client:
            yield client
        return
    with serve(emulator=emulator) as server:
        adapter = MistralAdapter(api_key="k", base_url=server.url("mistral"))
        with BatchClient(adapter=adapter) as client:
            yield client


@pytest.mark.parametrize("how", ["mock", "socket"])
def test_a_split_job_comes_back_whole_and_in_order(tmp_path: Path, how: str) -> None:
    emulator = Emulator(
        config=EmulatorConfig(request_error_rate=0.1, seed=5, shuffle_output=True),
        clock=ManualClock(),
    )
    lines = [request(i) for i in range(700)]
    lines[123]["body"]["messages"][0]["content"] = "[[emulator:error]]"  # fails for sure
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    with client_for(emulator, how) as client:
        adapter = client.adapter
        prepared = prepare_input(source, adapter, tmp_path / "w", max_requests=300)
        assert [p.count for p in prepared.parts] == [300, 300, 100]
        created = []
        for part in prepared.parts:
            ref = client.run(adapter.upload(part))
            batch = client.create(ref, endpoint=prepared.endpoint, model=prepared.model)
            created.append((part, batch.id))
        for _, batch_id in created:
            emulator.complete(batch_id)
        parts = []
        for part, batch_id in created:
            batch, fetched = client.run(fetch_results(adapter, batch_id))
            assert fetched and all(f.path is not None for f in fetched)
            assert part.custom_ids_path is not None
            parts.append(
                PartResults(adapter, batch_id, part.custom_ids_path, fetched, batch.status)
            )
        summary = write_output(parts, tmp_path / "out.jsonl")
    merged = list(read_jsonl(tmp_path / "out.jsonl"))
    assert [line["custom_id"] for line in merged] == [f"req-{i}" for i in range(700)]
    assert merged[123]["status"] == "errored"
    assert summary.total == 700 and summary.missing == 0
    assert 20 < summary.errored < 140  # about 10 % fail, by the emulator's seed
    assert summary.succeeded + summary.errored == 700
    ok = next(line for line in merged if line["status"] == "succeeded")
    assert ok["response"]["choices"][0]["message"]["role"] == "assistant"
