"""The Mistral dialect in process (httpx.MockTransport + ManualClock)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock
from omnibatch_mistral.dialect import MistralDialect

from ._support import AUTH, read_jsonl

MakeJob = Callable[..., dict[str, Any]]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def line(custom_id: str | None, content: str = "What is the best French cheese?") -> dict[str, Any]:
    out: dict[str, Any] = {
        "body": {"max_tokens": 64, "messages": [{"role": "user", "content": content}]}
    }
    if custom_id is not None:
        out["custom_id"] = custom_id
    return out


def get_job(client: httpx.Client, job_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/batch/jobs/{job_id}", params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def download(client: httpx.Client, file_id: str) -> bytes:
    response = client.get(f"/files/{file_id}/content")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    return response.content


def test_lifecycle_queued_running_success(
    mis: httpx.Client, emulator: Emulator, mistral_job: MakeJob
) -> None:
    job = mistral_job(
        [line(str(i), f"question {i}") for i in range(100)], metadata={"job_type": "t"}
    )
    assert UUID.match(job["id"])
    assert job["status"] == "QUEUED"
    assert job["object"] == "batch"
    assert job["total_requests"] == 100
    assert (job["completed_requests"], job["succeeded_requests"], job["failed_requests"]) == (
        0,
        0,
        0,
    )
    assert job["started_at"] is None and job["completed_at"] is None
    assert job["errors"] == [] and job["outputs"] is None
    assert job["metadata"] == {"job_type": "t"} and job["model"] == "mistral-small-latest"

    emulator.advance(0.6)
    running = get_job(mis, job["id"])
    assert running["status"] == "RUNNING"
    assert running["started_at"] == job["created_at"]
    assert running["completed_requests"] == running["succeeded_requests"] == 40

    emulator.advance(0.2)  # all processed, "finalizing" is still RUNNING for Mistral
    assert get_job(mis, job["id"])["status"] == "RUNNING"
    emulator.advance(0.5)
    done = get_job(mis, job["id"])
    assert done["status"] == "SUCCESS"
    assert done["completed_at"] is not None and done["error_file"] is None
    assert (done["completed_requests"], done["succeeded_requests"], done["failed_requests"]) == (
        100,
        100,
        0,
    )
    assert UUID.match(done["output_file"])
    lines = read_jsonl(download(mis, done["output_file"]))
    order = [x["custom_id"] for x in lines]
    assert sorted(order, key=int) == [str(i) for i in range(100)] and order != sorted(
        order, key=int
    )
    for out in lines:
        assert list(out) == ["id", "custom_id", "response", "error"]
        assert re.match(rf"^batch-{job['id'][:8]}-\d+-[0-9a-f-]{{36}}$", out["id"])
        assert out["response"]["status_code"] == 200 and out["error"] is None
        body = out["response"]["body"]
        assert body["object"] == "chat.completion" and body["model"] == "mistral-small-latest"
        message = body["choices"][0]["message"]
        assert message["role"] == "assistant" and message["tool_calls"] is None
        assert body["usage"]["completion_tokens"] <= 64


def test_output_file_metadata(mis: httpx.Client, emulator: Emulator, mistral_job: MakeJob) -> None:
    job = mistral_job([line("a"), line("b")])
    emulator.complete(job["id"])
    done = get_job(mis, job["id"])
    meta = mis.get(f"/files/{done['output_file']}").json()
    assert meta["purpose"] == "batch" and meta["sample_type"] == "batch_result"
    assert meta["source"] == "mistral" and meta["num_lines"] == 2 and meta["deleted"] is False
    assert meta["bytes"] == len(download(mis, done["output_file"]))


def test_inline_requests_and_inline_outputs(mis: httpx.Client, emulator: Emulator) -> None:
    body = {
        "endpoint": "/v1/chat/completions",
        "requests": [line("0"), line("1", "wine?"), line("2", "pastry? [[emulator:error]]")],
        "model": "mistral-small-latest",
        "metadata": {"job_type": "inline"},
        "timeout_hours": 24,
    }
    job = mis.post("/batch/jobs", json=body).json()
    assert job["input_files"] == [] and job["total_requests"] == 3
    assert get_job(mis, job["id"], inline="true")["outputs"] is None  # not finished
    emulator.complete(job["id"])
    plain = get_job(mis, job["id"])
    assert plain["outputs"] is None
    assert (plain["succeeded_requests"], plain["failed_requests"]) == (2, 1)
    inline = get_job(mis, job["id"], inline="true")
    outputs = {o["custom_id"]: o for o in inline["outputs"]}
    assert set(outputs) == {"0", "1", "2"}
    assert outputs["2"]["response"]["status_code"] == 400
    assert outputs["2"]["error"]
    errors = read_jsonl(download(mis, plain["error_file"]))
    assert [e["custom_id"] for e in errors] == ["2"]
    assert errors[0]["response"]["body"]["object"] == "error"


def test_embeddings_job(mis: httpx.Client, emulator: Emulator, mistral_job: MakeJob) -> None:
    lines = [
        {"custom_id": "0", "body": {"input": ["a b c", "d e"]}},
        {"custom_id": "1", "body": {"input": "a b c"}},
    ]
    job = mistral_job(lines, endpoint="/v1/embeddings", model="mistral-embed")
    emulator.complete(job["id"])
    out = {
        x["custom_id"]: x["response"]["body"]
        for x in read_jsonl(download(mis, get_job(mis, job["id"])["output_file"]))
    }
    assert out["0"]["object"] == "list" and len(out["0"]["data"]) == 2
    assert out["0"]["data"][0]["embedding"] == out["1"]["data"][0]["embedding"]
    assert out["0"]["usage"]["completion_tokens"] == 0
    assert out["0"]["model"] == "mistral-embed"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"custom_id": "0", "body": {}}\n{oops\n', "line 2: invalid JSON"),
        (b'{"custom_id": "0"}\n', "line 1: 'body' is missing"),
        (b"[1]\n", "line 1: the request is not a JSON object"),
        (
            b'{"custom_id": "a", "body": {}}\n{"custom_id": "a", "body": {}}\n',
            "line 2: duplicate custom_id",
        ),
        (b"\n\n", "no requests"),
    ],
)
def test_invalid_input_fails_the_job(
    data: bytes, fragment: str, mis: httpx.Client, emulator: Emulator, mistral_job: MakeJob
) -> None:
    job = mistral_job(data)
    assert job["status"] == "QUEUED"
    emulator.advance(1)
    failed = get_job(mis, job["id"])
    assert failed["status"] == "FAILED"
    assert failed["output_file"] is None and failed["error_file"] is None
    assert failed["completed_at"] is not None and failed["started_at"] is None
    assert len(failed["errors"]) == 1
    assert failed["errors"][0]["count"] == 1
    assert fragment in failed["errors"][0]["message"]


def _validation_locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422
    body = response.json()
    assert body["object"] == "error" and body["type"] == "invalid_request_error"
    return [d["loc"] for d in body["message"]["detail"]]


def test_create_validation_errors_are_422(mis: httpx.Client, emulator: Emulator) -> None:
    file_id = mis.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", orjson.dumps(line("0")))}
    ).json()["id"]
    base = {"input_files": [file_id], "model": "m", "endpoint": "/v1/chat/completions"}
    assert _validation_locs(
        mis.post("/batch/jobs", json={"input_files": [file_id], "model": "m"})
    ) == [["body", "endpoint"]]
    assert _validation_locs(mis.post("/batch/jobs", json={**base, "endpoint": "/v1/nope"})) == [
        ["body", "endpoint"]
    ]
    assert _validation_locs(mis.post("/batch/jobs", json={**base, "timeout_hours": 0})) == [
        ["body", "timeout_hours"]
    ]
    assert _validation_locs(mis.post("/batch/jobs", json={**base, "timeout_hours": 169})) == [
        ["body", "timeout_hours"]
    ]
    assert _validation_locs(mis.post("/batch/jobs", json={**base, "metadata": {"k": ""}})) == [
        ["body", "metadata", "k"]
    ]
    assert _validation_locs(
        mis.post(
            "/batch/jobs",
            json={
                "endpoint": "/v1/chat/completions",
                "model": "m",
                "requests": [{"custom_id": "0"}],
            },
        )
    ) == [["body", "requests", 0, "body"]]
    assert _validation_locs(
        mis.post("/batch/jobs", content=b"{nope", headers={"content-type": "application/json"})
    ) == [["body"]]
    assert emulator.stats.creates["mistral"] == 0


def test_create_refusals_in_mistral_error_shape(mis: httpx.Client) -> None:
    no_input = mis.post("/batch/jobs", json={"endpoint": "/v1/chat/completions", "model": "m"})
    assert no_input.status_code == 400
    assert set(no_input.json()) == {"object", "message", "type", "param", "code"}
    unknown = mis.post(
        "/batch/jobs",
        json={
            "endpoint": "/v1/chat/completions",
            "model": "m",
            "input_files": ["00000000-0000-4000-8000-000000000000"],
        },
    )
    assert unknown.status_code == 404 and "not found" in unknown.json()["message"]


def test_timeout_keeps_partial_output(
    mis: httpx.Client, emulator: Emulator, mistral_job: MakeJob
) -> None:
    job = mistral_job([line(str(i)) for i in range(100)])
    emulator.advance(0.6)
    emulator.expire(job["id"])
    timed_out = get_job(mis, job["id"])
    assert timed_out["status"] == "TIMEOUT_EXCEEDED"
    assert timed_out["completed_requests"] == 40 and timed_out["total_requests"] == 100
    assert len(read_jsonl(download(mis, timed_out["output_file"]))) == 40
    assert timed_out["error_file"] is None


def test_timeout_hours_bound_the_job(clock: ManualClock) -> None:
    emu = Emulator([MistralDialect], EmulatorConfig(requests_per_second=0.01), clock)
    with httpx.Client(transport=emu.transport(), base_url="http://e/mistral/v1", headers=AUTH) as c:
        body = {
            "endpoint": "/v1/chat/completions",
            "model": "m",
            "requests": [line(str(i)) for i in range(100)],
            "timeout_hours": 1,
        }
        job = c.post("/batch/jobs", json=body).json()
        clock.advance(3599)
        assert c.get(f"/batch/jobs/{job['id']}").json()["status"] == "RUNNING"
        clock.advance(2)
        done = c.get(f"/batch/jobs/{job['id']}").json()
        assert done["status"] == "TIMEOUT_EXCEEDED"
        assert done["completed_at"] == job["created_at"] + 3600
        assert done["completed_requests"] == 35  # floor((3600 - 0.5) * 0.01)


def test_cancel_requested_then_cancelled_with_partial_results(
    mis: httpx.Client, emulator: Emulator, mistral_job: MakeJob
) -> None:
    job = mistral_job([line(str(i)) for i in range(100)])
    emulator.advance(0.55)
    requested = mis.post(f"/batch/jobs/{job['id']}/cancel")
    assert requested.status_code == 200
    assert requested.json()["status"] == "CANCELLATION_REQUESTED"
    emulator.advance(0.6)
    cancelled = get_job(mis, job["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["completed_requests"] == 20
    assert len(read_jsonl(download(mis, cancelled["output_file"]))) == 20
    again = mis.post(f"/batch/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["object"] == "error"


def test_list_pages_and_filters(mis: httpx.Client, emulator: Emulator, clock: ManualClock) -> None:
    def create(model: str, meta: dict[str, str] | None) -> str:
        body = {
            "endpoint": "/v1/chat/completions",
            "model": model,
            "requests": [line("0")],
            "metadata": meta,
        }
        return str(mis.post("/batch/jobs", json=body).json()["id"])

    emulator.config.validating_seconds = 1000  # jobs stay QUEUED unless completed
    start = clock.now()
    a = create("m1", {"job_type": "x", "team": "red"})
    clock.advance(10)
    b = create("m1", {"job_type": "y"})
    clock.advance(10)
    c = create("m2", {"job_type": "x"})
    clock.advance(10)
    d = create("m2", None)
    emulator.complete(a)
    emulator.complete(c)

    def ids(**params: Any) -> tuple[list[str], int]:
        response = mis.get("/batch/jobs", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "list"
        return [j["id"] for j in body["data"]], body["total"]

    assert ids() == ([d, c, b, a], 4)
    assert ids(page=0, page_size=3) == ([d, c, b], 4)
    assert ids(page=1, page_size=3) == ([a], 4)
    assert ids(page=2, page_size=3) == ([], 4)
    assert ids(order_by="created") == ([a, b, c, d], 4)
    assert ids(status=["SUCCESS"]) == ([c, a], 2)
    assert ids(status=["SUCCESS", "RUNNING", "QUEUED"]) == ([d, c, b, a], 4)
    assert ids(status="QUEUED") == ([d, b], 2)
    assert ids(job_type="x") == ([c, a], 2)  # the SDK explodes metadata into plain keys
    assert ids(job_type="x", team="red") == ([a], 1)
    assert ids(model="m1") == ([b, a], 2)
    after = datetime.fromtimestamp(start + 15, tz=UTC)
    assert ids(created_after=after.isoformat().replace("+00:00", "Z")) == ([d, c], 2)
    assert ids(created_after=after.replace(tzinfo=None).isoformat()) == ([d, c], 2)
    assert ids(created_by_me="false", page=0, page_size=100, order_by="-created") == (
        [d, c, b, a],
        4,
    )
    assert mis.get("/batch/jobs", params={"status": "DONE"}).status_code == 422
    assert mis.get("/batch/jobs", params={"created_after": "yesterday"}).status_code == 422


def test_delete_job_and_file(mis: httpx.Client, mistral_job: MakeJob) -> None:
    job = mistral_job([line("0")])
    deleted = mis.delete(f"/batch/jobs/{job['id']}")
    assert deleted.json() == {"id": job["id"], "object": "batch", "deleted": True}
    gone = mis.get(f"/batch/jobs/{job['id']}")
    assert gone.status_code == 404
    assert gone.json()["object"] == "error" and job["id"] in gone.json()["message"]
    file_id = job["input_files"][0]
    assert mis.delete(f"/files/{file_id}").json() == {
        "id": file_id,
        "object": "file",
        "deleted": True,
    }
    assert mis.get(f"/files/{file_id}").status_code == 404


def test_upload_defaults_and_file_fields(mis: httpx.Client) -> None:
    data = b'{"custom_id": "0", "body": {}}\n{"custom_id": "1", "body": {}}\n'
    up = mis.post(
        "/files",
        data={"visibility": "workspace", "purpose": "batch"},
        files={"file": ("batch.jsonl", data)},
    )
    obj = up.json()
    assert UUID.match(obj["id"])
    assert obj["bytes"] == len(data) and obj["num_lines"] == 2
    assert (obj["purpose"], obj["sample_type"], obj["source"]) == (
        "batch",
        "batch_request",
        "upload",
    )
    assert obj["mimetype"] == "application/jsonl" and obj["visibility"] == "workspace"
    assert "deleted" not in obj
    assert mis.get(f"/files/{obj['id']}").json() == {**obj, "deleted": False}
    listed = mis.get("/files").json()
    assert listed["total"] == 1 and [f["id"] for f in listed["data"]] == [obj["id"]]
    bad = mis.post("/files", data={"purpose": "nonsense"}, files={"file": ("a.jsonl", data)})
    assert bad.status_code == 422


def test_mistral_401_and_range(emulator: Emulator, mis: httpx.Client) -> None:
    with httpx.Client(transport=emulator.transport(), base_url="http://e/mistral/v1") as bare:
        response = bare.get("/batch/jobs")
    assert response.status_code == 401
    body = response.json()
    assert body["message"] == "Unauthorized" and set(body) == {"message", "request_id"}
    file_id = mis.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", b"0123456789")}
    ).json()["id"]
    part = mis.get(f"/files/{file_id}/content", headers={"Range": "bytes=4-"})
    assert part.status_code == 206 and part.content == b"456789"
    assert part.headers["content-range"] == "bytes 4-9/10"


def test_dialects_do_not_see_each_others_objects(
    oai: httpx.Client, mis: httpx.Client, mistral_job: MakeJob
) -> None:
    job = mistral_job([line("0")])
    assert oai.get(f"/batches/{job['id']}").status_code == 404
    assert oai.get(f"/files/{job['input_files'][0]}").status_code == 404
