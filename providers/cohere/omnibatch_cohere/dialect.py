"""Cohere's Datasets and Batches (v2) APIs, for the omnibatch emulator (mounted at ``/cohere``).

Point the official SDK at it with ``cohere.ClientV2(api_key=..., base_url="http://HOST:PORT/cohere")``.
Shapes follow ``cohere`` 7.3.1 (``DatasetsCreateResponse``, ``DatasetsGetResponse``,
``CreateBatchResponse``, ``GetBatchResponse``, ``ListBatchesResponse``): an uploaded dataset
is ``processing`` for a simulated second, then ``validated`` (or ``failed`` with a
``validation_error`` naming the line); a batch is ``BATCH_STATUS_QUEUED`` while the engine
validates, ``BATCH_STATUS_IN_PROGRESS`` while it runs and finalizes, then ``COMPLETED``,
``FAILED``, ``CANCELING``/``CANCELED``. Its results are an output dataset whose parts are
Avro files at unauthenticated, unguessable URLs (as the SDK's ``save_dataset`` reads them with
``requests`` and fastavro), one record per processed request:
``{custom_id, status_code, response, error}`` with ``response``/``error`` as JSON text. A batch
whose window runs out ends ``BATCH_STATUS_FAILED`` with a ``status_reason`` saying it expired.
"""

from __future__ import annotations

import io
import re
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
    iso_time,
    parse_multipart,
)

__all__ = ["OUTPUT_SCHEMA", "CohereDialect"]

WINDOW_SECONDS = 24 * 3600
DATASET_VALIDATION_SECONDS = 1.0
MAX_DATASET_BYTES = 1_500_000_000
CHAT = "/v1/chat/completions"
INPUT_TYPES = frozenset(
    {"batch-chat-input", "batch-openai-chat-input", "batch-embed-v2-input", "batch-chat-v2-input"}
)
# Only OpenAI-format chat lines are simulated; the other batch types are accepted as uploads.
SIMULATED_TYPE = "batch-openai-chat-input"
OUTPUT_TYPE = "batch-output"
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "BatchOutputRecord",
    "fields": [
        {"name": "custom_id", "type": "string"},
        {"name": "status_code", "type": "int"},
        {"name": "response", "type": ["null", "string"], "default": None},
        {"name": "error", "type": ["null", "string"], "default": None},
    ],
}
EXPIRED_REASON = "the batch expired: its 24 hour window ended before every request ran"

STATUS = {
    Phase.VALIDATING: "BATCH_STATUS_QUEUED",
    Phase.RUNNING: "BATCH_STATUS_IN_PROGRESS",
    Phase.FINALIZING: "BATCH_STATUS_IN_PROGRESS",
    Phase.COMPLETED: "BATCH_STATUS_COMPLETED",
    Phase.FAILED: "BATCH_STATUS_FAILED",
    Phase.EXPIRED: "BATCH_STATUS_FAILED",
    Phase.CANCELLING: "BATCH_STATUS_CANCELING",
    Phase.CANCELLED: "BATCH_STATUS_CANCELED",
}

_DATASET = re.compile(r"^/v1/datasets/([^/]+)$")
_PART = re.compile(r"^/v1/datasets/([^/]+)/parts/([0-9a-f]{32})\.avro$")
_BATCH = re.compile(r"^/v2/batches/([^/:]+)$")
_CANCEL = re.compile(r"^/v2/batches/([^/:]+):cancel$")
_SLUG = re.compile(r"[^a-z0-9]+")


def _iso(value: float) -> str:
    return iso_time(value) or ""


