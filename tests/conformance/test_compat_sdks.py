"""Conformance: official SDKs drive the OpenAI-compatible providers' emulator dialects over a
real socket, through the whole flow: upload, create, retrieve to a terminal status, list,
cancel, download results, delete files.

``AzureOpenAI`` (dated ``api-version`` paths, ``api-key`` header) and the ``openai`` client on
Azure's ``/openai/v1`` paths; the ``groq`` SDK (``/openai/v1`` prefix, 7-day window, audio
lines); the ``openai`` SDK with DeepInfra's and DashScope's base URLs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import groq
import openai
import orjson
import pytest

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_azure.dialect import AzureDialect
from omnibatch_dashscope.dialect import DashScopeDialect
from omnibatch_deepinfra.dialect import DeepInfraDialect
from omnibatch_groq.dialect import GroqDialect

EXAMPLES = Path(__file__).parents[2].parent / "shared" / "specs" / "examples"
TERMINAL = {"completed", "failed", "expired", "cancelled"}
KEY = "compat-key-5d1e"


@pytest.fixture
def emulator() -> Emulator:
    dialects = [AzureDialect, GroqDialect, DeepInfraDialect, DashScopeDialect]
    return Emulator(dialects, EmulatorConfig(seed=5, api_key=KEY), ManualClock())


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(emulator=emulator) as running:
        yield running


@dataclass
class Case:
    name: str
    make: Callable[[str], Any]
    model: str
    url: str = "/v1/chat/completions"
    window: str = "24h"


CASES = [
    Case(
        "azure-dated",
        lambda root: openai.AzureOpenAI(
            azure_endpoint=f"{root}/azure", api_version="2024-10-21", api_key=KEY
        ),
        "gpt-4o-mini-batch",
    ),
    Case(
        "azure-v1",
        lambda root: openai.OpenAI(base_url=f"{root}/azure/openai/v1", api_key=KEY),
        "gpt-4o-mini-batch",
        url="/chat/completions",
    ),
    Case(
        "groq",
        lambda root: groq.Groq(base_url=f"{root}/groq", api_key=KEY),
        "llama-3.1-8b-instant",
        window="7d",
    ),
    Case(
        "deepinfra",
        lambda root: openai.OpenAI(base_url=f"{root}/deepinfra/v1/openai", api_key=KEY),
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
    ),
    Case(
        "dashscope",
        lambda root: openai.OpenAI(base_url=f"{root}/dashscope/compatible-mode/v1", api_key=KEY),
        "qwen-plus",
    ),
]


def jsonl(n: int, model: str, url: str, fail: tuple[int, ...] = ()) -> bytes:
    lines = []
    for i in range(n):
        text = f"Question {i}?" + (" [[emulator:error]]" if i in fail else "")
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        lines.append(
            orjson.dumps({"custom_id": f"r-{i}", "method": "POST", "url": url, "body": body})
        )
    return b"\n".join(lines) + b"\n"


def wait(client: Any, emulator: Emulator, batch_id: str) -> Any:
    for _ in range(1000):
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        emulator.advance(0.5)
    raise AssertionError("the batch never finished")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_official_sdk_runs_the_whole_flow(
    case: Case, server: EmulatorServer, emulator: Emulator
) -> None:
    client = case.make(server.base_url)
    uploaded = client.files.create(
        file=("input.jsonl", jsonl(6, case.model, case.url, fail=(2,))), purpose="batch"
    )
    assert uploaded.id.startswith("file-") and uploaded.purpose == "batch"
    files = client.files
    info = files.info(uploaded.id) if isinstance(client, groq.Groq) else files.retrieve(uploaded.id)
    assert info.bytes == uploaded.bytes
    created = client.batches.create(
        input_file_id=uploaded.id,
        endpoint=case.url,
        completion_window=case.window,
        metadata={"job": "compat"},
    )
    assert created.status == "validating" and created.metadata == {"job": "compat"}
    done = wait(client, emulator, created.id)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed) == (6, 5)
    assert done.request_counts.failed == 1

    output = client.files.content(done.output_file_id).read()
    errors = client.files.content(done.error_file_id).read()
    out_lines = [orjson.loads(line) for line in output.splitlines()]
    err_lines = [orjson.loads(line) for line in errors.splitlines()]
    assert sorted(x["custom_id"] for x in out_lines) == ["r-0", "r-1", "r-3", "r-4", "r-5"]
    assert [x["custom_id"] for x in err_lines] == ["r-2"]
    assert out_lines[0]["response"]["body"]["model"] == case.model

    second = client.batches.create(
        input_file_id=uploaded.id, endpoint=case.url, completion_window=case.window
    )
    cancelled = client.batches.cancel(second.id)
    assert cancelled.status in ("cancelling", "cancelled")
    assert wait(client, emulator, second.id).status == "cancelled"

    listed = [b.id for b in client.batches.list().data]
    assert listed[:2] == [second.id, created.id]  # newest first

    assert client.files.delete(uploaded.id).deleted is True
    names = {f.id for f in client.files.list().data}
    assert uploaded.id not in names and done.output_file_id in names
    client.close()


def test_a_wrong_key_is_refused_the_way_each_sdk_reports_it(server: EmulatorServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.AzureOpenAI(
            azure_endpoint=f"{server.base_url}/azure", api_version="2024-10-21", api_key="nope"
        ).batches.list()
    with pytest.raises(groq.AuthenticationError):
        groq.Groq(base_url=f"{server.base_url}/groq", api_key="nope").batches.list()


def test_azure_dated_paths_need_an_api_version(server: EmulatorServer) -> None:
    import httpx

    answer = httpx.get(f"{server.base_url}/azure/openai/batches", headers={"api-key": KEY})
    assert answer.status_code == 404
    answer = httpx.get(
        f"{server.base_url}/azure/openai/batches?api-version=2024-10-21", headers={"api-key": KEY}
    )
    assert answer.status_code == 200 and answer.json()["object"] == "list"


def test_groq_takes_windows_up_to_seven_days_and_audio_lines(
    server: EmulatorServer, emulator: Emulator
) -> None:
    client = groq.Groq(base_url=f"{server.base_url}/groq", api_key=KEY)
    body = {"model": "whisper-large-v3", "url": "https://example.com/a.mp3", "language": "en"}
    line = {"custom_id": "a-1", "method": "POST", "url": "/v1/audio/transcriptions", "body": body}
    file = client.files.create(file=("audio.jsonl", orjson.dumps(line) + b"\n"), purpose="batch")
    with pytest.raises(groq.BadRequestError, match="completion_window"):
        client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="8d"
        )
    batch = client.batches.with_raw_response.create(
        input_file_id=file.id,
        endpoint="/v1/audio/transcriptions",  # type: ignore[arg-type]  # newer than the SDK enum
        completion_window="72h",
    ).parse()
    done = wait(client, emulator, batch.id)
    assert done.status == "completed" and done.request_counts.completed == 1
    result = orjson.loads(client.files.content(done.output_file_id).read())
    assert isinstance(result["response"]["body"]["text"], str)


def test_groq_golden_input_is_accepted(server: EmulatorServer, emulator: Emulator) -> None:
    path = EXAMPLES / "groq" / "batch_input.jsonl"
    if not path.is_file():
        pytest.skip(f"reference material {path} is absent (../shared lives beside the repo)")
    client = groq.Groq(base_url=f"{server.base_url}/groq", api_key=KEY)
    file = client.files.create(file=("batch_input.jsonl", path.read_bytes()), purpose="batch")
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert wait(client, emulator, batch.id).status == "completed"
