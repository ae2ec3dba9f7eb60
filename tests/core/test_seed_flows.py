"""The flows of the guides omnibatch started from, on the in-process emulator, sync and async.

OpenAI guide: create with metadata, list with limit/after, retrieve, cancel to cancelled with
partial results, read the output, a bad input file rejected. Mistral guide: list with page_size,
create with input_files/model/endpoint/metadata, cancel, retrieve, download results.
PowerShell guide: items with and without custom ids, start, wait, output by custom id, remove
files.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from omnibatch import (
    AsyncBatchClient,
    BatchClient,
    BatchStatus,
    InputValidationError,
    NotFoundError,
    ProviderStatusError,
    ResultStatus,
)
from omnibatch._plugins import get_registry
from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock

pytestmark = pytest.mark.anyio

ROOT = "http://emulator.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emulator() -> Emulator:
    # 10 requests per simulated second, so tests can stop a batch half-way.
    return Emulator(config=EmulatorConfig(requests_per_second=10.0, seed=3), clock=ManualClock())


@pytest.fixture(params=["sync", "async"])
def make_client(
    request: pytest.FixtureRequest, emulator: Emulator, tmp_path: Path
) -> Iterator[Callable[[str], Any]]:
    made: list[Any] = []

    def make(provider: str) -> Any:
        prefix = get_registry().provider(provider).emulator_prefix
        kwargs = dict(api_key="test-key", base_url=ROOT + prefix, transport=emulator.transport())
        if request.param == "sync":
            client: Any = BatchClient(provider, sleep=emulator.advance, **kwargs)
        else:

            async def sleep(seconds: float) -> None:
                emulator.advance(seconds)

            client = AsyncBatchClient(provider, sleep=sleep, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        if isinstance(client, BatchClient):
            client.close()


async def call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def collect(iterable: Iterator[Any] | AsyncIterator[Any]) -> list[Any]:
    if isinstance(iterable, AsyncIterator):
        return [item async for item in iterable]
    return list(iterable)


def chat_lines(
    n: int, model: str = "gpt-4o-mini", prefix: str = "request-"
) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"{prefix}{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": f"Question {i}: what is {i}+{i}?"},
                ],
            },
        }
        for i in range(1, n + 1)
    ]


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


async def test_openai_guide(
    make_client: Callable[[str], Any], emulator: Emulator, tmp_path: Path
) -> None:
    client = make_client("openai")
    good = write_jsonl(tmp_path / "good.jsonl", chat_lines(3))
    batch = await call(client.submit(good, metadata={"description": "good nightly penguin job"}))
    assert batch.status is BatchStatus.VALIDATING and batch.provider_status == "validating"
    assert batch.metadata["description"] == "good nightly penguin job"

    # list with limit / after, across pages
    second = await call(client.submit(good, metadata={"description": "second"}))
    third = await call(client.submit(good, metadata={"description": "third"}))
    listed = await collect(client.list(page_size=1))
    assert [b.id for b in listed][:3] == [third.id, second.id, batch.id]
    page = await call(client.list_page(page_size=1))
    after = await collect(client.list(page_size=2, after=page.next_cursor))
    assert after[0].id == second.id
    assert len(await collect(client.list(page_size=1, limit=2))) == 2

    # retrieve until done, then read the output
    done = await call(client.wait(batch.id))
    assert done.status is BatchStatus.SUCCEEDED and done.request_counts.succeeded == 3
    results = await call(client.results(batch.id))
    by_id = results.by_custom_id()
    assert set(by_id) == {"request-1", "request-2", "request-3"}
    assert by_id["request-1"].response["choices"][0]["message"]["content"]

    # cancel to cancelled, with partial results
    big = write_jsonl(tmp_path / "big.jsonl", chat_lines(40, prefix="big-"))
    doomed = await call(client.submit(big))
    emulator.advance(2.0)  # validated, a few requests done
    cancelling = await call(client.cancel(doomed.id))
    assert cancelling.status is BatchStatus.CANCELLING
    cancelled = await call(client.wait(doomed.id))
    assert cancelled.status is BatchStatus.CANCELLED
    outcome = [r.status for r in await call(client.results(doomed.id))]
    assert len(outcome) == 40
    assert ResultStatus.SUCCEEDED in outcome and ResultStatus.CANCELLED in outcome

    # a bad input file is rejected before anything is uploaded
    before = len(emulator.stats.requests)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "x", "body": {"model": "m"}}\nnot json\n', encoding="utf-8")
    with pytest.raises(InputValidationError, match="line 2"):
        await call(client.submit(bad))
    assert len(emulator.stats.requests) == before


async def test_openai_create_from_an_uploaded_file_id(
    make_client: Callable[[str], Any], tmp_path: Path
) -> None:
    """Upload first, create later from the file id (the guides' two-step flow)."""
    client = make_client("openai")
    prepared = client.prepare(write_jsonl(tmp_path / "a.jsonl", chat_lines(2)))
    ref = await call(client.upload(prepared))
    batch = await call(client.create(ref.file_id, metadata={"description": "by id"}))
    done = await call(client.wait(batch.id))
    assert done.status is BatchStatus.SUCCEEDED
    with pytest.raises(ProviderStatusError, match="file-does-not-exist") as info:
        await call(client.create("file-does-not-exist"))
    assert info.value.status_code in (400, 404)


async def test_mistral_guide(
    make_client: Callable[[str], Any], emulator: Emulator, tmp_path: Path
) -> None:
    client = make_client("mistral")
    lines = [
        {
            "custom_id": str(i),
            "body": {
                "max_tokens": 100,
                "messages": [{"role": "user", "content": f"What is the best French {thing}?"}],
            },
        }
        for i, thing in enumerate(["cheese", "wine"])
    ]
    source = write_jsonl(tmp_path / "mistral.jsonl", lines)
    prepared = client.prepare(source, model="mistral-large-latest")
    ref = await call(client.upload(prepared))
    assert ref.file_id
    job = await call(
        client.create(
            ref,
            model="mistral-large-latest",
            endpoint="/v1/chat/completions",
            metadata={"job_type": "texting"},
        )
    )
    assert job.provider_status == "QUEUED" and job.status is BatchStatus.QUEUED
    assert job.model == "mistral-large-latest" and job.metadata["job_type"] == "texting"
    assert job.input_file_ids == (ref.file_id,)

    listed = await collect(client.list(page_size=100))
    assert job.id in [b.id for b in listed]

    fetched = await call(client.retrieve(job.id))
    assert fetched.id == job.id
    done = await call(client.wait(job.id))
    assert done.status is BatchStatus.SUCCEEDED
    assert done.output_file_ids
    path = await call(client.download_file(done.output_file_ids[0]))
    downloaded = [json.loads(x) for x in Path(path).read_text().splitlines()]
    assert {d["custom_id"] for d in downloaded} == {"0", "1"}
    results = (await call(client.results(job.id))).by_custom_id()
    assert results["0"].ok and results["0"].response["object"] == "chat.completion"

    # cancel a second job: CANCELLATION_REQUESTED, then CANCELLED
    other = await call(client.submit(source, model="mistral-large-latest"))
    cancelling = await call(client.cancel(other.id))
    assert cancelling.provider_status == "CANCELLATION_REQUESTED"
    assert (await call(client.wait(other.id))).status is BatchStatus.CANCELLED


async def test_powershell_guide(make_client: Callable[[str], Any], emulator: Emulator) -> None:
    client = make_client("openai")
    items = [
        {
            "custom_id": "item-1",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]},
        },
        {
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "What is a hot dog?"}],
            }
        },
        {
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "'Delicious' in German?"}],
            }
        },
    ]
    batch = await call(client.submit(items))
    batch = await call(client.wait(batch.id))
    results = (await call(client.results(batch.id))).by_custom_id()
    assert set(results) == {"item-1", "request-2", "request-3"}
    assert all(r.ok for r in results.values())
    deleted = await call(client.cleanup(batch.id))
    assert set(deleted) == set(batch.input_file_ids + batch.output_file_ids)
    for file_id in deleted:
        with pytest.raises(NotFoundError):
            await call(client.download_file(file_id))


async def test_errors_and_expiry(
    make_client: Callable[[str], Any], emulator: Emulator, tmp_path: Path
) -> None:
    client = make_client("openai")
    lines = chat_lines(4)
    lines[1]["body"]["messages"][1]["content"] = "please fail [[emulator:error]]"
    batch = await call(client.submit(lines))
    results = (await call(client.results((await call(client.wait(batch.id))).id))).by_custom_id()
    assert results["request-2"].status is ResultStatus.ERRORED
    assert results["request-2"].status_code == 400 and results["request-2"].error
    assert sum(r.ok for r in results.values()) == 3

    slow = await call(client.submit(chat_lines(30, prefix="slow-")))
    emulator.advance(1.5)
    emulator.expire(slow.id)
    expired = await call(client.wait(slow.id))
    assert expired.status is BatchStatus.EXPIRED
    statuses = [r.status for r in await call(client.results(slow.id))]
    assert len(statuses) == 30 and ResultStatus.EXPIRED in statuses
