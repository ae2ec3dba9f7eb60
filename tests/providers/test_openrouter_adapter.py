"""The OpenRouter adapter: the create body's key order, its options, no cancel, cost kept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from omnibatch import (
    AsyncBatchClient,
    BatchClient,
    BatchStatus,
    ConfigurationError,
    UnsupportedOperation,
    UnsupportedOperationError,
)
from omnibatch.adapter import CreateSpec, InputPart, InputRef
from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock
from omnibatch_openrouter.adapter import OpenRouterAdapter
from omnibatch_openrouter.dialect import OpenRouterDialect

BASE = "http://emulator.test/openrouter/api/v1"
MODEL = "anthropic/claude-sonnet-4.5"


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(seed=5, validating_seconds=1, requests_per_second=4)
    return Emulator([OpenRouterDialect], config=config, clock=ManualClock())


def lines(count: int, model: str = MODEL) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"r-{i}",
            "body": {"model": model, "messages": [{"role": "user", "content": f"question {i}"}]},
        }
        for i in range(count)
    ]


def create_body(tmp_path: Path, spec: CreateSpec, adapter: OpenRouterAdapter) -> bytes:
    part_path = tmp_path / "part.jsonl"
    part_path.write_bytes(
        b"".join(
            orjson.dumps(adapter.encode_line(f"c{i}", "/v1/chat/completions", {"x": i})) + b"\n"
            for i in range(3)
        )
    )
    part = InputPart(part_path, 0, 3, part_path.stat().st_size, "/v1/chat/completions", MODEL)
    flow = adapter.create(InputRef(part=part), spec)
    request = next(flow)
    assert request.method == "POST" and request.path == "/batches"
    assert isinstance(request.content, bytes)
    return request.content


def test_endpoint_model_and_callback_url_come_before_requests(tmp_path: Path) -> None:
    adapter = OpenRouterAdapter(
        api_key="k",
        options={"provider": {"only": ["anthropic"], "allow_fallbacks": False}},
    )
    spec = CreateSpec(
        endpoint="/v1/chat/completions",
        model=MODEL,
        options={"callback_url": "https://example.com/hook"},
    )
    content = create_body(tmp_path, spec, adapter)
    body = orjson.loads(content)
    keys = list(body)
    assert keys[:3] == ["endpoint", "model", "callback_url"] and keys[-1] == "requests"
    assert body["provider"] == {"only": ["anthropic"], "allow_fallbacks": False}
    assert body["completion_window"] == "24h"
    assert body["requests"] == [{"custom_id": f"c{i}", "body": {"x": i}} for i in range(3)]


@pytest.mark.parametrize(
    "options",
    [
        {"callback_url": "http://plain.example.com/hook"},
        {"provider": {"order": ["openai"]}},
        {"provider": {"only": "openai"}},
        {"provider": {"allow_fallbacks": "no"}},
    ],
)
def test_bad_options_are_configuration_errors(tmp_path: Path, options: dict[str, Any]) -> None:
    adapter = OpenRouterAdapter(api_key="k", options=options)
    with pytest.raises(ConfigurationError, match="openrouter option"):
        create_body(tmp_path, CreateSpec(endpoint="/v1/chat/completions", model=MODEL), adapter)


def test_options_reach_the_service_and_cost_is_kept(emulator: Emulator) -> None:
    options = {
        "callback_url": "https://example.com/hook",
        "provider": {"only": ["anthropic"]},
    }
    with BatchClient(
        "openrouter",
        api_key="k",
        base_url=BASE,
        transport=emulator.transport(),
        sleep=emulator.advance,
        options=options,
    ) as client:
        batch = client.submit(lines(3))
        stored = emulator.engine.get_batch(batch.id)
        assert stored is not None and stored.extra["callback_url"] == options["callback_url"]
        assert stored.extra["provider"] == {"only": ["anthropic"]}
        assert stored.model == MODEL
        done = client.wait(batch.id)
        assert done.status is BatchStatus.SUCCEEDED
        assert done.usage is not None and done.usage.cost is not None and done.usage.cost > 0
        results = list(client.results(batch.id))
        assert {r.custom_id for r in results} == {"r-0", "r-1", "r-2"}
        assert all(r.ok and r.usage and r.usage.input_tokens for r in results)
        assert done.usage.input_tokens == sum(r.usage.input_tokens or 0 for r in results if r.usage)
        # No cancel: a clear error and nothing sent.
        sent = len(emulator.stats.requests)
        with pytest.raises(UnsupportedOperation, match="cannot be cancelled"):
            client.cancel(batch.id)
        assert len(emulator.stats.requests) == sent
        client.delete_batch(batch.id)
        assert emulator.engine.get_batch(batch.id) is None


def test_async_cancel_is_the_same_clear_error(emulator: Emulator) -> None:
    async def attempt() -> None:
        async with AsyncBatchClient(
            "openrouter", api_key="k", base_url=BASE, transport=emulator.transport()
        ) as client:
            await client.cancel("batch_x")

    with pytest.raises(UnsupportedOperationError, match="openrouter"):
        asyncio.run(attempt())
    assert UnsupportedOperation is UnsupportedOperationError


def test_a_second_model_in_one_batch_is_refused_before_sending(emulator: Emulator) -> None:
    from omnibatch import InputValidationError

    mixed = [*lines(2), *lines(1, model="openai/gpt-4o")]
    mixed[2]["custom_id"] = "other"
    with (
        BatchClient(
            "openrouter", api_key="k", base_url=BASE, transport=emulator.transport()
        ) as client,
        pytest.raises(InputValidationError, match="one model per batch"),
    ):
        client.submit(mixed)
    assert len(emulator.stats.requests) == 0


def test_a_model_mismatch_the_service_finds_fails_the_batch(emulator: Emulator) -> None:
    import httpx

    body = {
        "endpoint": "/v1/chat/completions",
        "model": MODEL,
        "requests": lines(1, model="openai/gpt-4o"),
    }
    with httpx.Client(
        transport=emulator.transport(), base_url=BASE, headers={"Authorization": "Bearer k"}
    ) as http:
        created = http.post("/batches", json=body)
        assert created.status_code == 202
        emulator.advance(5)
        batch = OpenRouterAdapter().parse_batch(http.get(f"/batches/{created.json()['id']}").json())
    assert batch.status is BatchStatus.FAILED
    assert batch.errors and "one model" in batch.errors[0].message
