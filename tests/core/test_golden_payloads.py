"""Real payloads from the providers' docs and SDKs parse into the normalized models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from omnibatch import BatchStatus, ProviderResponseError, ResultStatus
from omnibatch._answers import normalize_line
from omnibatch._lifecycle import FetchedSource
from omnibatch.adapter import ResultSource
from omnibatch.results import complete_result, iter_batch_results
from omnibatch_mistral.adapter import MistralAdapter
from omnibatch_openai.adapter import OpenAIAdapter

from ..conftest import shared_path

OPENAI = OpenAIAdapter(api_key="k")
MISTRAL = MistralAdapter(api_key="k")
OUTPUT = ResultSource("output")


def _json(*parts: str) -> Any:
    return json.loads(shared_path("specs", "examples", *parts).read_text(encoding="utf-8"))


def _lines(*parts: str) -> list[dict[str, Any]]:
    text = shared_path("specs", "examples", *parts).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_openai_completed_batch() -> None:
    batch = OPENAI.parse_batch(_json("openai", "batch_retrieve_completed.json"))
    assert batch.status is BatchStatus.SUCCEEDED
    assert batch.provider_status == "completed"
    assert batch.request_counts.total == 100
    assert batch.request_counts.succeeded == 95
    assert batch.request_counts.failed == 5
    assert batch.output_file_ids == ("file-cvaTdG",)
    assert batch.error_file_ids == ("file-HOWS94",)
    assert batch.created_at == datetime.fromtimestamp(1711471533, tz=UTC)
    assert batch.ended_at == datetime.fromtimestamp(1711493163, tz=UTC)
    assert batch.is_partial


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("batch_create_response.json", BatchStatus.VALIDATING),
        ("batch_cancel_cancelling.json", BatchStatus.CANCELLING),
        ("batch_object_with_usage.json", BatchStatus.SUCCEEDED),
    ],
)
def test_openai_batch_objects(name: str, status: BatchStatus) -> None:
    raw = _json("openai", name)
    batch = OPENAI.parse_batch(raw)
    assert batch.status is status
    assert batch.id == raw["id"]
    assert batch.metadata == (raw.get("metadata") or {})
    assert batch.raw == raw
    if "usage" in raw:
        assert batch.usage is not None
        assert batch.usage.total_tokens == raw["usage"]["total_tokens"]


def test_openai_list_page() -> None:
    raw = _json("openai", "batch_list_response.json")
    batches = [OPENAI.parse_batch(item) for item in raw["data"]]
    assert [b.id for b in batches] == [item["id"] for item in raw["data"]]


def test_openai_output_and_expired_lines() -> None:
    results = [
        OPENAI.parse_result_line(r, OUTPUT) for r in _lines("openai", "batch_output_guide.jsonl")
    ]
    assert {r.status for r in results} == {ResultStatus.SUCCEEDED}
    assert results[0].custom_id == "request-2"
    assert results[0].response is not None and results[0].response["object"] == "chat.completion"
    assert results[0].usage is not None and results[0].usage.total_tokens == 24
    expired = [
        OPENAI.parse_result_line(r, ResultSource("error"))
        for r in _lines("openai", "batch_error_expired_guide.jsonl")
    ]
    assert expired and {r.status for r in expired} == {ResultStatus.EXPIRED}
    assert expired[0].error is not None and expired[0].error.code == "batch_expired"
    spec = _lines("openai", "batch_output_spec_example.jsonl")
    assert OPENAI.parse_result_line(spec[0], OUTPUT).ok


def test_azure_quirks() -> None:
    iso = OPENAI.parse_batch(_json("azure_openai", "batch_rest_validating_iso_timestamps.json"))
    assert iso.status is BatchStatus.VALIDATING and iso.provider_status == "Validating"
    assert iso.created_at is not None and iso.created_at.year == 2024 and iso.created_at.tzinfo
    assert iso.request_counts.total == 0
    empty = OPENAI.parse_batch(_json("azure_openai", "batch_validating_empty_file_ids.json"))
    assert empty.output_file_ids == () and empty.error_file_ids == ()
    done = OPENAI.parse_batch(_json("azure_openai", "batch_completed_python.json"))
    assert done.status is BatchStatus.SUCCEEDED and done.endpoint is None
    line = OPENAI.parse_result_line(_json("azure_openai", "batch_output_line.json"), OUTPUT)
    assert line.ok and line.custom_id == "task-0"


def test_mistral_output_lines() -> None:
    results = [
        MISTRAL.parse_result_line(r, OUTPUT) for r in _lines("mistral", "batch_output.jsonl")
    ]
    assert results and all(r.ok for r in results)
    assert results[0].custom_id == "0"
    assert results[0].usage is not None and results[0].usage.total_tokens == 138


def test_mistral_sdk_fixture_lines(tmp_path: Path) -> None:
    lines = _lines("mistral", "sdk_test_output_lines.jsonl")
    parsed = [MISTRAL.parse_result_line(r, OUTPUT) for r in lines[:4]]
    assert [p.status for p in parsed] == [
        ResultStatus.SUCCEEDED,
        ResultStatus.ERRORED,  # a plain-string error
        ResultStatus.SUCCEEDED,
        ResultStatus.ERRORED,  # HTTP 500 without an error field
    ]
    assert parsed[1].error is not None and parsed[1].error.message == "rate limited"
    assert parsed[3].status_code == 500
    # The last fixture line has no custom_id: reading it fails loudly, naming the file and line.
    path = tmp_path / "out.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    with pytest.raises(ProviderResponseError, match=r"line 5"):
        list(iter_batch_results(MISTRAL, [FetchedSource(OUTPUT, path)], batch_id="b"))


def test_mistral_batch_job_shape() -> None:
    raw = {
        "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "object": "batch",
        "input_files": ["229744f2-67fd-422a-bd32-4c6ab5ea3c44"],
        "endpoint": "/v1/chat/completions",
        "model": "mistral-large-latest",
        "errors": [{"message": "bad line", "count": 2}],
        "status": "TIMEOUT_EXCEEDED",
        "created_at": 1761577900,
        "total_requests": 10,
        "completed_requests": 6,
        "succeeded_requests": 5,
        "failed_requests": 1,
        "output_file": "out-1",
        "error_file": None,
        "metadata": {"job_type": "texting"},
    }
    batch = MISTRAL.parse_batch(raw)
    assert batch.status is BatchStatus.EXPIRED
    assert batch.request_counts.pending == 4
    assert batch.output_file_ids == ("out-1",) and batch.error_file_ids == ()
    assert batch.errors[0].message == "bad line"
    assert batch.metadata == {"job_type": "texting"}


@pytest.mark.parametrize("adapter", [OPENAI, MISTRAL])
def test_odd_but_valid_failure_lines_parse(adapter: OpenAIAdapter | MistralAdapter) -> None:
    """Numeric error codes and non-object error bodies are read, never crash the merge."""
    numeric = {"custom_id": "a", "response": None, "error": {"code": 500, "message": "boom"}}
    text_body = {"custom_id": "b", "response": {"status_code": 502, "body": "Bad Gateway"}}
    for record in (numeric, text_body):
        parsed = adapter.parse_result_line(record, OUTPUT)
        line = normalize_line(adapter.output_line(record, OUTPUT), adapter.read_answer)
        assert parsed.status is ResultStatus.ERRORED and parsed.error is not None
        assert line == complete_result(parsed, adapter.read_answer).to_output_line()
    assert adapter.parse_result_line(numeric, OUTPUT).error.code == "500"  # type: ignore[union-attr]


def test_azure_golden_payloads_through_the_azure_adapter() -> None:
    from omnibatch.flows import HttpResponse
    from omnibatch.pipeline import validate_input
    from omnibatch_azure.adapter import AzureAdapter

    azure = AzureAdapter(api_key="k", base_url="https://res.openai.azure.com")
    iso = azure.parse_batch(_json("azure_openai", "batch_rest_validating_iso_timestamps.json"))
    assert iso.provider == "azure" and iso.status is BatchStatus.VALIDATING
    done = azure.parse_batch(_json("azure_openai", "batch_completed_python.json"))
    assert done.status is BatchStatus.SUCCEEDED
    line = azure.parse_result_line(_json("azure_openai", "batch_output_line.json"), OUTPUT)
    assert line.ok and line.custom_id == "task-0"
    fast = azure.output_line(_json("azure_openai", "batch_output_line.json"), OUTPUT)
    assert normalize_line(fast, azure.read_answer) == (
        complete_result(line, azure.read_answer).to_output_line()
    )
    # A listed page, read by the list flow itself.
    flow = azure.list_batches(cursor=None, limit=10, filters={})
    request = next(flow)
    assert request.path == "/batches" and azure.base_url.endswith("/openai/v1")
    body = json.dumps(_json("azure_openai", "batch_list_preview.json")).encode()
    with pytest.raises(StopIteration) as stop:
        flow.send(HttpResponse(200, {"content-type": "application/json"}, body))
    page = stop.value.value
    assert page.items and all(b.provider == "azure" for b in page.items)
    file_object = _json("azure_openai", "file_object_processed.json")
    assert file_object["purpose"] in azure.facts.file_purposes
    report = validate_input(
        shared_path("specs", "examples", "azure_openai", "batch_input_chat.jsonl"), azure
    )
    assert report.problem_count == 0 and report.total > 0


def test_groq_golden_input_validates_for_groq() -> None:
    from omnibatch.pipeline import validate_input
    from omnibatch_groq.adapter import GroqAdapter

    report = validate_input(
        shared_path("specs", "examples", "groq", "batch_input.jsonl"), GroqAdapter(api_key="k")
    )
    assert report.problem_count == 0 and report.endpoint == "/v1/chat/completions"
    assert report.model == "llama-3.1-8b-instant"
