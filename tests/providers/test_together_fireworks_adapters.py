"""Together and Fireworks specifics beyond the contract suite: counts from result files, the
job wrapper and upload conflicts, Fireworks' account scoping, its continuation of an expired
job, its refused cancel, and splitting at the providers' own limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from omnibatch import (
    Batch,
    BatchClient,
    BatchStatus,
    ConfigurationError,
    ResultStatus,
    UnsupportedOperation,
    UnsupportedOperationError,
)
from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock
from omnibatch.pipeline import prepare_input
from omnibatch_fireworks.adapter import FIREWORKS_STATUSES, FireworksAdapter, dataset_id_for
from omnibatch_fireworks.dialect import FireworksDialect
from omnibatch_together.adapter import TogetherAdapter
from omnibatch_together.dialect import TogetherDialect

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers"
CONFIG = EmulatorConfig(
    seed=3, validating_seconds=1.0, requests_per_second=1.0, finalizing_seconds=1.0
)


def lines(count: int, model: str = "m-1") -> list[dict[str, object]]:
    return [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"q {i}"}]},
        }
        for i in range(count)
    ]


@pytest.fixture
def together() -> Iterator[tuple[BatchClient, Emulator]]:
    emulator = Emulator([TogetherDialect], CONFIG, ManualClock())
    adapter = TogetherAdapter(api_key="k", base_url=emulator.base_url("http://emu", "together"))
    with BatchClient(adapter=adapter, transport=emulator.transport()) as client:
        yield client, emulator


@pytest.fixture
def fireworks() -> Iterator[tuple[BatchClient, Emulator]]:
    emulator = Emulator([FireworksDialect], CONFIG, ManualClock())
    adapter = FireworksAdapter(
        api_key="k",
        base_url=emulator.base_url("http://emu", "fireworks"),
        options={"account_id": "acme"},
    )
    with BatchClient(adapter=adapter, transport=emulator.transport()) as client:
        yield client, emulator


def test_together_counts_come_from_the_result_files(
    together: tuple[BatchClient, Emulator],
) -> None:
    client, emulator = together
    rows = lines(5)
    rows[3]["body"]["messages"][0]["content"] = "[[emulator:error]]"  # type: ignore[index]
    batch = client.submit(rows)
    assert batch.provider_status == "VALIDATING" and batch.request_counts.total == 0
    emulator.advance(100)
    before = emulator.stats.count("GET", "/content")
    done = client.retrieve(batch.id)
    assert done.status is BatchStatus.SUCCEEDED and done.raw["progress"] == 100.0
    counts = done.request_counts
    assert (counts.total, counts.succeeded, counts.failed) == (5, 4, 1)
    assert emulator.stats.count("GET", "/content") == before + 2  # output and error file
    client.retrieve(batch.id)
    assert emulator.stats.count("GET", "/content") == before + 2, "counted once per job"


def test_together_reuses_the_file_the_service_already_has(
    together: tuple[BatchClient, Emulator],
) -> None:
    from omnibatch.flows import HttpResponse

    client, _ = together
    prepared = client.prepare(lines(1))
    flow = client.adapter.upload(prepared.parts[0])
    first = next(flow)
    assert first.method == "POST" and first.ok_statuses == frozenset({302, 409})
    assert b'name="purpose"\r\n\r\nbatch-api' in (first.content or b"")
    with pytest.raises(StopIteration) as stop:
        flow.send(HttpResponse(409, {}, orjson.dumps({"file_id": "file-existing"})))
    assert stop.value.value.file_id == "file-existing"


def test_credentials_never_go_to_a_presigned_url() -> None:
    import httpx

    from omnibatch._http import SyncSender
    from omnibatch.flows import HttpRequest

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    adapter = TogetherAdapter(api_key="secret-key", base_url="https://api.together.ai")
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        sender = SyncSender(http, adapter, Path("."))
        sender.send(HttpRequest("PUT", "https://bucket.example.com/up?sig=1", content=b"x"))
        sender.send(HttpRequest("GET", "https://api.together.ai/v1/batches"))
        sender.send(HttpRequest("GET", "/v1/files"))
    assert "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == "Bearer secret-key"
    assert seen[2].headers["authorization"] == "Bearer secret-key"


def test_fireworks_needs_an_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIREWORKS_ACCOUNT_ID", raising=False)
    with pytest.raises(ConfigurationError, match="FIREWORKS_ACCOUNT_ID"):
        next(FireworksAdapter(api_key="k").retrieve("x"))
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "from-env")
    request = next(FireworksAdapter(api_key="k").retrieve("job-1"))
    assert request.path == "/v1/accounts/from-env/batchInferenceJobs/job-1"


def test_fireworks_every_documented_state_is_mapped() -> None:
    assert len(FIREWORKS_STATUSES) == 18
    assert FIREWORKS_STATUSES["JOB_STATE_WRITING_RESULTS"] is BatchStatus.FINALIZING
    assert FIREWORKS_STATUSES["JOB_STATE_EXPIRED"] is BatchStatus.EXPIRED


def test_fireworks_job_level_model_and_dataset_lines(
    fireworks: tuple[BatchClient, Emulator],
) -> None:
    client, emulator = fireworks
    batch = client.submit(
        lines(2, model="accounts/fireworks/models/x"),
        options={"inference_parameters": {"max_tokens": 64}},
    )
    assert batch.model == "accounts/fireworks/models/x"
    assert batch.raw["inferenceParameters"] == {"maxTokens": 64}
    dataset = emulator.engine.get_file(batch.input_file_ids[0])
    assert dataset is not None
    first = orjson.loads(dataset.data.splitlines()[0])
    assert set(first) == {"custom_id", "body"} and "model" not in first["body"]


def test_fireworks_cancel_is_refused_before_anything_is_sent(
    fireworks: tuple[BatchClient, Emulator],
) -> None:
    client, emulator = fireworks
    batch = client.submit(lines(2))
    sent = len(emulator.stats.requests)
    with pytest.raises(UnsupportedOperation, match="cannot be cancelled") as caught:
        client.cancel(batch.id)
    assert isinstance(caught.value, UnsupportedOperationError)
    assert len(emulator.stats.requests) == sent
    assert not client.adapter.capabilities.cancel


def test_fireworks_resumes_an_expired_job(fireworks: tuple[BatchClient, Emulator]) -> None:
    client, emulator = fireworks
    first = client.submit(lines(6))
    emulator.advance(3.5)
    emulator.expire(first.id)
    expired = client.retrieve(first.id)
    assert expired.status is BatchStatus.EXPIRED and expired.request_counts.succeeded == 2
    kept = {r.custom_id for r in client.results(first.id) if r.ok}
    # The example of docs/providers/fireworks.md, as written.
    (example,) = re.findall(
        r"^```python\n(.*?)^```$", (DOCS / "fireworks.md").read_text(), re.M | re.S
    )
    namespace: dict[str, object] = {"client": client, "job_id": first.id}
    exec(compile(example, "docs/providers/fireworks.md", "exec"), namespace)
    second = namespace["resumed"]
    assert isinstance(second, Batch)
    assert second.raw["continuedFromJobName"] == f"accounts/acme/batchInferenceJobs/{first.id}"
    emulator.advance(100)
    done = client.retrieve(second.id)
    assert done.status is BatchStatus.SUCCEEDED and done.request_counts.total == 4
    rest = {r.custom_id for r in client.results(second.id) if r.status is ResultStatus.SUCCEEDED}
    assert not kept & rest and kept | rest == {f"r{i}" for i in range(6)}


def test_fireworks_dataset_ids_keep_the_unique_tail() -> None:
    name = "JOB_0123456789abcdef0123456789abcdef-part-0001-" + "f" * 40 + ".jsonl"
    dataset_id = dataset_id_for(name)
    assert len(dataset_id) <= 63 and dataset_id.endswith("f" * 40)
    assert set(dataset_id) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def test_together_splits_at_50000_requests(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    with open(source, "wb") as out:
        for i in range(50_001):
            out.write(
                b'{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions",'
                b'"body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}\n' % i
            )
    prepared = prepare_input(source, TogetherAdapter(api_key="k"), tmp_path / "w")
    assert [p.count for p in prepared.parts] == [50_000, 1]
    assert all(p.size_bytes <= 100 * 1024 * 1024 for p in prepared.parts)


def test_fireworks_splits_by_dataset_size(tmp_path: Path) -> None:
    assert FireworksAdapter.limits.max_bytes == 500 * 1024 * 1024
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(line) for line in lines(40)) + b"\n")
    prepared = prepare_input(source, FireworksAdapter(api_key="k"), tmp_path / "w", max_bytes=1000)
    assert len(prepared.parts) > 1 and all(p.size_bytes <= 1000 for p in prepared.parts)
    assert sum(p.count for p in prepared.parts) == 40


class _SignedUploadFireworks(FireworksAdapter):
    """Fireworks with every dataset above the direct-upload size: the signed-URL path."""

    direct_upload_max_bytes = 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_big_inputs_stream_to_the_signed_url(tmp_path: Path, mode: str) -> None:
    import asyncio

    from omnibatch import AsyncBatchClient

    emulator = Emulator([FireworksDialect], CONFIG, ManualClock())
    adapter = _SignedUploadFireworks(
        api_key="k",
        base_url=emulator.base_url("http://emu", "fireworks"),
        options={"account_id": "acme"},
    )
    if mode == "sync":
        with BatchClient(adapter=adapter, transport=emulator.transport()) as client:
            batch = client.submit(lines(3))
    else:

        async def submit() -> object:
            async with AsyncBatchClient(adapter=adapter, transport=emulator.transport()) as client:
                return await client.submit(lines(3))

        batch = asyncio.run(submit())
    puts = [r for r in emulator.stats.requests if r.method == "PUT"]
    assert len(puts) == 1 and "/fireworks/signed/upload/" in puts[0].path
    headers = {k.lower(): v for k, v in puts[0].headers.items()}
    assert "transfer-encoding" not in headers, "signed URLs take a known length, not chunks"
    dataset = emulator.engine.get_file(batch.input_file_ids[0])  # type: ignore[attr-defined]
    assert dataset is not None and len(dataset.data.splitlines()) == 3
    assert headers["content-length"] == str(len(dataset.data))


def test_together_batches_are_found_again_by_their_input_file(
    together: tuple[BatchClient, Emulator],
) -> None:
    from omnibatch._lifecycle import can_reconcile, find_by_key

    client, _ = together
    assert can_reconcile(client.adapter)
    batch = client.submit(lines(2))
    other = client.submit(lines(3))
    (file_id,) = batch.input_file_ids
    found = client.run(find_by_key(client.adapter, "k" * 32, None, file_id=file_id))
    assert found is not None and found.id == batch.id != other.id
    assert client.run(find_by_key(client.adapter, "k" * 32, None, file_id="file-nope")) is None
    assert client.run(find_by_key(client.adapter, "k" * 32, None)) is None


def test_together_counts_of_a_cancelled_job_name_the_requests_that_never_ran(
    together: tuple[BatchClient, Emulator],
) -> None:
    client, emulator = together
    batch = client.submit(lines(6))
    emulator.advance(3.5)  # validation, then two requests
    cancelled = client.cancel(batch.id)
    assert cancelled.status is BatchStatus.CANCELLED
    counts = client.retrieve(batch.id).request_counts
    assert (counts.total, counts.succeeded, counts.cancelled, counts.pending) == (6, 2, 4, 0)


def test_together_a_file_refused_by_preprocessing_is_a_clear_error(
    together: tuple[BatchClient, Emulator],
) -> None:
    from omnibatch import ProviderResponseError
    from omnibatch.flows import HttpResponse

    client, _ = together
    prepared = client.prepare(lines(1))
    flow = client.adapter.upload(prepared.parts[0])
    next(flow)
    put = flow.send(
        HttpResponse(302, {"location": "https://up.example/x", "x-together-file-id": "file-1"})
    )
    assert put.method == "PUT" and put.content_path == prepared.parts[0].path
    flow.send(HttpResponse(200, {}))
    refused = {
        "processing_status": "INVALID_FORMAT",
        "validation_report": {"valid": False, "error": "line 1: no messages"},
    }
    with pytest.raises(ProviderResponseError, match=r"INVALID_FORMAT.*line 1: no messages"):
        flow.send(HttpResponse(200, {}, orjson.dumps(refused)))
