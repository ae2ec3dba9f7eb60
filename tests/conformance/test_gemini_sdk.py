"""Conformance: the official ``google-genai`` SDK drives the emulator over a real socket.

Inline and file batches (with the SDK's own resumable upload and download), get until done,
list (paged), cancel and delete go through ``genai.Client`` pointed at
``http://127.0.0.1:PORT/gemini``, with the SDK's default API version (``v1`` in google-genai
3.x) and with ``v1beta`` (the docs'). Answers must come back as the SDK's own types
(``BatchJob``, ``InlinedResponse``, ``GenerateContentResponse``, ``File``); the emulator's raw
``GenerateContentResponse`` and ``File`` JSON must validate against the SDK's models, which
forbid unknown fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from google import genai
from google.genai import errors, types

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_gemini.dialect import GeminiDialect

RECORDING = Path(__file__).parents[2].parent / "shared" / "specs" / "sdk-requests" / ("gemini.json")
MODEL = "gemini-2.5-flash"
DONE = {
    types.JobState.JOB_STATE_SUCCEEDED,
    types.JobState.JOB_STATE_FAILED,
    types.JobState.JOB_STATE_CANCELLED,
    types.JobState.JOB_STATE_EXPIRED,
}


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(
        seed=11,
        validating_seconds=1,
        requests_per_second=2,
        finalizing_seconds=1,
        cancelling_seconds=1,
    )
    return Emulator([GeminiDialect], config=config, clock=ManualClock())


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with serve(host="127.0.0.1", port=0, emulator=emulator) as running:
        yield running


@pytest.fixture(params=["sdk-default", "v1beta"])
def client(request: pytest.FixtureRequest, server: EmulatorServer) -> genai.Client:
    options: dict[str, Any] = {"base_url": server.url("gemini")}
    if request.param == "v1beta":
        options["api_version"] = "v1beta"
    return genai.Client(api_key="conformance-key", http_options=options)


def get_until_done(client: genai.Client, emulator: Emulator, name: str) -> types.BatchJob:
    for _ in range(100):
        job = client.batches.get(name=name)
        assert isinstance(job, types.BatchJob)
        if job.state in DONE:
            return job
        emulator.advance(0.5)
    pytest.fail(f"{name} did not finish")


def contents(text: str) -> list[dict[str, Any]]:
    return [{"parts": [{"text": text}], "role": "user"}]


def test_inline_batch(client: genai.Client, emulator: Emulator) -> None:
    job = client.batches.create(
        model=MODEL,
        src=[
            {"contents": contents("Tell me a joke."), "metadata": {"key": "request-1"}},
            {
                "contents": contents("Why is the sky blue?"),
                "metadata": {"key": "request-2"},
                "config": {"temperature": 0.7, "max_output_tokens": 3},
            },
            {"contents": contents("[[emulator:error]]"), "metadata": {"key": "request-3"}},
        ],
        config={"display_name": "inlined-requests-job-1"},
    )
    assert job.name is not None and job.name.startswith("batches/")
    assert job.state is types.JobState.JOB_STATE_PENDING
    assert job.display_name == "inlined-requests-job-1" and job.model == f"models/{MODEL}"
    done = get_until_done(client, emulator, job.name)
    assert done.state is types.JobState.JOB_STATE_SUCCEEDED and done.end_time is not None
    assert done.dest is not None and done.dest.inlined_responses is not None
    answers = {r.metadata["key"]: r for r in done.dest.inlined_responses}  # type: ignore[index]
    assert set(answers) == {"request-1", "request-2", "request-3"}
    first = answers["request-1"]
    assert isinstance(first, types.InlinedResponse)
    assert isinstance(first.response, types.GenerateContentResponse) and first.response.text
    short = answers["request-2"].response
    assert short is not None and short.candidates is not None
    assert short.candidates[0].finish_reason is types.FinishReason.MAX_TOKENS
    assert answers["request-3"].error is not None and answers["request-3"].error.code == 3


def test_file_batch_with_the_sdk_s_upload_and_download(
    client: genai.Client, emulator: Emulator, tmp_path: Path
) -> None:
    source = tmp_path / "my-batch-requests.jsonl"
    lines = [
        {
            "key": "request-1",
            "request": {
                "contents": [{"parts": [{"text": "Photosynthesis?"}]}],
                "generation_config": {"temperature": 0.7},
            },
        },
        {"key": "request-2", "request": {"contents": [{"parts": [{"text": "Pizza?"}]}]}},
    ]
    source.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    uploaded = client.files.upload(
        file=str(source), config={"display_name": "my-batch-requests", "mime_type": "jsonl"}
    )
    assert isinstance(uploaded, types.File) and uploaded.name is not None
    assert uploaded.state is types.FileState.ACTIVE and uploaded.size_bytes == source.stat().st_size
    job = client.batches.create(
        model=MODEL, src=uploaded.name, config={"display_name": "file-requests-job-1"}
    )
    assert job.name is not None
    done = get_until_done(client, emulator, job.name)
    assert done.state is types.JobState.JOB_STATE_SUCCEEDED
    assert done.dest is not None and done.dest.file_name is not None
    data = client.files.download(file=done.dest.file_name)
    rows = {row["key"]: row for row in map(orjson.loads, data.splitlines())}
    assert set(rows) == {"request-1", "request-2"}
    for row in rows.values():
        types.GenerateContentResponse.model_validate(row["response"])  # no unknown fields
    info = client.files.get(name=uploaded.name)
    assert isinstance(info, types.File) and info.display_name == "my-batch-requests"


def test_list_cancel_and_delete(client: genai.Client, emulator: Emulator) -> None:
    names = []
    for i in range(3):
        job = client.batches.create(model=MODEL, src=[{"contents": contents(f"q{i}")}] * 4)
        assert job.name is not None
        names.append(job.name)
        emulator.advance(0.1)
    listed = [j.name for j in client.batches.list(config={"page_size": 1})]
    assert listed == names[::-1]
    assert client.batches.cancel(name=names[0]) is None
    # The emulator shows BATCH_STATE_CANCELLING while a cancel is in flight: the SDK keeps
    # unknown states (with a warning) rather than failing.
    with pytest.warns(UserWarning, match="BATCH_STATE_CANCELLING is not a valid JobState"):
        cancelling = client.batches.get(name=names[0])
    assert cancelling.state == "BATCH_STATE_CANCELLING"
    emulator.advance(5)
    assert client.batches.get(name=names[0]).state is types.JobState.JOB_STATE_CANCELLED
    deleted = client.batches.delete(name=names[0])
    assert isinstance(deleted, types.DeleteResourceJob)
    with pytest.raises(errors.ClientError) as gone:
        client.batches.get(name=names[0])
    assert gone.value.code == 404 and gone.value.status == "NOT_FOUND"


def test_wrong_key_is_the_sdk_s_client_error() -> None:
    locked = Emulator([GeminiDialect], config=EmulatorConfig(api_key="right"), clock=ManualClock())
    with serve(host="127.0.0.1", port=0, emulator=locked) as other:
        sdk = genai.Client(api_key="wrong", http_options={"base_url": other.url("gemini")})
        with pytest.raises(errors.ClientError) as denied:
            sdk.batches.get(name="batches/x")
        assert denied.value.code == 400 and denied.value.status == "INVALID_ARGUMENT"
        assert "API_KEY_INVALID" in str(denied.value)


def test_raw_answers_validate_against_the_sdk_models(
    server: EmulatorServer, emulator: Emulator
) -> None:
    import httpx

    with httpx.Client(base_url=server.url("gemini"), headers={"x-goog-api-key": "k"}) as http:
        op = http.post(
            f"/v1beta/models/{MODEL}:batchGenerateContent",
            json={
                "batch": {
                    "inputConfig": {
                        "requests": {
                            "requests": [
                                {"request": {"contents": contents("hi")}, "metadata": {"key": "a"}}
                            ]
                        }
                    }
                }
            },
        ).json()
        emulator.advance(10)
        done = http.get(f"/v1beta/{op['name']}").json()
        (answer,) = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
        types.GenerateContentResponse.model_validate(answer["response"])
        types.InlinedResponse.model_validate(answer)


def test_the_sdk_sends_what_its_recording_says(server: EmulatorServer, emulator: Emulator) -> None:
    if not RECORDING.exists():
        pytest.skip(f"reference material {RECORDING} is absent (../shared lives beside the repo)")
    recorded = orjson.loads(RECORDING.read_bytes())
    sdk = genai.Client(
        api_key="k", http_options={"base_url": server.url("gemini"), "api_version": "v1beta"}
    )
    job = sdk.batches.create(model=MODEL, src=[{"contents": contents("a")}])
    assert job.name is not None
    sdk.batches.get(name=job.name)
    seen = [(r.method, r.path.removeprefix("/gemini")) for r in emulator.stats.requests]
    want = [(e["request"]["method"], e["request"]["path"]) for e in recorded[:1]]
    assert seen[0] == want[0]
    assert seen[1] == ("GET", f"/v1beta/{job.name}")
    headers = {k.lower(): v for k, v in emulator.stats.requests[0].headers.items()}
    assert headers["x-goog-api-key"] == "<redacted>"


def _batch_job(raw: dict[str, Any]) -> types.BatchJob:
    """A raw batch Operation read as the SDK reads it, into a BatchJob that forbids
    unknown fields."""
    from google.genai import batches

    return types.BatchJob.model_validate(batches._BatchJob_from_mldev(raw))


def test_every_raw_answer_of_a_lifecycle_validates_strictly(
    server: EmulatorServer, emulator: Emulator
) -> None:
    """Upload, file get and list, create, get until done, list, results download, an inline
    batch, cancel and delete, read over raw HTTP: each body parses into the SDK's models
    (which forbid unknown fields)."""
    import httpx

    lines = b"".join(
        orjson.dumps({"key": f"k{i}", "request": {"contents": contents(f"q{i}")}}) + b"\n"
        for i in range(3)
    )
    with httpx.Client(base_url=server.url("gemini"), headers={"x-goog-api-key": "k"}) as http:
        start = http.post(
            "/upload/v1beta/files",
            headers={
                "x-goog-upload-protocol": "resumable",
                "x-goog-upload-command": "start",
                "x-goog-upload-header-content-length": str(len(lines)),
                "x-goog-upload-header-content-type": "application/jsonl",
            },
            json={"file": {"displayName": "in.jsonl"}},
        )
        assert start.status_code == 200
        final = httpx.post(
            start.headers["x-goog-upload-url"],
            headers={"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"},
            content=lines,
        )
        uploaded = types.File.model_validate(final.json()["file"])
        assert uploaded.name is not None and uploaded.size_bytes == len(lines)
        types.File.model_validate(http.get(f"/v1beta/{uploaded.name}").json())
        listing = types.ListFilesResponse.model_validate(http.get("/v1beta/files").json())
        assert [f.name for f in listing.files or []] == [uploaded.name]

        created = http.post(
            f"/v1beta/models/{MODEL}:batchGenerateContent",
            json={"batch": {"displayName": "d", "inputConfig": {"fileName": uploaded.name}}},
        ).json()
        assert _batch_job(created).state == types.JobState.JOB_STATE_PENDING
        emulator.advance(30)
        done = http.get(f"/v1beta/{created['name']}").json()
        job = _batch_job(done)
        assert job.state == types.JobState.JOB_STATE_SUCCEEDED
        assert job.dest is not None and job.dest.file_name is not None
        result_file = http.get(f"/v1beta/{job.dest.file_name}").json()
        types.File.model_validate(result_file)
        results = http.get(f"/download/v1beta/{job.dest.file_name}:download?alt=media")
        rows = [orjson.loads(x) for x in results.content.splitlines() if x.strip()]
        assert sorted(r["key"] for r in rows) == ["k0", "k1", "k2"]
        for row in rows:
            types.GenerateContentResponse.model_validate(row["response"])

        inline = http.post(
            f"/v1beta/models/{MODEL}:batchGenerateContent",
            json={
                "batch": {
                    "inputConfig": {
                        "requests": {
                            "requests": [
                                {"request": {"contents": contents("x")}, "metadata": {"key": "i"}}
                            ]
                        }
                    }
                }
            },
        ).json()
        pending = http.post(
            f"/v1beta/models/{MODEL}:batchGenerateContent",
            json={"batch": {"inputConfig": {"fileName": uploaded.name}}},
        ).json()
        emulator.advance(30)
        inline_done = _batch_job(http.get(f"/v1beta/{inline['name']}").json())
        assert inline_done.dest is not None and inline_done.dest.inlined_responses
        for answer in inline_done.dest.inlined_responses:
            assert answer.response is not None
        listed = http.get("/v1beta/batches").json()
        names = [_batch_job(op).name for op in listed["operations"]]
        assert set(names) == {created["name"], inline["name"], pending["name"]}
        # Cancel of a finished batch is refused in Google's error shape; delete answers {}.
        cancel = http.post(f"/v1beta/{pending['name']}:cancel")
        assert cancel.status_code == 400
        assert cancel.json()["error"]["status"] == "FAILED_PRECONDITION"
        assert http.delete(f"/v1beta/{pending['name']}").json() == {}
        assert http.delete(f"/v1beta/{uploaded.name}").json() == {}
