"""The Gemini emulator dialect: operations, both API versions, the resumable upload, downloads,
errors and state rules, seen through plain httpx over ``Emulator.transport()`` and through
``BatchClient``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from omnibatch import BatchClient, BatchStatus, NotFoundError, ResultStatus
from omnibatch.emulator import Emulator, EmulatorConfig, FaultPlan, FaultRule, ManualClock
from omnibatch_gemini.dialect import GeminiDialect

ROOT = "http://emulator.test/gemini"
KEY = {"x-goog-api-key": "k"}
CREATE = "/v1beta/models/gemini-2.5-flash:batchGenerateContent"


def inline(key: str | None, text: str = "Hello", **config: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if config:
        request["generationConfig"] = config
    item: dict[str, Any] = {"request": request}
    if key is not None:
        item["metadata"] = {"key": key, "note": f"n-{key}"}
    return item


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(
        seed=5,
        validating_seconds=1,
        requests_per_second=1,
        finalizing_seconds=1,
        cancelling_seconds=1,
    )
    return Emulator([GeminiDialect], config=config, clock=ManualClock())


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=emulator.transport(), base_url=ROOT, headers=KEY) as client:
        yield client


def create_inline(http: httpx.Client, *items: dict[str, Any], path: str = CREATE) -> Any:
    response = http.post(
        path,
        json={
            "batch": {"displayName": "job", "inputConfig": {"requests": {"requests": list(items)}}}
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def upload(
    emulator: Emulator, http: httpx.Client, data: bytes, chunk: int | None = None
) -> dict[str, Any]:
    start = http.post(
        "/upload/v1beta/files",
        headers={
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(len(data)),
            "X-Goog-Upload-Header-Content-Type": "jsonl",
        },
        json={"file": {"display_name": "input.jsonl"}},
    )
    assert start.status_code == 200 and start.headers["x-goog-upload-status"] == "active"
    url = start.headers["x-goog-upload-url"]
    assert url.startswith(f"{ROOT}/upload/v1beta/files?upload_id=")
    size = chunk or len(data)
    offset = 0
    with httpx.Client(transport=emulator.transport()) as bare:  # no key: like the SDK
        while True:
            piece = data[offset : offset + size]
            last = offset + len(piece) >= len(data)
            answer = bare.post(
                url,
                content=piece,
                headers={
                    "X-Goog-Upload-Command": "upload, finalize" if last else "upload",
                    "X-Goog-Upload-Offset": str(offset),
                },
            )
            assert answer.status_code == 200, answer.text
            offset += len(piece)
            if last:
                assert answer.headers["x-goog-upload-status"] == "final"
                file: dict[str, Any] = answer.json()["file"]
                return file


def test_inline_batch_operation_shapes(emulator: Emulator, http: httpx.Client) -> None:
    op = create_inline(http, inline("a"), inline("b", maxOutputTokens=2), inline(None))
    md = op["metadata"]
    assert op["name"].startswith("batches/") and md["name"] == op["name"]
    assert md["@type"].endswith("GenerateContentBatch")
    assert md["state"] == "BATCH_STATE_PENDING" and md["model"] == "models/gemini-2.5-flash"
    assert md["batchStats"] == {"requestCount": "3", "pendingRequestCount": "3"}  # strings
    assert "done" not in op and "output" not in md
    emulator.advance(10)
    done = http.get(f"/v1beta/{op['name']}").json()
    assert done["done"] is True and done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    assert done["metadata"]["batchStats"] == {"requestCount": "3", "successfulRequestCount": "3"}
    answers = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert done["response"]["inlinedResponses"]["inlinedResponses"] == answers
    assert done["response"]["@type"].endswith("GenerateContentBatchOutput")
    # Metadata comes back as given (the key-less request comes back without one).
    assert sorted(str(a.get("metadata")) for a in answers) == sorted(
        [str({"key": "a", "note": "n-a"}), str({"key": "b", "note": "n-b"}), "None"]
    )
    short = next(a for a in answers if a.get("metadata", {}).get("key") == "b")
    candidate = short["response"]["candidates"][0]
    assert candidate["finishReason"] == "MAX_TOKENS"
    assert short["response"]["usageMetadata"]["candidatesTokenCount"] == 2


def test_both_api_versions_are_served(emulator: Emulator, http: httpx.Client) -> None:
    op = create_inline(http, inline("a"), path="/v1/models/gemini-2.5-flash:batchGenerateContent")
    assert http.get(f"/v1/{op['name']}").json()["name"] == op["name"]
    assert http.get("/v1/batches").json()["operations"][0]["name"] == op["name"]


def test_file_batch_upload_download_and_results(emulator: Emulator, http: httpx.Client) -> None:
    lines = [
        {
            "key": "k1",
            "request": {
                "contents": [{"parts": [{"text": "one"}]}],
                "generation_config": {"max_output_tokens": 3},
            },
        },
        {"key": "k2", "request": {"contents": [{"parts": [{"text": "two [[emulator:error]]"}]}]}},
        {"key": "k3", "request": {"contents": []}},
    ]
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    file = upload(emulator, http, data, chunk=50)
    assert file["name"].startswith("files/") and file["sizeBytes"] == str(len(data))
    assert file["displayName"] == "input.jsonl" and file["state"] == "ACTIVE"
    assert http.get(f"/v1beta/{file['name']}").json()["name"] == file["name"]
    op = http.post(
        CREATE, json={"batch": {"display_name": "f", "input_config": {"file_name": file["name"]}}}
    ).json()
    assert op["metadata"]["inputConfig"] == {"fileName": file["name"]}
    emulator.advance(10)
    done = http.get(f"/v1beta/{op['name']}").json()
    stats = done["metadata"]["batchStats"]
    assert stats == {"requestCount": "3", "successfulRequestCount": "1", "failedRequestCount": "2"}
    result_file = done["response"]["responsesFile"]
    assert result_file == "files/batch-" + op["name"].removeprefix("batches/")
    for path in (f"/download/v1beta/{result_file}:download", f"/v1beta/{result_file}:download"):
        got = http.get(path, params={"alt": "media"})
        assert got.status_code == 200
        rows = {r["key"]: r for r in map(orjson.loads, got.content.splitlines())}
        assert set(rows) == {"k1", "k2", "k3"}
    assert (
        "response" in rows["k1"]
        and rows["k1"]["response"]["usageMetadata"]["candidatesTokenCount"] <= 3
    )
    assert rows["k2"]["error"]["code"] == 3 and "marker" in rows["k2"]["error"]["message"]
    assert "contents is not specified" in rows["k3"]["error"]["message"]
    assert http.get(f"/v1beta/{result_file}:download").status_code == 400  # needs alt=media
    assert http.delete(f"/v1beta/{file['name']}").json() == {}
    missing = http.get(f"/v1beta/{file['name']}")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def test_resumable_upload_resend_query_and_errors(http: httpx.Client) -> None:
    start = http.post(
        "/upload/v1beta/files",
        headers={
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": "6",
        },
    )
    url = start.headers["x-goog-upload-url"]
    assert (
        http.post(
            url,
            content=b"abc",
            headers={"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0"},
        ).status_code
        == 200
    )
    # The same chunk again (its answer was lost): replaces, never duplicates.
    assert (
        http.post(
            url,
            content=b"abc",
            headers={"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0"},
        ).status_code
        == 200
    )
    query = http.post(url, headers={"X-Goog-Upload-Command": "query"})
    assert query.headers["x-goog-upload-size-received"] == "3"
    gap = http.post(
        url, content=b"x", headers={"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "9"}
    )
    assert gap.status_code == 400
    final = http.post(
        url,
        content=b"def",
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "3"},
    )
    name = final.json()["file"]["name"]
    assert http.get(f"/download/v1beta/{name}:download", params={"alt": "media"}).content == (
        b"abcdef"
    )
    again = http.post(
        url,
        content=b"def",
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "3"},
    )
    assert again.json()["file"]["name"] == name, "a resent finalize names the same file"
    plain = http.post("/upload/v1beta/files", headers={"X-Goog-Upload-Protocol": "multipart"})
    assert plain.status_code == 400


def test_errors_have_google_s_shape(emulator: Emulator, http: httpx.Client) -> None:
    with httpx.Client(transport=emulator.transport(), base_url=ROOT) as bare:
        denied = bare.get("/v1beta/batches")
    # No key: the real API's 403 PERMISSION_DENIED (not a 401).
    assert denied.status_code == 403
    assert denied.json()["error"]["status"] == "PERMISSION_DENIED"
    assert denied.json()["error"]["code"] == 403
    assert (
        http.get("/v1beta/batches", headers={"x-goog-api-key": ""}, params={"key": "k"}).status_code
        == 200
    )  # ?key= works too
    locked = Emulator([GeminiDialect], config=EmulatorConfig(api_key="right"), clock=ManualClock())
    with httpx.Client(transport=locked.transport(), base_url=ROOT, headers=KEY) as wrong:
        answer = wrong.get("/v1beta/batches")
        body = answer.json()
        assert body["error"]["message"] == "API key not valid. Please pass a valid API key."
        # A wrong key: 400 INVALID_ARGUMENT with the ErrorInfo reason API_KEY_INVALID.
        assert answer.status_code == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
        reasons = [d.get("reason") for d in body["error"]["details"]]
        assert "API_KEY_INVALID" in reasons
    nothing = http.get("/v1beta/batches/nope")
    assert nothing.status_code == 404 and nothing.json() == {
        "error": {"code": 404, "message": "Batch batches/nope not found.", "status": "NOT_FOUND"}
    }
    bad = http.post(CREATE, json={"batch": {"inputConfig": {}}})
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    too_big = http.post(
        CREATE,
        json={
            "batch": {
                "inputConfig": {"requests": {"requests": [inline("a", "x" * (20 * 1024 * 1024))]}}
            }
        },
    )
    assert too_big.status_code == 400 and "payload size" in too_big.json()["error"]["message"]


def test_a_bad_input_file_fails_the_batch(emulator: Emulator, http: httpx.Client) -> None:
    file = upload(
        emulator, http, b'{"key": "a", "request": {"contents": [{"parts": []}]}}\n{oops\n'
    )
    op = http.post(CREATE, json={"batch": {"inputConfig": {"fileName": file["name"]}}}).json()
    emulator.advance(5)
    done = http.get(f"/v1beta/{op['name']}").json()
    assert done["metadata"]["state"] == "BATCH_STATE_FAILED" and done["done"] is True
    assert done["error"]["code"] == 3 and "line 2" in done["error"]["message"]
    assert "output" not in done["metadata"]


def test_cancel_delete_and_listing(emulator: Emulator, http: httpx.Client) -> None:
    ops = []
    for i in range(3):
        ops.append(create_inline(http, inline(f"r{i}"), inline(f"s{i}")))
        emulator.advance(0.1)
    first = http.get("/v1beta/batches", params={"pageSize": 2}).json()
    assert [o["name"] for o in first["operations"]] == [ops[2]["name"], ops[1]["name"]]
    rest = http.get(
        "/v1beta/batches", params={"pageSize": 2, "pageToken": first["nextPageToken"]}
    ).json()
    assert [o["name"] for o in rest["operations"]] == [ops[0]["name"]]
    assert "nextPageToken" not in rest
    name = ops[0]["name"]
    assert http.post(f"/v1beta/{name}:cancel").json() == {}
    assert http.get(f"/v1beta/{name}").json()["metadata"]["state"] == "BATCH_STATE_CANCELLING"
    emulator.advance(5)
    assert http.get(f"/v1beta/{name}").json()["metadata"]["state"] == "BATCH_STATE_CANCELLED"
    late = http.post(f"/v1beta/{name}:cancel")
    assert late.status_code == 400 and late.json()["error"]["status"] == "FAILED_PRECONDITION"
    listed = http.get("/v1beta/batches").json()["operations"]
    done = next(o for o in listed if o["name"] == ops[2]["name"])
    # Listings leave inline responses out.
    assert done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"] == []
    assert http.delete(f"/v1beta/{name}").json() == {}
    assert http.post(f"/v1beta/{ops[1]['name']}:delete").json() == {}
    assert [o["name"] for o in http.get("/v1beta/batches").json()["operations"]] == [ops[2]["name"]]


def test_files_are_listed_newest_first(emulator: Emulator, http: httpx.Client) -> None:
    names = []
    for i in range(3):
        names.append(upload(emulator, http, f"line {i}\n".encode())["name"])
        emulator.advance(1)
    page = http.get("/v1beta/files", params={"pageSize": 2}).json()
    assert [f["name"] for f in page["files"]] == names[::-1][:2] and page["nextPageToken"]


def test_client_lifecycle_in_both_modes_and_cleanup(emulator: Emulator) -> None:
    lines = [
        {
            "custom_id": f"r{i}",
            "body": {
                "model": "gemini-2.5-flash",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": f"q {i}"}],
            },
        }
        for i in range(4)
    ]
    for mode in ("inline", "file"):
        with BatchClient(
            "gemini",
            api_key="k",
            base_url=ROOT,
            transport=emulator.transport(),
            sleep=emulator.advance,
            options={"input_mode": mode},
        ) as client:
            batch = client.submit(lines)
            done = client.wait(batch.id)
            assert done.status is BatchStatus.SUCCEEDED and done.request_counts.succeeded == 4
            assert {r.custom_id: r.status for r in client.results(batch.id)} == {
                f"r{i}": ResultStatus.SUCCEEDED for i in range(4)
            }
            owned = [*done.input_file_ids, *done.output_file_ids]
            assert bool(owned) is (mode == "file")
            assert client.cleanup(batch.id) == owned
            for file_id in owned:
                with pytest.raises(NotFoundError):
                    client.download_file(file_id)
            files = client.run(client.adapter.list_files(cursor=None, limit=10))
            assert all(f.id not in owned for f in files.items)


def test_injected_faults_answer_in_google_s_shape() -> None:
    plan = FaultPlan(
        rules=[
            FaultRule(route="re:^GET ", kind="429", times=1),
            FaultRule(route="re:^GET ", kind="503", times=1),
        ]
    )
    faulty = Emulator([GeminiDialect], config=EmulatorConfig(faults=plan), clock=ManualClock())
    with httpx.Client(transport=faulty.transport(), base_url=ROOT, headers=KEY) as http:
        limited = http.get("/v1beta/batches")
        assert limited.status_code == 429
        assert limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        unavailable = http.get("/v1beta/batches")
        assert unavailable.json()["error"] == {
            "code": 503,
            "message": unavailable.json()["error"]["message"],
            "status": "UNAVAILABLE",
        }
