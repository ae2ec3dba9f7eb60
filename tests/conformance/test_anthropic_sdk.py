"""Conformance: the official ``anthropic`` SDK drives the emulator over a real socket.

Create, retrieve until ended, list (auto-paginated), cancel, results and delete all go
through ``anthropic.Anthropic`` pointed at ``http://127.0.0.1:PORT/anthropic``. Every answer
must parse into the SDK's own types (``MessageBatch``, ``MessageBatchIndividualResponse``,
``Message``, ``DeletedMessageBatch``) with every required field present and no field the SDK
does not know. The requests the SDK sent are compared with the recording of the same SDK
version in ``../shared/specs/sdk-requests/anthropic.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pydantic
import pytest
from anthropic.types import Message
from anthropic.types.messages import (
    DeletedMessageBatch,
    MessageBatch,
    MessageBatchIndividualResponse,
)

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_anthropic.dialect import AnthropicDialect

RECORDING = (
    Path(__file__).parents[2].parent / "shared" / "specs" / "sdk-requests" / ("anthropic.json")
)
KEY = "sk-ant-conformance-key"


def strict(model_type: type[pydantic.BaseModel], data: Any) -> Any:
    """Validate ``data`` as ``model_type`` and refuse fields the SDK does not know."""
    model = model_type.model_validate(data)
    _no_extra(model, model_type.__name__)
    return model


def _no_extra(value: Any, where: str) -> None:
    if isinstance(value, pydantic.BaseModel):
        extra = value.model_extra or {}
        assert not extra, f"{where}: fields unknown to the SDK: {sorted(extra)}"
        for name in type(value).model_fields:
            _no_extra(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_extra(item, f"{where}[{i}]")


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(
        seed=11,
        validating_seconds=1,
        requests_per_second=2,
        finalizing_seconds=1,
        cancelling_seconds=1,
    )
    return Emulator([AnthropicDialect], config=config, clock=ManualClock())


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(host="127.0.0.1", port=0, emulator=emulator) as running:
        yield running


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    sdk = anthropic.Anthropic(api_key=KEY, base_url=server.url("anthropic"), max_retries=0)
    yield sdk
    sdk.close()


def requests(*texts: str) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"req-{i}",
            "params": {
                "model": "claude-sonnet-4-5",
                "max_tokens": 32,
                "messages": [{"role": "user", "content": text}],
            },
        }
        for i, text in enumerate(texts)
    ]


def retrieve_until_ended(
    client: anthropic.Anthropic, emulator: Emulator, batch_id: str
) -> MessageBatch:
    for _ in range(100):
        raw = client.messages.batches.with_raw_response.retrieve(batch_id)
        batch: MessageBatch = strict(MessageBatch, orjson.loads(raw.http_response.content))
        assert raw.parse() == batch
        if batch.processing_status == "ended":
            return batch
        emulator.advance(0.5)
    pytest.fail(f"{batch_id} did not end")


def test_the_whole_lifecycle_parses_into_sdk_types(
    client: anthropic.Anthropic, emulator: Emulator, server: EmulatorServer
) -> None:
    created = client.messages.batches.create(
        requests=requests("Hello, world", "Hi again [[emulator:error]]", "Third")  # type: ignore[arg-type]
    )
    assert isinstance(created, MessageBatch)
    assert created.processing_status == "in_progress" and created.results_url is None
    assert created.request_counts.processing == 3

    ended = retrieve_until_ended(client, emulator, created.id)
    assert ended.ended_at is not None and ended.request_counts.succeeded == 2
    assert ended.request_counts.errored == 1
    assert (
        ended.results_url == f"{server.url('anthropic')}/v1/messages/batches/{created.id}/results"
    )

    results = list(client.messages.batches.results(created.id))
    assert all(isinstance(r, MessageBatchIndividualResponse) for r in results)
    by_id = {r.custom_id: r.result for r in results}
    assert set(by_id) == {"req-0", "req-1", "req-2"}
    ok = by_id["req-0"]
    assert ok.type == "succeeded" and isinstance(ok.message, Message)
    assert ok.message.content[0].type == "text" and ok.message.usage.output_tokens > 0
    failed = by_id["req-1"]
    assert failed.type == "errored"
    assert failed.error.error.type == "invalid_request_error"
    # The raw lines, strictly, as they came over the wire.
    assert ended.results_url is not None
    with httpx.Client(headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}) as http:
        lines = http.get(ended.results_url).content.splitlines()
    assert len(lines) == 3
    for line in lines:
        strict(MessageBatchIndividualResponse, orjson.loads(line))

    deleted = client.messages.batches.delete(created.id)
    assert isinstance(deleted, DeletedMessageBatch) and deleted.id == created.id
    with pytest.raises(anthropic.NotFoundError) as gone:
        client.messages.batches.retrieve(created.id)
    assert gone.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_cancel_gives_canceled_results(client: anthropic.Anthropic, emulator: Emulator) -> None:
    batch = client.messages.batches.create(requests=requests(*["x"] * 6))  # type: ignore[arg-type]
    emulator.advance(2.1)  # validation, then two requests a second: two have run
    canceling = client.messages.batches.cancel(batch.id)
    assert isinstance(canceling, MessageBatch)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at
    ended = retrieve_until_ended(client, emulator, batch.id)
    assert ended.request_counts.canceled == 4 and ended.request_counts.succeeded == 2
    kinds = sorted(r.result.type for r in client.messages.batches.results(batch.id))
    assert kinds == ["canceled"] * 4 + ["succeeded"] * 2


def test_list_auto_paginates_newest_first(client: anthropic.Anthropic, emulator: Emulator) -> None:
    made = []
    for i in range(3):
        made.append(client.messages.batches.create(requests=requests(f"n{i}")).id)  # type: ignore[arg-type]
        emulator.advance(1)
    page = client.messages.batches.list(limit=2)
    assert all(isinstance(b, MessageBatch) for b in page.data) and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == made[::-1]


def test_wrong_key_is_the_sdk_s_authentication_error() -> None:
    locked = Emulator(
        [AnthropicDialect], config=EmulatorConfig(api_key="right"), clock=ManualClock()
    )
    with serve(host="127.0.0.1", port=0, emulator=locked) as other:
        sdk = anthropic.Anthropic(api_key="wrong", base_url=other.url("anthropic"), max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as denied:
            sdk.messages.batches.list()
        assert denied.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        sdk.close()


def test_the_sdk_sends_what_its_recording_says(
    client: anthropic.Anthropic, emulator: Emulator
) -> None:
    if not RECORDING.exists():
        pytest.skip(f"reference material {RECORDING} is absent (../shared lives beside the repo)")
    recorded = orjson.loads(RECORDING.read_bytes())
    batch = client.messages.batches.create(requests=requests("a"))  # type: ignore[arg-type]
    client.messages.batches.retrieve(batch.id)
    client.messages.batches.cancel(batch.id)
    seen = list(emulator.stats.requests)
    assert [(r.method, r.path.removeprefix("/anthropic")) for r in seen] == [
        ("POST", "/v1/messages/batches"),
        ("GET", f"/v1/messages/batches/{batch.id}"),
        ("POST", f"/v1/messages/batches/{batch.id}/cancel"),
    ]
    want = {k.lower(): v for k, v in recorded[0]["request"]["headers"].items()}
    for record in seen:
        got = {k.lower(): v for k, v in record.headers.items()}
        assert got["anthropic-version"] == want["anthropic-version"]
        assert got["authorization"] == "<redacted>" and "x-api-key" not in got
