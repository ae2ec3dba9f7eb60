"""The gateway's jobs API for the omnibatch emulator, mounted at ``/gateway`` (API at ``/v2``).

The emulator's engine owns the state (files, batches, a clock-driven state machine, fake model
answers); this dialect only speaks the gateway's wire format in front of it, so the adapter is
tested offline against the same shapes the real gateway sends.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson
from omnibatch.plugin import (
    ERROR_MARKER,
    BatchStateConflict,
    Dialect,
    Engine,
    HTTPErrorResponse,
    Phase,
    SimBatch,
    SimRequest,
    Snapshot,
    StoredFile,
    ValidationIssue,
    answer_for,
    chat_completion_body,
    content_response,
    embedding_body,
    parse_multipart,
    read_json,
)

from omnibatch_gateway.adapter import API_KEY_HEADER

__all__ = ["GatewayDialect"]

STATES = {
    Phase.VALIDATING: "checking",
    Phase.FAILED: "rejected",
    Phase.RUNNING: "working",
    Phase.FINALIZING: "packaging",
    Phase.COMPLETED: "done",
    Phase.EXPIRED: "timed_out",
    Phase.CANCELLING: "stopping",
    Phase.CANCELLED: "stopped",
}
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
DEADLINES = {"24h": 24 * 3600, "48h": 48 * 3600}
MAX_PAGE_SIZE = 100

_JOB = re.compile(r"^/v2/jobs/([^/]+)$")
_JOB_STOP = re.compile(r"^/v2/jobs/([^/]+)/stop$")
_FILE = re.compile(r"^/v2/files/([^/]+)$")
_FILE_CONTENT = re.compile(r"^/v2/files/([^/]+)/content$")


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class GatewayDialect(Dialect):
    """Files and jobs of the Example LLM Gateway."""

    name: ClassVar[str] = "gateway"
    prefix: ClassVar[str] = "/gateway"
    base_url_suffix: ClassVar[str] = "/v2"
    secret_headers: ClassVar[frozenset[str]] = frozenset({API_KEY_HEADER})

    # --- the gateway's error shape and authentication -----------------------------------------

    def error_body(
        self,
        status_code: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> Any:
        default = "internal" if status_code >= 500 else "invalid_request"
        return {"fault": {"code": code or type or default, "message": message}}

    def check_auth(self, engine: Engine, request: httpx.Request) -> httpx.Response | None:
        key = request.headers.get(API_KEY_HEADER)
        expected = engine.config.api_key
        if not key or (expected is not None and key != expected):
            return self.error_response(
                401, f"missing or unknown {API_KEY_HEADER}", code="unauthenticated"
            )
        return None

    # --- routing ------------------------------------------------------------------------------

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        try:
            response = self._route(engine, request, path.rstrip("/"))
        except HTTPErrorResponse as exc:
            response = exc.response
        response.headers["x-gateway-request-id"] = "gwr_" + engine.random_hex(16)
        return response

    def _route(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        denied = self.check_auth(engine, request)
        if denied is not None:
            return denied
        method = request.method
        if path == "/v2/files" and method == "POST":
            return self._upload(engine, request)
        if path == "/v2/jobs" and method == "POST":
            return self._create(engine, request)
        if path == "/v2/jobs" and method == "GET":
            return self._list(engine, request)
        if (m := _JOB.match(path)) and method == "GET":
            return self.json_response(self.job_object(engine, self._job(engine, m.group(1))))
        if (m := _JOB_STOP.match(path)) and method == "POST":
            return self._stop(engine, self._job(engine, m.group(1)))
        if (m := _FILE_CONTENT.match(path)) and method == "GET":
            return content_response(request, self._file(engine, m.group(1)).data)
        if (m := _FILE.match(path)) and method == "DELETE":
            stored = self._file(engine, m.group(1))
            engine.delete_file(stored.id)
            return self.json_response({"file_id": stored.id, "deleted": True})
        return self.error_response(404, f"no route {method} {path}", code="not_found")

    def _fail(self, status: int, message: str, code: str) -> HTTPErrorResponse:
        return HTTPErrorResponse(self.error_response(status, message, code=code))

    def _job(self, engine: Engine, job_id: str) -> SimBatch:
        job = engine.get_batch(job_id, self.name)
        if job is None:
            raise self._fail(404, f"job {job_id} does not exist", "not_found")
        return job

    def _file(self, engine: Engine, file_id: str) -> StoredFile:
        stored = engine.get_file(file_id, self.name)
        if stored is None:
            raise self._fail(404, f"file {file_id} does not exist", "not_found")
        return stored

    # --- operations -------------------------------------------------------------------------

    def _upload(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        try:
            parts = {part.name: part for part in parse_multipart(request)}
        except ValueError as exc:
            raise self._fail(400, f"bad multipart body: {exc}", "invalid_request") from None
        if "file" not in parts or "purpose" not in parts:
            raise self._fail(400, "send the fields 'file' and 'purpose'", "invalid_request")
        stored = engine.add_file(
            "gwf_" + engine.random_hex(24),
            parts["file"].data,
            purpose=parts["purpose"].text,
            filename=parts["file"].filename or "input.jsonl",
            dialect=self.name,
        )
        return self.json_response(
            {"file_id": stored.id, "filename": stored.filename, "size": stored.size}
        )

    def _create(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        try:
            body = read_json(request)
        except ValueError as exc:
            raise self._fail(400, str(exc), "invalid_request") from None
        if not isinstance(body, dict):
            raise self._fail(400, "the body must be a JSON object", "invalid_request")
        endpoint = body.get("endpoint")
        if endpoint not in ENDPOINTS:
            raise self._fail(400, f"endpoint must be one of {list(ENDPOINTS)}", "invalid_request")
        window = DEADLINES.get(str(body.get("deadline", "24h")))
        if window is None:
            raise self._fail(400, f"deadline must be one of {list(DEADLINES)}", "invalid_request")
        stored = self._file(engine, str(body.get("input_file_id")))
        requests, problems = parse_input(stored.data, str(endpoint))
        labels = body.get("labels") or {}
        job = engine.create_batch(
            "job_" + engine.random_hex(24),
            dialect=self.name,
            endpoint=str(endpoint),
            requests=requests,
            window=window,
            validation_errors=problems,
            model=next((str(r.body.get("model")) for r in requests), None),
            input_file_ids=[stored.id],
            metadata={str(k): str(v) for k, v in labels.items()},
        )
        return self.json_response(self.job_object(engine, job))

    def _list(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        try:
            size = min(int(params.get("page_size", "20")), MAX_PAGE_SIZE)
        except ValueError:
            raise self._fail(400, "page_size must be an integer", "invalid_request") from None
        jobs = engine.list_batches(self.name)[::-1]  # newest first
        start = 0
        token = params.get("page_token")
        if token:
            ids = [job.id for job in jobs]
            if token not in ids:
                raise self._fail(400, "page_token is not valid", "invalid_request")
            start = ids.index(token) + 1
        page = jobs[start : start + size]
        more = start + size < len(jobs)
        return self.json_response(
            {
                "jobs": [self.job_object(engine, job) for job in page],
                "next_page_token": page[-1].id if more and page else None,
            }
        )

    def _stop(self, engine: Engine, job: SimBatch) -> httpx.Response:
        try:
            engine.request_cancel(job)
        except BatchStateConflict as exc:
            raise self._fail(
                409, f"a job that is {STATES[exc.phase]} cannot stop", "conflict"
            ) from None
        return self.json_response(self.job_object(engine, job))

    # --- rendering --------------------------------------------------------------------------

    def job_object(self, engine: Engine, job: SimBatch) -> dict[str, Any]:
        """The job as the gateway returns it now."""
        snap = engine.snapshot(job)
        engine.ensure_results(job, snap, lambda j, s: self._write_results(engine, j, s))
        return {
            "job_id": job.id,
            "state": STATES[snap.phase],
            "endpoint": job.endpoint,
            "model": job.model,
            "input_file_id": job.input_file_ids[0],
            "results_file_id": job.output_file_id,
            "failures_file_id": job.error_file_id,
            "labels": job.metadata or {},
            "progress": {"total": snap.total, "succeeded": snap.succeeded, "failed": snap.failed},
            "created": _iso(snap.created_at),
            "started": _iso(snap.started_at),
            "finished": _iso(snap.ended_at),
            "deadline": _iso(snap.expires_at),
            "stop_requested": _iso(snap.cancelling_at),
            "problems": [
                {"line": p.line, "code": p.code, "message": p.message}
                for p in job.validation_errors
            ],
        }

    def _write_results(self, engine: Engine, job: SimBatch, snap: Snapshot) -> None:
        if snap.phase is Phase.FAILED:
            return
        results: list[bytes] = []
        failures: list[bytes] = []
        for position, req in enumerate(engine.processed(job, snap)):
            when = int(engine.processed_at(job, position, snap))
            if req.failure:
                failures.append(orjson.dumps(self.failure_line(req)))
            else:
                results.append(orjson.dumps(self.result_line(engine, job, req, when)))
        if snap.phase in (Phase.EXPIRED, Phase.CANCELLED):
            code = "timed_out" if snap.phase is Phase.EXPIRED else "stopped"
            for req in engine.unprocessed(job, snap):
                line = {
                    "custom_id": req.custom_id,
                    "status_code": None,
                    "fault": {"code": code, "message": f"the job {code} before this ran"},
                }
                failures.append(orjson.dumps(line))
        for kind, lines in (("results", results), ("failures", failures)):
            if not lines:
                continue
            stored = engine.add_file(
                "gwf_" + engine.random_hex(24),
                b"\n".join(lines) + b"\n",
                purpose="batch-output",
                filename=f"{job.id}-{kind}.jsonl",
                dialect=self.name,
            )
            if kind == "results":
                job.output_file_id = stored.id
            else:
                job.error_file_id = stored.id

    def failure_line(self, req: SimRequest) -> dict[str, Any]:
        if req.failure == 500:
            fault = {"code": "upstream_error", "message": "the model server failed (emulated)"}
        elif ERROR_MARKER in req.raw:
            fault = {"code": "bad_request", "message": "the request holds [[emulator:error]]"}
        else:
            fault = {"code": "bad_request", "message": "the emulator cannot answer this request"}
        return {"custom_id": req.custom_id, "status_code": req.failure, "fault": fault}

    def result_line(
        self, engine: Engine, job: SimBatch, req: SimRequest, created: int
    ) -> dict[str, Any]:
        ident = f"{job.id}:{req.index}"
        model = str(req.body.get("model") or job.model or "")
        answer = answer_for(job.endpoint, req.body)
        if answer.kind == "embedding":
            size = engine.config.embedding_dimensions
            body = embedding_body(answer, model=model, dimensions=size, ident=ident)
        else:
            body = chat_completion_body(answer, model=model, created=created, ident=ident)
        return {"custom_id": req.custom_id, "status_code": 200, "body": body}


def parse_input(data: bytes, endpoint: str) -> tuple[list[SimRequest], list[ValidationIssue]]:
    """The requests of an input file, and its problems with 1-based line numbers."""
    requests: list[SimRequest] = []
    problems: list[ValidationIssue] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            problems.append(ValidationIssue("invalid_json", "not a JSON object", number))
            continue
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        body = line.get("body") if isinstance(line, dict) else None
        if not isinstance(custom_id, str) or custom_id in seen:
            problems.append(ValidationIssue("bad_custom_id", "missing or repeated", number))
        elif line.get("url") != endpoint or not isinstance(body, dict) or "model" not in body:
            problems.append(ValidationIssue("bad_request", "url, body or model wrong", number))
        else:
            seen.add(custom_id)
            requests.append(SimRequest(len(requests), custom_id, body, raw, line=number))
    if not requests and not problems:
        problems.append(ValidationIssue("empty_input", "the input file has no requests"))
    return requests, problems
