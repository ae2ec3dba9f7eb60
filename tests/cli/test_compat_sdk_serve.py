"""The official ``AzureOpenAI`` and ``groq`` clients run the whole batch flow against a real
``omnibatch emulator serve`` process (upload, create, retrieve to the end, list, cancel,
results, delete)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import groq
import openai
import orjson
import pytest

from .conftest import EmulatorProcess, start_emulator

KEY = "serve-key-8c2a"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    server = start_emulator(
        tmp_path_factory.mktemp("compat-serve"), "--speed", "1", "--api-key", KEY
    )
    yield server
    server.stop()


def _jsonl(model: str) -> bytes:
    lines = [
        {
            "custom_id": f"q-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"hello {i}"}]},
        }
        for i in range(3)
    ]
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def _until(get: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        value = get()
        if done(value):
            return value
        time.sleep(0.05)
    raise AssertionError("the served emulator never finished the batch")


CLIENTS = {
    "AzureOpenAI": lambda root: openai.AzureOpenAI(
        azure_endpoint=f"{root}/azure", api_version="2024-10-21", api_key=KEY
    ),
    "groq": lambda root: groq.Groq(base_url=f"{root}/groq", api_key=KEY),
}


@pytest.mark.parametrize("sdk", sorted(CLIENTS))
def test_official_client_against_omnibatch_emulator_serve(
    sdk: str, served: EmulatorProcess, tmp_path: Path
) -> None:
    client = CLIENTS[sdk](served.root)
    file = client.files.create(file=("in.jsonl", _jsonl("model-x")), purpose="batch")
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    finished = _until(
        lambda: client.batches.retrieve(batch.id), lambda b: b.status in ("completed", "failed")
    )
    assert finished.status == "completed" and finished.request_counts.completed == 3
    content = client.files.content(finished.output_file_id).read()
    assert sorted(orjson.loads(x)["custom_id"] for x in content.splitlines()) == [
        "q-0",
        "q-1",
        "q-2",
    ]
    other = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(other.id).status in ("cancelling", "cancelled")
    _until(lambda: client.batches.retrieve(other.id), lambda b: b.status == "cancelled")
    listed = [b.id for b in client.batches.list().data]
    assert batch.id in listed and other.id in listed
    assert client.files.delete(file.id).deleted is True
    client.close()
