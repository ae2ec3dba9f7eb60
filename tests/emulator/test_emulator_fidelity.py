"""Defects independent clients found in the emulator (schemathesis, other libraries, the
SDKs' types), each pinned by a test that failed before its fix."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import orjson
import pytest

from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock, serve
from omnibatch_anthropic.dialect import AnthropicDialect
from omnibatch_gemini.dialect import GeminiDialect
from omnibatch_mistral.dialect import MistralDialect
from omnibatch_openai.dialect import OpenAIDialect

from ._support import chat_line, jsonl, read_jsonl

ALL = (OpenAIDialect, MistralDialect, AnthropicDialect, GeminiDialect)


def _upload(mis: httpx.Client, **fields: str) -> httpx.Response:
    data = {"purpose": "batch", **fields}
    return mis.post("/files", data=data, files={"file": ("in.jsonl", jsonl([chat_line("a")]))})


# -- Mistral ----------------------------------------------------------------------------


@pytest.mark.parametrize("expiry", [str(10**17), "0", "-5", str(2**63)])
def test_mistral_refuses_an_expiry_out_of_range_and_stays_healthy(
    mis: httpx.Client, expiry: str
) -> None:
    refused = _upload(mis, expiry=expiry)
    assert refused.status_code == 422, refused.text
    detail = refused.json()["message"]["detail"][0]
    assert detail["loc"] == ["body", "expiry"]
    # Nothing was stored, and listing still works.
    listing = mis.get("/files")
    assert listing.status_code == 200 and listing.json()["data"] == []


def test_mistral_expiry_in_range_sets_expires_at(mis: httpx.Client) -> None:
    stored = _upload(mis, expiry="48").json()
    assert stored["expires_at"] == stored["created_at"] + 48 * 3600
    assert mis.get("/files").status_code == 200


def test_mistral_file_purposes_follow_the_sdk(mis: httpx.Client) -> None:
    assert _upload(mis, purpose="audio").status_code == 422
    accepted = _upload(mis, purpose="agentic_safety")
    assert accepted.status_code == 200 and accepted.json()["purpose"] == "agentic_safety"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/files", {"purpose": "audio"}),
        ("/files", {"sample_type": "nonsense"}),
        ("/files", {"source": "elsewhere"}),
        ("/files", {"include_total": "null"}),
        ("/files", {"include_total": "maybe"}),
        ("/batch/jobs", {"status": "DONE"}),
        ("/batch/jobs", {"created_by_me": "null"}),
        ("/batch/jobs", {"order_by": "name"}),
    ],
)
def test_mistral_bad_query_values_are_422(
    mis: httpx.Client, path: str, params: dict[str, str]
) -> None:
    answer = mis.get(path, params=params)
    assert answer.status_code == 422, answer.text
    (detail,) = answer.json()["message"]["detail"]
    assert detail["loc"] == ["query", next(iter(params))]


def test_mistral_file_filters_and_total(mis: httpx.Client, emulator: Emulator) -> None:
    upload = _upload(mis).json()
    emulator.engine.add_file(
        "f-generated",
        b"x",
        purpose="batch",
        filename="gen.jsonl",
        dialect="mistral",
        extra={"source": "mistral", "sample_type": "batch_result"},
    )
    by_source = mis.get("/files", params={"source": "upload"}).json()
    assert [f["id"] for f in by_source["data"]] == [upload["id"]]
    assert {f["id"] for f in mis.get("/files", params={"source": "mistral"}).json()["data"]} == {
        "f-generated"
    }
    assert mis.get("/files").json()["total"] == 2
    assert mis.get("/files", params={"include_total": "false"}).json()["total"] is None


def test_mistral_inline_is_read_as_fastapi_reads_a_boolean(
    mis: httpx.Client, emulator: Emulator
) -> None:
    file_id = _upload(mis).json()["id"]
    job = mis.post(
        "/batch/jobs",
        json={"input_files": [file_id], "endpoint": "/v1/chat/completions", "model": "m"},
    ).json()
    emulator.complete(job["id"])
    assert mis.get(f"/batch/jobs/{job['id']}", params={"inline": "1"}).json()["outputs"]
    assert mis.get(f"/batch/jobs/{job['id']}", params={"inline": "null"}).status_code == 422
    assert mis.get(f"/batch/jobs/{job['id']}", params={"inline": "0"}).json().get("outputs") is None


def test_mistral_wrong_method_on_a_served_path_is_405(mis: httpx.Client) -> None:
    answer = mis.put("/files")
    assert answer.status_code == 405 and answer.json() == {"detail": "Method Not Allowed"}
    assert mis.get("/nowhere").status_code == 404


# -- OpenAI -------------------------------------------------------------------------------


def test_openai_404_names_the_service_path_not_the_mount(oai: httpx.Client) -> None:
    answer = oai.put("/batches")
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "Invalid URL (PUT /v1/batches)"


def test_openai_cancelled_while_validating_counts_match_its_files(
    oai: httpx.Client, emulator: Emulator, openai_batch: Any
) -> None:
    batch = openai_batch([chat_line(f"r{i}") for i in range(2000)])
    assert oai.post(f"/batches/{batch['id']}/cancel").json()["status"] == "cancelling"
    emulator.advance(5)
    done = oai.get(f"/batches/{batch['id']}").json()
    assert done["status"] == "cancelled"
    errors = read_jsonl(oai.get(f"/files/{done['error_file_id']}/content").content)
    assert len(errors) == 2000 and {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert done["output_file_id"] is None
    assert done["request_counts"] == {"total": 2000, "completed": 0, "failed": 2000}


def test_openai_cancelled_while_running_counts_every_line(
    oai: httpx.Client, emulator: Emulator, openai_batch: Any
) -> None:
    batch = openai_batch([chat_line(f"r{i}") for i in range(100)])
    emulator.advance(0.5 + 0.1)  # 40 done
    oai.post(f"/batches/{batch['id']}/cancel")
    emulator.advance(5)
    done = oai.get(f"/batches/{batch['id']}").json()
    counts = done["request_counts"]
    outputs = read_jsonl(oai.get(f"/files/{done['output_file_id']}/content").content)
    errors = read_jsonl(oai.get(f"/files/{done['error_file_id']}/content").content)
    assert counts["completed"] == len(outputs) == 40
    assert counts["failed"] == len(errors) == 60
    assert counts["total"] == counts["completed"] + counts["failed"] == 100


# -- every dialect: methods nobody routes -----------------------------------------------


def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length and not request.startswith(b"HEAD"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body


PATHS = {
    "openai": "/openai/v1/batches",
    "mistral": "/mistral/v1/batch/jobs",
    "anthropic": "/anthropic/v1/messages/batches",
    "gemini": "/gemini/v1beta/batches",
}


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "PROPFIND", "CONNECT"])
def test_unrouted_methods_get_the_dialects_json_answer(method: str) -> None:
    emulator = Emulator(ALL, clock=ManualClock())
    with serve(emulator=emulator) as server:
        for name, path in PATHS.items():
            auth = (
                "x-goog-api-key: k\r\n"
                if name == "gemini"
                else "x-api-key: k\r\nanthropic-version: 2023-06-01\r\n"
                if name == "anthropic"
                else "Authorization: Bearer k\r\n"
            )
            request = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\n\r\n"
            status, headers, body = _raw(server.port, request.encode())
            assert status in (404, 405), (name, method, status, body[:200])
            assert headers["content-type"].startswith("application/json"), (name, method)
            if method == "HEAD":
                assert body == b""
            else:
                assert isinstance(orjson.loads(body), dict)


def test_unknown_methods_in_process_are_never_5xx() -> None:
    emulator = Emulator(ALL, config=EmulatorConfig(), clock=ManualClock())
    with httpx.Client(transport=emulator.transport(), base_url="http://e") as client:
        for path in PATHS.values():
            for method in ("HEAD", "OPTIONS", "TRACE", "PATCH", "PUT"):
                answer = client.request(
                    method,
                    path,
                    headers={
                        "Authorization": "Bearer k",
                        "x-goog-api-key": "k",
                        "anthropic-version": "2023-06-01",
                    },
                )
                assert answer.status_code in (404, 405), (method, path, answer.status_code)
