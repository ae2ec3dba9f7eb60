"""The adapter for the Example LLM Gateway's batch API (``/v2``).

Wire facts: the key travels in ``X-Gateway-Key``; upload ``POST /files`` (multipart ``file``,
``purpose=batch-input``), create ``POST /jobs``, retrieve ``GET /jobs/{id}``, list
``GET /jobs?page_size=&page_token=`` (newest first), stop ``POST /jobs/{id}/stop``, download
``GET /files/{id}/content``, delete ``DELETE /files/{id}``. Input lines are OpenAI batch lines;
successes land in the results file, everything else in the failures file. Errors look like
``{"fault": {"code", "message"}}`` with an ``x-gateway-request-id`` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from omnibatch.plugin import (
    Batch,
    BatchErrorDetail,
    BatchRequest,
    BatchResult,
    BatchStatus,
    Capabilities,
    CreateSpec,
    ErrorInfo,
    FilePart,
    Flow,
    HttpRequest,
    HttpResponse,
    InputPart,
    InputRef,
    Page,
    ProviderAdapter,
    ProviderLimits,
    RequestCounts,
    ResultError,
    ResultSource,
    ResultStatus,
    Usage,
    query,
    to_datetime,
)

from omnibatch_gateway.status import GATEWAY_STATES

__all__ = ["API_KEY_HEADER", "GatewayAdapter"]

API_KEY_HEADER = "X-Gateway-Key"

# Failure codes that mean "never ran" rather than "failed".
_NEVER_RAN = {"stopped": ResultStatus.CANCELLED, "timed_out": ResultStatus.EXPIRED}


class GatewayAdapter(ProviderAdapter):
    """The Example LLM Gateway: OpenAI-style request lines, its own jobs API."""

    name: ClassVar[str] = "gateway"
    display_name: ClassVar[str] = "Example LLM Gateway"
    default_base_url: ClassVar[str] = "https://gateway.example.com/v2"
    api_key_env: ClassVar[str | None] = "GATEWAY_API_KEY"
    base_url_env: ClassVar[str | None] = "GATEWAY_BASE_URL"
    emulator_prefix: ClassVar[str] = "/gateway/v2"
    status_map: ClassVar[Mapping[str, BatchStatus]] = GATEWAY_STATES
    documented_statuses: ClassVar[frozenset[str]] = frozenset(GATEWAY_STATES)
    endpoints: ClassVar[frozenset[str]] = frozenset({"/v1/chat/completions", "/v1/embeddings"})
    limits: ClassVar[ProviderLimits] = ProviderLimits(
        max_requests=10_000,
        max_bytes=50 * 1024 * 1024,
        max_metadata_pairs=16,
        max_metadata_key_length=64,
        max_metadata_value_length=256,
        custom_id_pattern=r"[A-Za-z0-9_.:-]{1,64}",
    )
    capabilities: ClassVar[Capabilities] = Capabilities()

    # --- credentials and errors ---------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {API_KEY_HEADER: self.api_key} if self.api_key else {}

    def error_info(self, response: HttpResponse) -> ErrorInfo:
        request_id = response.headers.get("x-gateway-request-id")
        try:
            fault = response.json().get("fault")
        except (ValueError, AttributeError):
            fault = None
        if not isinstance(fault, Mapping):
            return super().error_info(response)
        message = str(fault.get("message") or f"HTTP {response.status_code}")
        return ErrorInfo(message, fault.get("code"), request_id)

    # --- translation ----------------------------------------------------------------------------

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        # The gateway reads OpenAI batch lines as they are.
        return {
            "custom_id": request.custom_id,
            "method": "POST",
            "url": request.url,
            "body": request.body,
        }

    # --- flows ----------------------------------------------------------------------------------

    def upload(self, part: InputPart) -> Flow[InputRef]:
        response = yield HttpRequest(
            "POST",
            "/files",
            data={"purpose": "batch-input"},
            files=[FilePart("file", part.path.name, path=part.path)],
            idempotent=True,  # an orphan upload costs nothing; resending is safe
            operation="upload batch input",
        )
        return InputRef(part=part, file_id=str(response.json()["file_id"]))

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        body: dict[str, Any] = {
            "input_file_id": ref.file_id,
            "endpoint": spec.endpoint,
            "deadline": spec.completion_window,
            "labels": dict(spec.metadata),
        }
        response = yield HttpRequest("POST", "/jobs", json=body, operation="create batch")
        return self.parse_batch(response.json())

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest("GET", f"/jobs/{batch_id}", operation="retrieve batch")
        return self.parse_batch(response.json())

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        response = yield HttpRequest(
            "GET",
            "/jobs",
            params=query(page_size=limit, page_token=cursor),
            operation="list batches",
        )
        payload = response.json()
        items = [self.parse_batch(job) for job in payload.get("jobs", [])]
        return Page[Batch](items=items, next_cursor=payload.get("next_page_token") or None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest(
            "POST", f"/jobs/{batch_id}/stop", idempotent=True, operation="cancel batch"
        )
        return self.parse_batch(response.json())

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        yield from ()  # no I/O: the job names its files
        return [
            ResultSource(kind, download=self.download_file(file_id), name=f"{kind} file {file_id}")
            for kind, ids in (("output", batch.output_file_ids), ("error", batch.error_file_ids))
            for file_id in ids
        ]

    def download_file(self, file_id: str) -> HttpRequest:
        return HttpRequest("GET", f"/files/{file_id}/content", operation=f"download {file_id}")

    def delete_file(self, file_id: str) -> Flow[None]:
        yield HttpRequest("DELETE", f"/files/{file_id}", operation=f"delete file {file_id}")

    # --- parsing --------------------------------------------------------------------------------

    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        progress = raw.get("progress") or {}
        files = (raw.get("results_file_id"), raw.get("failures_file_id"))
        return Batch(
            id=str(raw["job_id"]),
            provider=self.name,
            status=self.normalize(raw.get("state")),
            provider_status=str(raw.get("state")),
            request_counts=RequestCounts(
                total=progress.get("total") or 0,
                succeeded=progress.get("succeeded") or 0,
                failed=progress.get("failed") or 0,
            ),
            created_at=to_datetime(raw.get("created")),
            started_at=to_datetime(raw.get("started")),
            ended_at=to_datetime(raw.get("finished")),
            expires_at=to_datetime(raw.get("deadline")),
            cancel_requested_at=to_datetime(raw.get("stop_requested")),
            endpoint=raw.get("endpoint"),
            model=raw.get("model"),
            metadata={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
            input_file_ids=(str(raw["input_file_id"]),) if raw.get("input_file_id") else (),
            output_file_ids=(str(files[0]),) if files[0] else (),
            error_file_ids=(str(files[1]),) if files[1] else (),
            errors=tuple(
                BatchErrorDetail(
                    code=p.get("code"), message=str(p.get("message")), line=p.get("line")
                )
                for p in raw.get("problems") or ()
                if isinstance(p, Mapping)
            ),
            raw=dict(raw),
        )

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        custom_id = record["custom_id"]
        if not isinstance(custom_id, str):
            raise TypeError(f"custom_id must be a string, got {custom_id!r}")
        status_code = record.get("status_code")
        fault = record.get("fault")
        if isinstance(fault, Mapping):
            code = fault.get("code")
            return BatchResult(
                custom_id=custom_id,
                status=_NEVER_RAN.get(str(code), ResultStatus.ERRORED),
                status_code=status_code,
                error=ResultError(code=code, message=str(fault.get("message") or code)),
                raw=dict(record),
            )
        body = record.get("body")
        if not isinstance(body, dict):
            raise ValueError("a result line needs a body or a fault")
        usage = body.get("usage") or {}
        return BatchResult(
            custom_id=custom_id,
            status=ResultStatus.SUCCEEDED,
            status_code=status_code,
            response=body,
            usage=Usage(
                input_tokens=usage.get("prompt_tokens"),
                output_tokens=usage.get("completion_tokens"),
                total_tokens=usage.get("total_tokens"),
            ),
            raw=dict(record),
        )