class CohereDialect(Dialect):
    """``/v1/datasets*`` and ``/v2/batches*``, with the output datasets' Avro parts."""

    name: ClassVar[str] = "cohere"
    prefix: ClassVar[str] = "/cohere"
    base_url_suffix: ClassVar[str] = ""

    # -- plumbing -------------------------------------------------------------------------

    def error_body(
        self,
        status_code: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> Any:
        return {"message": message}

    def unauthorized(self, request: httpx.Request, token: str | None) -> httpx.Response:
        return self.error_response(401, "invalid api token" if token else "no api key supplied")

    def preflight(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response | None:
        # Output dataset parts are pre-signed links: their token is the credential.
        if request.method == "GET" and _PART.match(path.rstrip("/")):
            return None
        return self.check_auth(engine, request)

    def body_limit(self, method: str, path: str) -> int:
        if method == "POST" and path.rstrip("/") == "/v1/datasets":
            return MAX_DATASET_BYTES
        return self.max_request_bytes

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        path = path.rstrip("/") or "/"
        try:
            if (m := _PART.match(path)) and request.method == "GET":
                # A pre-signed download link: no credentials, as the SDK fetches it.
                return self._part(engine, request, m.group(1), m.group(2))
            denied = self.check_auth(engine, request)
            if denied is not None:
                return denied
            return self._route(engine, request, path)
        except HTTPErrorResponse as exc:
            return exc.response

    def _route(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        method = request.method
        if path == "/v1/datasets":
            if method == "POST":
                return self._upload(engine, request)
            if method == "GET":
                return self._list_datasets(engine, request)
        if m := _DATASET.match(path):
            if method == "GET":
                dataset = self._dataset(engine, m.group(1))
                return self.json_response(
                    {"dataset": self.dataset_object(engine, request, dataset)}
                )
            if method == "DELETE":
                engine.delete_file(self._dataset(engine, m.group(1)).id)
                return self.json_response({})
        if path == "/v2/batches":
            if method == "POST":
                return self._create(engine, request)
            if method == "GET":
                return self._list(engine, request)
        if (m := _CANCEL.match(path)) and method == "POST":
            return self._cancel(engine, m.group(1))
        if (m := _BATCH.match(path)) and method == "GET":
            return self.json_response(
                {"batch": self.batch_object(engine, self._batch(engine, m.group(1)))}
            )
        return self.not_found(request, path)

    def not_found(self, request: httpx.Request, path: str) -> httpx.Response:
        return self.error_response(404, f"Not Found: {request.method} {self.prefix}{path}")

    def _bad(self, message: str, status: int = 400) -> HTTPErrorResponse:
        return HTTPErrorResponse(self.error_response(status, message))

    def _dataset(self, engine: Engine, dataset_id: str) -> StoredFile:
        stored = engine.get_file(dataset_id, self.name)
        if stored is None:
            raise self._bad(f"dataset {dataset_id} not found", 404)
        return stored

    def _batch(self, engine: Engine, batch_id: str) -> SimBatch:
        batch = engine.get_batch(batch_id, self.name)
        if batch is None:
            raise self._bad(f"batch {batch_id} not found", 404)
        return batch

    # -- datasets ---------------------------------------------------------------------------

    def _upload(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        name, kind = params.get("name"), params.get("type")
        if not name:
            raise self._bad("name is required")
        if kind not in INPUT_TYPES:
            raise self._bad(f"type must be one of {', '.join(sorted(INPUT_TYPES))} (got {kind!r})")
        try:
            parts = parse_multipart(request)
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        data = next((p for p in parts if p.name == "data"), None)
        if data is None:
            raise self._bad("data: a file is required")
        if len(data.data) > MAX_DATASET_BYTES:
            raise self._bad("data: datasets are limited to 1.5 GB", 413)
        slug = _SLUG.sub("-", name.lower()).strip("-")[:40] or "dataset"
        dataset_id = f"{slug}-{engine.random_hex(6)}"
        records, error = _parse_input(data.data) if kind == SIMULATED_TYPE else ([], None)
        engine.add_file(
            dataset_id,
            data.data,
            purpose=kind,
            filename=data.filename or name,
            dialect=self.name,
            extra={"name": name, "records": records, "validation_error": error},
        )
        return self.json_response({"id": dataset_id})

    def _list_datasets(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        try:
            limit = int(float(params.get("limit") or 10))
            offset = int(float(params.get("offset") or 0))
        except ValueError:
            raise self._bad("limit and offset must be numbers") from None
        kind = params.get("datasetType")
        stored = [f for f in engine.list_files(self.name) if kind is None or f.purpose == kind]
        stored.reverse()  # newest first, also among files stored at the same instant
        stored.sort(key=lambda f: f.created_at, reverse=True)
        page = stored[offset : offset + max(limit, 1)]
        return self.json_response(
            {"datasets": [self.dataset_object(engine, request, f) for f in page]}
        )

    def dataset_object(
        self, engine: Engine, request: httpx.Request, stored: StoredFile
    ) -> dict[str, Any]:
        now = engine.now()
        extra = stored.extra
        ready = (
            now >= stored.created_at + DATASET_VALIDATION_SECONDS or stored.purpose == OUTPUT_TYPE
        )
        status = "processing"
        if ready:
            status = "failed" if extra.get("validation_error") else "validated"
        out: dict[str, Any] = {
            "id": stored.id,
            "name": extra.get("name", stored.filename),
            "created_at": _iso(stored.created_at),
            "updated_at": _iso(stored.created_at + (DATASET_VALIDATION_SECONDS if ready else 0)),
            "dataset_type": stored.purpose,
            "validation_status": status,
            "validation_warnings": [],
        }
        if status == "failed":
            out["validation_error"] = extra["validation_error"]
        if stored.purpose == OUTPUT_TYPE:
            out["schema"] = orjson.dumps(OUTPUT_SCHEMA).decode()
            out["required_fields"] = [f["name"] for f in OUTPUT_SCHEMA["fields"]]
            token = extra["part_token"]
            url = request.url.copy_with(
                path=f"{self.prefix}/v1/datasets/{stored.id}/parts/{token}.avro",
                query=None,
                fragment=None,
            )
            out["dataset_parts"] = [
                {
                    "id": token,
                    "name": f"{stored.id}-part-0.avro",
                    "url": str(url),
                    "index": 0,
                    "size_bytes": stored.size,
                    "num_rows": extra["rows"],
                }
            ]
        elif ready and status == "validated":
            out["dataset_parts"] = [
                {
                    "id": f"{stored.id}-part-0",
                    "name": stored.filename,
                    "index": 0,
                    "size_bytes": stored.size,
                    "num_rows": len(extra.get("records") or ()),
                }
            ]
        return out

    def _part(
        self, engine: Engine, request: httpx.Request, dataset_id: str, token: str
    ) -> httpx.Response:
        stored = engine.get_file(dataset_id, self.name)
        if stored is None or stored.extra.get("part_token") != token:
            raise self._bad("no such dataset part", 404)
        return content_response(request, stored.data, "application/avro")

    # -- batches ----------------------------------------------------------------------------

    def _create(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        try:
            body = orjson.loads(request.content)
        except orjson.JSONDecodeError as exc:
            raise self._bad(f"invalid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise self._bad("the body must be a Batch object")
        for field in ("name", "input_dataset_id", "model"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise self._bad(f"{field} is required")
        dataset = self._dataset(engine, body["input_dataset_id"])
        view = self.dataset_object(engine, request, dataset)
        if dataset.purpose not in INPUT_TYPES:
            raise self._bad(
                f"dataset {dataset.id} is a {dataset.purpose} dataset, not a batch input"
            )
        if view["validation_status"] != "validated":
            raise self._bad(
                f"dataset {dataset.id} is {view['validation_status']}; "
                "a batch needs a validated dataset"
            )
        if dataset.purpose != SIMULATED_TYPE:
            raise self._bad(f"the emulator simulates {SIMULATED_TYPE} datasets only")
        model = body["model"]
        requests = []
        issues = []
        for index, (line, record) in enumerate(dataset.extra["records"]):
            params = dict(record["body"])
            if params.get("model", model) != model:
                issues.append(
                    ValidationIssue(
                        code="model_mismatch",
                        message=(
                            f"line {line}: body.model {params['model']!r} is not the batch "
                            f"model {model!r}"
                        ),
                        line=line,
                    )
                )
            params.setdefault("model", model)
            requests.append(
                SimRequest(
                    index=index,
                    custom_id=record["custom_id"],
                    body=params,
                    raw=orjson.dumps(record["body"]),
                    line=line,
                )
            )
        batch = engine.create_batch(
            engine.random_uuid(),
            dialect=self.name,
            endpoint=CHAT,
            requests=requests,
            window=WINDOW_SECONDS,
            validation_errors=issues[:1],
            model=model,
            input_file_ids=[dataset.id],
            extra={"name": body["name"]},
        )
        return self.json_response({"batch": self.batch_object(engine, batch)})

    def batch_object(self, engine: Engine, batch: SimBatch) -> dict[str, Any]:
        snap = engine.snapshot(batch)
        engine.ensure_results(batch, snap, lambda b, s: self._write_results(engine, b, s))
        reason = None
        if snap.phase is Phase.FAILED:
            reason = "; ".join(i.message for i in batch.validation_errors)
        elif snap.phase is Phase.EXPIRED:
            reason = EXPIRED_REASON
        out: dict[str, Any] = {
            "id": batch.id,
            "name": batch.extra["name"],
            "creator_id": "emulator-user",
            "org_id": "emulator-org",
            "status": STATUS[snap.phase],
            "created_at": _iso(snap.created_at),
            "updated_at": _iso(
                snap.ended_at or snap.finalizing_at or snap.started_at or snap.created_at
            ),
            "input_dataset_id": batch.input_file_ids[0],
            "input_tokens": str(snap.prompt_tokens),
            "output_tokens": str(snap.completion_tokens),
            "model": batch.model,
            "num_records": snap.total,
            "num_successful_records": snap.succeeded,
            "num_failed_records": snap.failed,
        }
        if batch.output_file_id is not None:
            out["output_dataset_id"] = batch.output_file_id
        if reason:
            out["status_reason"] = reason
        return out

    def _list(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        try:
            size = int(params.get("page_size") or 50)
        except ValueError:
            raise self._bad("page_size must be an integer") from None
        if size < 1:
            raise self._bad("page_size must be positive")
        size = min(size, 1000)  # values above 1000 are coerced to 1000
        order = params.get("order_by") or "created_at"
        if order not in ("created_at", "updated_at"):
            raise self._bad("order_by must be created_at or updated_at")
        views = [self.batch_object(engine, b) for b in engine.list_batches(self.name)]
        views.sort(key=lambda v: v[order], reverse=True)  # newest first
        start = 0
        token = params.get("page_token")
        if token:
            ids = [v["id"] for v in views]
            if token not in ids:
                raise self._bad("page_token is invalid or expired")
            start = ids.index(token)
        page = views[start : start + size]
        following = views[start + size : start + size + 1]
        out: dict[str, Any] = {"batches": page}
        if following:
            out["next_page_token"] = following[0]["id"]
        return self.json_response(out)

    def _cancel(self, engine: Engine, batch_id: str) -> httpx.Response:
        batch = self._batch(engine, batch_id)
        try:
            engine.request_cancel(batch)
        except BatchStateConflict as exc:
            if exc.phase.terminal:
                raise self._bad(
                    f"batch {batch_id} has already ended and cannot be canceled"
                ) from None
            # Finalizing: nothing is left to cancel, the batch completes.
        return self.json_response({})

    # -- results ----------------------------------------------------------------------------

    def _write_results(self, engine: Engine, batch: SimBatch, snap: Snapshot) -> None:
        if snap.phase is Phase.FAILED:
            return
        import fastavro  # the emulator's only Avro use: loaded when results are written

        records = []
        for position, req in enumerate(engine.processed(batch, snap)):
            created = int(engine.processed_at(batch, position, snap))
            records.append(self._record(batch, req, created))
        buffer = io.BytesIO()
        fastavro.writer(buffer, fastavro.parse_schema(OUTPUT_SCHEMA), records, codec="deflate")
        name = f"{batch.extra['name']}-output"
        slug = _SLUG.sub("-", name.lower()).strip("-")[-40:].strip("-") or "output"
        stored = engine.add_file(
            f"{slug}-{engine.random_hex(6)}",
            buffer.getvalue(),
            purpose=OUTPUT_TYPE,
            filename=f"{batch.id}-output.avro",
            dialect=self.name,
            created_at=snap.ended_at,
            extra={"name": name, "part_token": engine.random_hex(32), "rows": len(records)},
        )
        batch.output_file_id = stored.id

    def _record(self, batch: SimBatch, req: SimRequest, created: int) -> dict[str, Any]:
        assert req.custom_id is not None
        if req.failure is not None:
            if req.failure >= 500:
                status, code, message = 500, "internal_error", "internal server error (emulated)"
            elif ERROR_MARKER in req.raw:
                status, code = 400, "invalid_request"
                message = "This request contains the emulator error marker [[emulator:error]]."
            else:
                status, code, message = 400, "invalid_request", "invalid request"
            error = {"code": code, "message": message, "type": "invalid_request_error"}
            return {
                "custom_id": req.custom_id,
                "status_code": status,
                "response": None,
                "error": orjson.dumps(error).decode(),
            }
        answer = answer_for(CHAT, req.body)
        body = chat_completion_body(
            answer, model=str(batch.model or ""), created=created, ident=f"{batch.id}:{req.index}"
        )
        return {
            "custom_id": req.custom_id,
            "status_code": 200,
            "response": orjson.dumps(body).decode(),
            "error": None,
        }


def _parse_input(data: bytes) -> tuple[list[tuple[int, dict[str, Any]]], str | None]:
    """The ``(line number, record)`` of an OpenAI-format chat input, or the first problem."""
    records: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return [], f"line {number}: not valid JSON"
        if not isinstance(record, dict):
            return [], f"line {number}: expected a JSON object"
        custom_id = record.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            return [], f"line {number}: custom_id is required"
        if custom_id in seen:
            return [], f"line {number}: duplicate custom_id {custom_id!r}"
        seen.add(custom_id)
        body = record.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return [], f"line {number}: body.messages is required"
        if record.get("url", CHAT) != CHAT:
            return [], f"line {number}: url must be {CHAT}"
        records.append((number, record))
    if not records:
        return [], "the dataset has no records"
    return records, None
