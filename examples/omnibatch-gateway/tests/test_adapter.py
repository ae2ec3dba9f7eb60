"""The adapter's wire details, checked by driving its flows by hand (no HTTP at all)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from omnibatch.plugin import (
    BatchStatus,
    CreateSpec,
    HttpResponse,
    InputPart,
    InputRef,
    ResultSource,
    ResultStatus,
    check_adapter_class,
)

from omnibatch_gateway.adapter import GatewayAdapter

JOB = {
    "job_id": "job_1",
    "state": "working",
    "endpoint": "/v1/chat/completions",
    "model": "gw-small-1",
    "input_file_id": "gwf_in",
    "results_file_id": None,
    "failures_file_id": None,
    "labels": {"team": "search"},
    "progress": {"total": 3, "succeeded": 1, "failed": 0},
    "created": "2025-06-15T14:40:00Z",
    "started": "2025-06-15T14:40:01Z",
    "finished": None,
    "deadline": "2025-06-16T14:40:00Z",
    "stop_requested": None,
    "problems": [],
}


def response(body: object, status: int = 200, **headers: str) -> HttpResponse:
    return HttpResponse(status, headers, orjson.dumps(body))


def test_the_class_passes_the_registry_checks() -> None:
    assert check_adapter_class(GatewayAdapter) == []


def test_the_key_goes_in_the_gateway_header_only() -> None:
    adapter = GatewayAdapter(api_key="gw-secret")
    assert adapter.auth_headers() == {"X-Gateway-Key": "gw-secret"}
    assert "gw-secret" not in repr(adapter)


def test_upload_then_create(tmp_path: Path) -> None:
    adapter = GatewayAdapter(api_key="k")
    path = tmp_path / "part-00000.jsonl"
    path.write_text("{}\n")
    part = InputPart(path, 0, 1, 3, "/v1/chat/completions", "gw-small-1")
    flow = adapter.upload(part)
    request = next(flow)
    assert (request.method, request.path, request.data) == (
        "POST",
        "/files",
        {"purpose": "batch-input"},
    )
    with pytest.raises(StopIteration) as done:
        flow.send(response({"file_id": "gwf_in"}))
    ref: InputRef = done.value.value
    assert ref.file_id == "gwf_in"

    spec = CreateSpec("/v1/chat/completions", metadata={"team": "search"})
    flow2 = adapter.create(ref, spec)
    create = next(flow2)
    assert (create.method, create.path) == ("POST", "/jobs")
    assert create.json == {
        "input_file_id": "gwf_in",
        "endpoint": "/v1/chat/completions",
        "deadline": "24h",
        "labels": {"team": "search"},
    }
    with pytest.raises(StopIteration) as created:
        flow2.send(response(JOB))
    batch = created.value.value
    assert (batch.id, batch.status, batch.provider_status) == (
        "job_1",
        BatchStatus.RUNNING,
        "working",
    )
    assert batch.metadata == {"team": "search"} and batch.request_counts.pending == 2


def test_list_pages_with_the_token() -> None:
    adapter = GatewayAdapter(api_key="k")
    flow = adapter.list_batches(cursor="job_9", limit=2, filters={})
    request = next(flow)
    assert list(request.params) == [("page_size", "2"), ("page_token", "job_9")]
    with pytest.raises(StopIteration) as done:
        flow.send(response({"jobs": [JOB], "next_page_token": "job_1"}))
    page = done.value.value
    assert [b.id for b in page.items] == ["job_1"] and page.next_cursor == "job_1"


def test_result_lines() -> None:
    adapter = GatewayAdapter(api_key="k")
    source = ResultSource("output")
    ok = adapter.parse_result_line(
        {
            "custom_id": "a",
            "status_code": 200,
            "body": {"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
        },
        source,
    )
    assert ok.status is ResultStatus.SUCCEEDED and ok.usage and ok.usage.total_tokens == 7
    stopped = adapter.parse_result_line(
        {"custom_id": "b", "status_code": None, "fault": {"code": "stopped", "message": "m"}},
        source,
    )
    assert stopped.status is ResultStatus.CANCELLED
    failed = adapter.parse_result_line(
        {"custom_id": "c", "status_code": 400, "fault": {"code": "bad_request", "message": "no"}},
        source,
    )
    assert (
        failed.status is ResultStatus.ERRORED
        and failed.error
        and failed.error.code == "bad_request"
    )


def test_error_info_reads_the_fault_and_request_id() -> None:
    adapter = GatewayAdapter(api_key="k")
    info = adapter.error_info(
        response(
            {"fault": {"code": "not_found", "message": "job x does not exist"}},
            404,
            **{"x-gateway-request-id": "gwr_1"},
        )
    )
    assert (info.message, info.code, info.request_id) == (
        "job x does not exist",
        "not_found",
        "gwr_1",
    )
