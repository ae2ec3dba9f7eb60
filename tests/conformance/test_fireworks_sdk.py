"""Conformance: the official ``fireworks-ai`` SDK drives the emulator over a real socket.

Every dataset and batch-inference-job flow the SDK offers is exercised, account-scoped:
dataset create, ``:upload``, ``:getUploadEndpoint`` with a PUT to the signed URL,
``:validateUpload``, get, update, list, ``:getDownloadEndpoint`` and delete; job create (with the
client-chosen ``batchInferenceJobId`` and with ``continuedFromJobName``), get, list (cursor
pages) and delete, sync and async. Every object parses into the SDK's types with no field the
types do not know.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pydantic
import pytest
from fireworks import AsyncFireworks, ConflictError, Fireworks, NotFoundError
from fireworks.types import BatchInferenceJob, Dataset

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_fireworks.dialect import FireworksDialect

ACCOUNT = "acme-research"
MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"
RUNNING = {"JOB_STATE_VALIDATING", "JOB_STATE_RUNNING", "JOB_STATE_WRITING_RESULTS"}


def strict(value: Any) -> Any:
    """The SDK parsed the object and kept nothing it does not model."""
    fields = type(value).model_fields
    # The SDK's lenient construction also keeps aliased keys among the extras.
    known = {f.alias or name for name, f in fields.items()}
    extra = set(getattr(value, "model_extra", None) or {}) - known
    assert not extra, f"{type(value).__name__} does not know {sorted(extra)}"
    for name in fields:
        inner = getattr(value, name)
        if isinstance(inner, pydantic.BaseModel):
            strict(inner)
    return value


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(
        seed=5, validating_seconds=1.0, requests_per_second=1.0, finalizing_seconds=1.0
    )
    return Emulator([FireworksDialect], config, ManualClock())


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(emulator=emulator) as running:
        yield running


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[Fireworks]:
    with Fireworks(api_key="k", account_id=ACCOUNT, base_url=f"{server.base_url}/fireworks") as sdk:
        yield sdk


def dataset_lines(count: int, failing: frozenset[int] = frozenset()) -> bytes:
    lines = []
    for index in range(count):
        text = f"Question {index}: answer briefly."
        if index in failing:
            text += " [[emulator:error]]"
        lines.append(
            orjson.dumps(
                {
                    "custom_id": f"request-{index}",
                    "body": {"messages": [{"role": "user", "content": text}], "max_tokens": 40},
                }
            )
        )
    return b"\n".join(lines) + b"\n"


def make_dataset(client: Fireworks, dataset_id: str, data: bytes, tmp_path: Path) -> Dataset:
    created = strict(
        client.datasets.create(
            dataset_id=dataset_id, dataset={"user_uploaded": {}, "example_count": "1"}
        )
    )
    assert created.name == f"accounts/{ACCOUNT}/datasets/{dataset_id}"
    assert created.state == "UPLOADING"
    path = tmp_path / f"{dataset_id}.jsonl"
    path.write_bytes(data)
    uploaded = client.datasets.upload(dataset_id, file=path)
    assert uploaded.bytes == len(data)
    client.datasets.validate_upload(dataset_id, body={})
    ready: Dataset = strict(client.datasets.get(dataset_id))
    assert ready.state == "READY"
    return ready


def wait(client: Fireworks, emulator: Emulator, job_id: str) -> BatchInferenceJob:
    for _ in range(1000):
        job = strict(client.batch_inference_jobs.get(job_id))
        if job.state not in RUNNING:
            return job
        emulator.advance(0.5)
    raise AssertionError(f"job {job_id} never ended")


def download(client: Fireworks, dataset_id: str) -> dict[str, list[dict[str, Any]]]:
    endpoint = client.datasets.get_download_endpoint(dataset_id)
    assert endpoint.filename_to_signed_urls
    files = {}
    for name, url in endpoint.filename_to_signed_urls.items():
        answer = httpx.get(url)  # signed: no key
        answer.raise_for_status()
        files[name] = [orjson.loads(line) for line in answer.content.splitlines()]
    return files


def test_dataset_flows(client: Fireworks, server: EmulatorServer, tmp_path: Path) -> None:
    make_dataset(client, "direct-upload", dataset_lines(3), tmp_path)

    # Large files: a signed upload URL, a PUT, then validation.
    client.datasets.create(dataset_id="signed-upload", dataset={"user_uploaded": {}})
    data = dataset_lines(2)
    endpoint = client.datasets.get_upload_endpoint(
        "signed-upload", filename_to_size={"big.jsonl": str(len(data))}
    )
    assert endpoint.filename_to_signed_urls
    url = endpoint.filename_to_signed_urls["big.jsonl"]
    assert httpx.put(url, content=data).status_code == 200
    assert httpx.put(url.replace("signature=", "signature=x"), content=data).status_code == 403
    client.datasets.validate_upload("signed-upload", body={})
    assert client.datasets.get("signed-upload").state == "READY"

    listed = [strict(d).name for d in client.datasets.list(page_size=1)]
    assert sorted(listed) == [
        f"accounts/{ACCOUNT}/datasets/direct-upload",
        f"accounts/{ACCOUNT}/datasets/signed-upload",
    ]
    renamed = strict(client.datasets.update("signed-upload", display_name="Big questions"))
    assert renamed.display_name == "Big questions"
    assert client.datasets.get("signed-upload").display_name == "Big questions"
    files = download(client, "signed-upload")
    assert [r["custom_id"] for r in files["big.jsonl"]] == ["request-0", "request-1"]

    client.datasets.delete("direct-upload")
    with pytest.raises(NotFoundError):
        client.datasets.get("direct-upload")
    with (
        Fireworks(api_key="k", account_id="someone-else", base_url=client.base_url) as other,
        pytest.raises(NotFoundError),
    ):
        other.datasets.get("signed-upload")  # datasets are the account's own


def test_job_lifecycle_results_and_errors(
    client: Fireworks, emulator: Emulator, tmp_path: Path
) -> None:
    make_dataset(client, "questions", dataset_lines(4, frozenset({1})), tmp_path)
    job = strict(
        client.batch_inference_jobs.create(
            batch_inference_job_id="nightly-1",
            model=MODEL,
            input_dataset_id=f"accounts/{ACCOUNT}/datasets/questions",
            inference_parameters={"max_tokens": 40, "temperature": 0.2},
        )
    )
    assert job.name == f"accounts/{ACCOUNT}/batchInferenceJobs/nightly-1"
    assert job.inference_parameters is not None and job.inference_parameters.max_tokens == 40
    with pytest.raises(ConflictError):  # the job id is the client's: never two jobs
        client.batch_inference_jobs.create(
            batch_inference_job_id="nightly-1",
            model=MODEL,
            input_dataset_id=f"accounts/{ACCOUNT}/datasets/questions",
        )
    done = wait(client, emulator, "nightly-1")
    assert done.state == "JOB_STATE_COMPLETED"
    progress = done.job_progress
    assert progress is not None
    assert (progress.total_input_requests, progress.successfully_processed_requests) == (4, 3)
    assert progress.failed_requests == 1 and progress.percent == 100
    assert done.output_dataset_id
    files = download(client, done.output_dataset_id.rsplit("/", 1)[-1])
    results, errors = files["results.jsonl"], files["errors.jsonl"]
    assert sorted(r["custom_id"] for r in results) == ["request-0", "request-2", "request-3"]
    assert [e["custom_id"] for e in errors] == ["request-1"]

    listed = list(client.batch_inference_jobs.list(page_size=1, order_by="create_time desc"))
    assert [j.name for j in listed] == [done.name]
    client.batch_inference_jobs.delete("nightly-1")
    with pytest.raises(NotFoundError):
        client.batch_inference_jobs.get("nightly-1")


def test_an_expired_job_continues_with_its_unfinished_requests(
    client: Fireworks, emulator: Emulator, tmp_path: Path
) -> None:
    make_dataset(client, "long", dataset_lines(6), tmp_path)
    client.batch_inference_jobs.create(
        batch_inference_job_id="first",
        model=MODEL,
        input_dataset_id=f"accounts/{ACCOUNT}/datasets/long",
    )
    emulator.advance(3.5)  # validation, then two requests
    emulator.expire("first")
    expired = strict(client.batch_inference_jobs.get("first"))
    assert expired.state == "JOB_STATE_EXPIRED"
    assert expired.job_progress is not None
    assert expired.job_progress.successfully_processed_requests == 2
    resumed = strict(
        client.batch_inference_jobs.create(
            batch_inference_job_id="second", continued_from_job_name=str(expired.name)
        )
    )
    assert resumed.continued_from_job_name == expired.name
    done = wait(client, emulator, "second")
    assert done.job_progress is not None and done.job_progress.total_input_requests == 4
    first = {r["custom_id"] for r in download(client, "first-output")["results.jsonl"]}
    second = {r["custom_id"] for r in download(client, "second-output")["results.jsonl"]}
    assert not first & second and len(first | second) == 6


def test_async_client_runs_the_same_flow(
    server: EmulatorServer, emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(dataset_lines(2))

    async def flow() -> BatchInferenceJob:
        async with AsyncFireworks(
            api_key="k", account_id=ACCOUNT, base_url=f"{server.base_url}/fireworks"
        ) as client:
            await client.datasets.create(dataset_id="async-in", dataset={"user_uploaded": {}})
            await client.datasets.upload("async-in", file=path)
            await client.datasets.validate_upload("async-in", body={})
            await client.batch_inference_jobs.create(
                batch_inference_job_id="async-job",
                model=MODEL,
                input_dataset_id=f"accounts/{ACCOUNT}/datasets/async-in",
            )
            emulator.advance(3600)
            return await client.batch_inference_jobs.get("async-job")

    job = strict(asyncio.run(flow()))
    assert job.state == "JOB_STATE_COMPLETED"


def test_the_sdk_against_the_omnibatch_emulator_serve_command(tmp_path: Path) -> None:
    """The same SDK against ``omnibatch emulator serve`` started as a subprocess."""
    import time

    from tests.cli.conftest import start_emulator

    served = start_emulator(tmp_path, "--speed", "20")
    try:
        client = Fireworks(api_key="k", account_id=ACCOUNT, base_url=f"{served.root}/fireworks")
        make_dataset(client, "served-input", dataset_lines(3), tmp_path)
        client.batch_inference_jobs.create(
            batch_inference_job_id="served-job",
            model=MODEL,
            input_dataset_id=f"accounts/{ACCOUNT}/datasets/served-input",
        )
        deadline = time.monotonic() + 30
        job = client.batch_inference_jobs.get("served-job")
        while job.state in RUNNING and time.monotonic() < deadline:
            time.sleep(0.05)
            job = client.batch_inference_jobs.get("served-job")
        assert job.state == "JOB_STATE_COMPLETED" and job.output_dataset_id
        files = download(client, job.output_dataset_id.rsplit("/", 1)[-1])
        assert len(files["results.jsonl"]) == 3
        client.close()
    finally:
        served.stop()
