"""Conformance: the official ``cohere`` SDK drives the emulator over a real socket.

Upload a dataset (``datasets.create``), wait for its validation (the SDK's ``wait``), create,
retrieve, list (``page_size``/``page_token``) and cancel batches, read the output dataset with
the SDK's own ``utils.save_dataset`` (which downloads the Avro parts and decodes them with
fastavro), and delete the datasets, all through ``cohere.ClientV2`` pointed at
``http://127.0.0.1:PORT/cohere``. Every answer must parse into the SDK's own types with no
field the SDK does not know.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cohere
import httpx
import pytest
from cohere.batches import (
    Batch,
    CreateBatchResponse,
    GetBatchResponse,
    ListBatchesResponse,
)
from cohere.datasets import DatasetsCreateResponse, DatasetsGetResponse, DatasetsListResponse
from tests.conformance.sdk_types import strict

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_cohere.dialect import CohereDialect

KEY = "co-conformance-key"
MODEL = "command-a-03-2025"


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(
        seed=23,
        validating_seconds=1,
        requests_per_second=2,
        finalizing_seconds=1,
        cancelling_seconds=1,
    )
    return Emulator([CohereDialect], config=config, clock=ManualClock())


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(host="127.0.0.1", port=0, emulator=emulator) as running:
        yield running


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[cohere.ClientV2]:
    sdk = cohere.ClientV2(api_key=KEY, base_url=server.url("cohere"))
    yield sdk
    sdk._client_wrapper.httpx_client.httpx_client.close()


def raw(server: EmulatorServer, path: str, **params: Any) -> Any:
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        return http.get(server.url("cohere") + path, params=params).json()


def write_input(path: Path, *texts: str) -> Path:
    with open(path, "w") as fh:
        for i, text in enumerate(texts):
            line = {
                "custom_id": f"req-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": MODEL,
                    "max_tokens": 32,
                    "messages": [{"role": "user", "content": text}],
                },
            }
            fh.write(json.dumps(line) + "\n")
    return path


def upload(client: cohere.ClientV2, emulator: Emulator, path: Path) -> str:
    with open(path, "rb") as fh:
        created = client.datasets.create(
            name="conformance", type="batch-openai-chat-input", data=fh
        )
    assert isinstance(created, DatasetsCreateResponse) and created.id
    pending = client.datasets.get(id=created.id)
    assert pending.dataset.validation_status == "processing"
    emulator.advance(1.5)
    validated = client.wait(created, interval=0.01)  # the SDK's own wait helper
    assert isinstance(validated, DatasetsGetResponse)
    assert validated.dataset.validation_status == "validated"
    return created.id


def retrieve_until_ended(
    client: cohere.ClientV2, emulator: Emulator, server: EmulatorServer, batch_id: str
) -> Batch:
    for _ in range(100):
        got = client.batches.retrieve(id=batch_id)
        assert isinstance(got, GetBatchResponse)
        strict(GetBatchResponse, raw(server, f"/v2/batches/{batch_id}"))
        if got.batch.status in (
            "BATCH_STATUS_COMPLETED",
            "BATCH_STATUS_FAILED",
            "BATCH_STATUS_CANCELED",
        ):
            return got.batch
        emulator.advance(0.5)
    pytest.fail(f"{batch_id} did not end")


def test_the_whole_flow_parses_into_sdk_types(
    client: cohere.ClientV2, emulator: Emulator, server: EmulatorServer, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", "Hello", "Broken [[emulator:error]]", "Third")
    dataset_id = upload(client, emulator, source)
    strict(DatasetsGetResponse, raw(server, f"/v1/datasets/{dataset_id}"))
    listed = client.datasets.list(dataset_type="batch-openai-chat-input", limit=10)
    assert isinstance(listed, DatasetsListResponse) and listed.datasets
    assert [d.id for d in listed.datasets] == [dataset_id]
    strict(DatasetsListResponse, raw(server, "/v1/datasets", datasetType="batch-openai-chat-input"))

    created = client.batches.create(
        request=Batch(name="conformance-batch", input_dataset_id=dataset_id, model=MODEL)
    )
    assert isinstance(created, CreateBatchResponse)
    assert created.batch.status == "BATCH_STATUS_QUEUED" and created.batch.id
    assert created.batch.num_records == 3 and created.batch.output_dataset_id is None

    ended = retrieve_until_ended(client, emulator, server, created.batch.id)
    assert ended.status == "BATCH_STATUS_COMPLETED"
    assert ended.num_successful_records == 2 and ended.num_failed_records == 1
    assert ended.input_tokens is not None and int(ended.input_tokens) > 0
    assert ended.output_dataset_id

    output = client.datasets.get(id=ended.output_dataset_id)
    strict(DatasetsGetResponse, raw(server, f"/v1/datasets/{ended.output_dataset_id}"))
    assert output.dataset.dataset_parts and output.dataset.dataset_parts[0].url
    saved = tmp_path / "results.jsonl"
    client.utils.save_dataset(output.dataset, str(saved), format="jsonl")
    records = {r["custom_id"]: r for r in map(json.loads, saved.read_text().splitlines())}
    assert set(records) == {"req-0", "req-1", "req-2"}
    ok = records["req-0"]
    assert ok["status_code"] == 200 and ok["error"] is None
    assert json.loads(ok["response"])["choices"][0]["message"]["content"]
    failed = records["req-1"]
    assert (
        failed["status_code"] == 400
        and "[[emulator:error]]" in json.loads(failed["error"])["message"]
    )
    avro = tmp_path / "results.avro"
    client.utils.save_dataset(output.dataset, str(avro), format="avro")
    assert avro.read_bytes().startswith(b"Obj\x01")

    # The part URL is a pre-signed link: it needs no key, but its token.
    part_url = output.dataset.dataset_parts[0].url
    assert httpx.get(part_url).status_code == 200
    token = part_url.rsplit("/", 1)[1].removesuffix(".avro")
    assert httpx.get(part_url.replace(token, "0" * 32)).status_code == 404

    for ident in (dataset_id, ended.output_dataset_id):
        assert client.datasets.delete(id=ident) == {}
        with pytest.raises(cohere.NotFoundError):
            client.datasets.get(id=ident)


def test_cancel_keeps_what_ran(
    client: cohere.ClientV2, emulator: Emulator, server: EmulatorServer, tmp_path: Path
) -> None:
    dataset_id = upload(client, emulator, write_input(tmp_path / "in.jsonl", *["x"] * 6))
    created = client.batches.create(
        request=Batch(name="to-cancel", input_dataset_id=dataset_id, model=MODEL)
    )
    emulator.advance(2.1)  # validation, then two requests a second: two have run
    assert client.batches.cancel(id=created.batch.id) == {}
    canceling = client.batches.retrieve(id=created.batch.id).batch
    assert canceling.status == "BATCH_STATUS_CANCELING"
    ended = retrieve_until_ended(client, emulator, server, created.batch.id)
    assert ended.status == "BATCH_STATUS_CANCELED" and ended.num_successful_records == 2
    assert ended.output_dataset_id
    output = client.datasets.get(id=ended.output_dataset_id).dataset
    assert output.dataset_parts is not None and output.dataset_parts[0].num_rows == 2
    with pytest.raises(cohere.BadRequestError):
        client.batches.cancel(id=created.batch.id)


def test_list_pages_with_page_tokens_newest_first(
    client: cohere.ClientV2, emulator: Emulator, server: EmulatorServer, tmp_path: Path
) -> None:
    dataset_id = upload(client, emulator, write_input(tmp_path / "in.jsonl", "a"))
    made = []
    for i in range(5):
        request = Batch(name=f"b{i}", input_dataset_id=dataset_id, model=MODEL)
        made.append(client.batches.create(request=request).batch.id)
        emulator.advance(1)
    seen: list[str] = []
    token = None
    while True:
        page = client.batches.list(page_size=2, page_token=token)
        assert isinstance(page, ListBatchesResponse) and page.batches is not None
        assert len(page.batches) <= 2
        seen.extend(b.id for b in page.batches if b.id)
        token = page.next_page_token
        if not token:
            break
    assert seen == made[::-1]
    strict(ListBatchesResponse, raw(server, "/v2/batches", page_size=2))


def test_a_bad_dataset_fails_validation_and_cannot_feed_a_batch(
    client: cohere.ClientV2, emulator: Emulator, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "a", "body": {"messages": []}}\n{"custom_id": "a"}\n')
    with open(bad, "rb") as fh:
        created = client.datasets.create(name="bad", type="batch-openai-chat-input", data=fh)
    emulator.advance(2)
    with pytest.raises(Exception, match="line 2"):
        client.wait(created, interval=0.01)
    with pytest.raises(cohere.BadRequestError):
        client.batches.create(
            request=Batch(name="x", input_dataset_id=created.id or "", model=MODEL)
        )


def test_async_client_and_wrong_key(
    server: EmulatorServer, emulator: Emulator, tmp_path: Path
) -> None:
    async def flow() -> str:
        sdk = cohere.AsyncClientV2(api_key=KEY, base_url=server.url("cohere"))
        listing = await sdk.batches.list(page_size=10)
        assert isinstance(listing, ListBatchesResponse)
        with open(write_input(tmp_path / "in.jsonl", "async"), "rb") as fh:
            created = await sdk.datasets.create(
                name="async", type="batch-openai-chat-input", data=fh
            )
        emulator.advance(2)
        done = await sdk.datasets.get(id=created.id or "")
        await sdk._client_wrapper.httpx_client.httpx_client.aclose()
        return str(done.dataset.validation_status)

    assert asyncio.run(flow()) == "validated"
    locked = Emulator([CohereDialect], config=EmulatorConfig(api_key="right"), clock=ManualClock())
    with serve(host="127.0.0.1", port=0, emulator=locked) as other:
        sdk = cohere.ClientV2(api_key="wrong", base_url=other.url("cohere"))
        with pytest.raises(cohere.UnauthorizedError):
            sdk.batches.list()
        sdk._client_wrapper.httpx_client.httpx_client.close()
