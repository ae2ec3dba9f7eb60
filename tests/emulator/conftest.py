"""Fixtures for the emulator tests: an emulator on a manual clock, httpx clients wired to
it in process, and the same emulator on a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_mistral.dialect import MistralDialect
from omnibatch_openai.dialect import OpenAIDialect

from ._support import AUTH, jsonl

DIALECTS = (OpenAIDialect, MistralDialect)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(seed=7)


@pytest.fixture
def emulator(clock: ManualClock, config: EmulatorConfig) -> Emulator:
    return Emulator(DIALECTS, config=config, clock=clock)


@pytest.fixture
def oai(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=emulator.transport(), base_url="http://emulator/openai/v1", headers=AUTH
    ) as client:
        yield client


@pytest.fixture
def mis(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=emulator.transport(), base_url="http://emulator/mistral/v1", headers=AUTH
    ) as client:
        yield client


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(emulator=emulator) as running:
        yield running


@pytest.fixture
def openai_batch(oai: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Upload ``lines`` (JSONL bytes or a list of objects) and create a batch."""

    def make(
        lines: bytes | Sequence[Any],
        *,
        endpoint: str = "/v1/chat/completions",
        metadata: dict[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> dict[str, Any]:
        c = client or oai
        data = lines if isinstance(lines, bytes) else jsonl(lines)
        up = c.post("/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", data)})
        assert up.status_code == 200, up.text
        body: dict[str, Any] = {
            "input_file_id": up.json()["id"],
            "endpoint": endpoint,
            "completion_window": "24h",
        }
        if metadata is not None:
            body["metadata"] = metadata
        created = c.post("/batches", json=body)
        assert created.status_code == 200, created.text
        result: dict[str, Any] = created.json()
        return result

    return make


@pytest.fixture
def mistral_job(mis: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Upload ``lines`` (JSONL bytes or a list of objects) and create a Mistral job."""

    def make(
        lines: bytes | Sequence[Any],
        *,
        endpoint: str = "/v1/chat/completions",
        model: str = "mistral-small-latest",
        metadata: dict[str, str] | None = None,
        timeout_hours: int = 24,
    ) -> dict[str, Any]:
        data = lines if isinstance(lines, bytes) else jsonl(lines)
        up = mis.post("/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", data)})
        assert up.status_code == 200, up.text
        created = mis.post(
            "/batch/jobs",
            json={
                "endpoint": endpoint,
                "input_files": [up.json()["id"]],
                "model": model,
                "metadata": metadata,
                "timeout_hours": timeout_hours,
            },
        )
        assert created.status_code == 200, created.text
        result: dict[str, Any] = created.json()
        return result

    return make
