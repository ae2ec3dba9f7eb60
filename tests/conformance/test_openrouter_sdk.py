"""Conformance: the official ``openrouter`` SDK drives the emulator over a real socket.

Create (inline requests, ``provider`` routing), get until ended with the results inline, list
(paginated with the SDK's own ``next()``, filtered by status and creation time), delete, and
the errors (401, 404, 409, and 400 for a body whose ``requests`` come before ``callback_url``)
all go through ``openrouter.OpenRouter`` pointed at ``http://127.0.0.1:PORT/openrouter/api/v1``.
Every answer must parse into the SDK's own types (``BatchObject``, ``BatchListResponse``,
``BatchDeletedObject``, ``BatchErrorResponseData``) with no field the SDK does not know.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from openrouter import OpenRouter, components, errors
from tests.conformance.sdk_types import strict

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_openrouter.dialect import OpenRouterDialect

KEY = "sk-or-v1-conformance-key"
MODEL = "openai/gpt-4o-mini"


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(
        seed=17,
        validating_seconds=1,
        requests_per_second=2,
        finalizing_seconds=1,
        cancelling_seconds=1,
    )
    return Emulator([OpenRouterDialect], config=config, clock=ManualClock())


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(host="127.0.0.1", port=0, emulator=emulator) as running:
        yield running


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[OpenRouter]:
    sdk = OpenRouter(api_key=KEY, server_url=server.url("openrouter"))
    yield sdk
    sdk.sdk_configuration.client.close()  # type: ignore[union-attr]


def chat(*texts: str) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"req-{i}",
            "body": {
                "model": MODEL,
                "max_tokens": 32,
                "messages": [{"role": "user", "content": text}],
            },
        }
        for i, text in enumerate(texts)
    ]


def raw_get(server: EmulatorServer, path: str, **params: Any) -> Any:
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        return http.get(server.url("openrouter") + path, params=params).json()


def get_until_ended(
    client: OpenRouter, emulator: Emulator, server: EmulatorServer, batch_id: str
) -> components.BatchObject:
    for _ in range(100):
        batch = client.batch.get_batches(id=batch_id)
        assert isinstance(batch, components.BatchObject)
        strict(components.BatchObject, raw_get(server, f"/batches/{batch_id}"))
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        emulator.advance(0.5)
    pytest.fail(f"{batch_id} did not end")


def test_create_get_results_and_delete_parse_into_sdk_types(
    client: OpenRouter, emulator: Emulator, server: EmulatorServer
) -> None:
    created = client.batch.create_batches(
        endpoint="/v1/chat/completions",
        model=MODEL,
        requests=chat("Hello, world", "Hi again [[emulator:error]]", "Third"),  # type: ignore[arg-type]
        provider={"only": ["openai"], "allow_fallbacks": False},
    )
    assert isinstance(created, components.BatchObject)
    assert created.status == "validating" and created.results is None
    assert created.request_counts.total == 3 and created.model == MODEL

    # Deleting before the end is refused, as the service does.
    with pytest.raises(errors.BatchErrorResponse) as early:
        client.batch.delete(id=created.id)
    assert early.value.raw_response.status_code == 409
    assert early.value.data.error.code == 409

    ended = get_until_ended(client, emulator, server, created.id)
    assert ended.status == "completed" and ended.finalized_at is not None
    assert ended.request_counts.completed == 2 and ended.request_counts.failed == 1
    assert ended.usage is not None and isinstance(ended.usage.cost, float) and ended.usage.cost > 0
    assert ended.results is not None
    by_id = {r.custom_id: r for r in ended.results}
    assert set(by_id) == {"req-0", "req-1", "req-2"}
    ok = by_id["req-0"]
    assert ok.error is None and ok.response is not None and ok.response.status_code == 200
    body = ok.response.body
    assert isinstance(body, components.BodyChatCompletion)
    assert body.choices[0].message.content and body.usage is not None
    assert body.usage.prompt_tokens > 0
    failed = by_id["req-1"]
    assert failed.response is None and isinstance(failed.error, components.ResultError)
    assert "[[emulator:error]]" in failed.error.message

    deleted = client.batch.delete(id=created.id)
    assert isinstance(deleted, components.BatchDeletedObject)
    assert deleted.id == created.id and deleted.deletion.openrouter == "deleted"
    with pytest.raises(errors.BatchErrorResponse) as gone:
        client.batch.get_batches(id=created.id)
    assert gone.value.raw_response.status_code == 404


def test_embeddings_results_carry_their_cost(
    client: OpenRouter, emulator: Emulator, server: EmulatorServer
) -> None:
    created = client.batch.create_batches(
        endpoint="/v1/embeddings",
        model="openai/text-embedding-3-small",
        requests=[{"custom_id": "e-0", "body": {"input": "a sentence to embed"}}],
    )
    ended = get_until_ended(client, emulator, server, created.id)
    assert ended.results is not None and len(ended.results) == 1
    response = ended.results[0].response
    assert response is not None and isinstance(response.body, components.BodyList)
    assert response.body.data[0].embedding
    assert response.body.usage.cost is not None and response.body.usage.cost > 0


def test_list_pages_with_the_sdk_s_next_and_filters(
    client: OpenRouter, emulator: Emulator, server: EmulatorServer
) -> None:
    made = []
    for i in range(5):
        made.append(
            client.batch.create_batches(
                endpoint="/v1/chat/completions",
                model=MODEL,
                requests=chat(f"n{i}"),  # type: ignore[arg-type]
            ).id
        )
        emulator.advance(1)
    page = client.batch.list(limit=2)
    seen: list[str] = []
    while page is not None:
        assert isinstance(page.result, components.BatchListResponse)
        assert len(page.result.data) <= 2
        seen.extend(b.id for b in page.result.data)
        page = page.next()
    assert seen == made[::-1], "every batch once, newest first"
    listing = raw_get(server, "/batches", limit=100)
    strict(components.BatchListResponse, listing)
    assert all(item["results"] is None for item in listing["data"]), "listings carry no results"

    emulator.advance(60)  # every batch has ended
    done = client.batch.list(limit=100, status=["completed"])
    assert done is not None and {b.id for b in done.result.data} == set(made)
    none = client.batch.list(limit=100, status=["failed", "expired"])
    assert none is not None and none.result.data == []
    later = client.batch.list(limit=100, created_after="2999-01-01T00:00:00Z")
    assert later is not None and later.result.data == []


def test_async_client_runs_the_same_flow(emulator: Emulator, server: EmulatorServer) -> None:
    import asyncio

    async def flow() -> components.BatchObject:
        async with OpenRouter(api_key=KEY, server_url=server.url("openrouter")) as sdk:
            created = await sdk.batch.create_batches_async(
                endpoint="/v1/chat/completions",
                model=MODEL,
                requests=chat("async"),  # type: ignore[arg-type]
            )
            emulator.advance(30)
            return await sdk.batch.get_batches_async(id=created.id)

    ended = asyncio.run(flow())
    assert ended.status == "completed" and ended.results and ended.results[0].response


def test_requests_before_endpoint_model_or_callback_url_are_refused(
    client: OpenRouter, server: EmulatorServer
) -> None:
    # openrouter 1.3.84 serializes callback_url after requests, although its own docstring
    # says it must come first: the service (and so the emulator) refuses that body.
    with pytest.raises(errors.BatchErrorResponse) as refused:
        client.batch.create_batches(
            endpoint="/v1/chat/completions",
            model=MODEL,
            requests=chat("x"),  # type: ignore[arg-type]
            callback_url="https://example.com/hook",
        )
    assert refused.value.raw_response.status_code == 400
    assert "callback_url must appear before requests" in refused.value.data.error.message
    strict(errors.BatchErrorResponseData, orjson.loads(refused.value.raw_response.content))

    url = server.url("openrouter") + "/batches"
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    requests_first = (
        b'{"requests":'
        + orjson.dumps(chat("x"))
        + b',"endpoint":"/v1/chat/completions","model":"m"}'
    )
    in_order = (
        b'{"endpoint":"/v1/chat/completions","model":"m","callback_url":"https://example.com/h",'
        b'"requests":' + orjson.dumps(chat("x")) + b"}"
    )
    with httpx.Client(headers=headers) as http:
        bad = http.post(url, content=requests_first)
        good = http.post(url, content=in_order)
    assert (
        bad.status_code == 400 and "endpoint, model must appear" in bad.json()["error"]["message"]
    )
    assert good.status_code == 202
    strict(components.BatchObject, good.json())


def test_limits_and_wrong_key_are_the_sdk_s_errors(server: EmulatorServer) -> None:
    locked = Emulator(
        [OpenRouterDialect], config=EmulatorConfig(api_key="right"), clock=ManualClock()
    )
    with serve(host="127.0.0.1", port=0, emulator=locked) as other:
        sdk = OpenRouter(api_key="wrong", server_url=other.url("openrouter"))
        with pytest.raises(errors.BatchErrorResponse) as denied:
            sdk.batch.list()
        assert denied.value.raw_response.status_code == 401
        sdk = OpenRouter(api_key="right", server_url=other.url("openrouter"))
        with pytest.raises(errors.BatchErrorResponse) as too_many:
            sdk.batch.create_batches(
                endpoint="/v1/chat/completions",
                model=MODEL,
                requests=[{"custom_id": f"r{i}", "body": {"messages": []}} for i in range(5_001)],
            )
        assert too_many.value.raw_response.status_code == 400
        assert "at most 5000" in too_many.value.data.error.message
