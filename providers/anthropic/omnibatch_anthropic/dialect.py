"""Anthropic's Message Batches API, for the omnibatch emulator (mounted at ``/anthropic``).

Point the official SDK at it with ``anthropic.Anthropic(base_url="http://HOST:PORT/anthropic")``.
Shapes follow ``anthropic`` 2.12.0 (``MessageBatch``, ``MessageBatchIndividualResponse``,
``ErrorResponse``): requests come inline, ``processing_status`` is ``in_progress`` (the
engine's validating, running and finalizing phases), ``canceling`` or ``ended``; the counts
other than ``processing`` stay 0 until the batch ends; ``results_url`` is an absolute URL on the
host the request came to. Both auth styles work: ``x-api-key`` (the docs) and
``Authorization: Bearer`` (the SDK), each with an ``anthropic-version`` header.
"""

from __future__ import annotations

import re
import secrets
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
    answer_for,
    bearer_token,
    check_key,
    content_response,
    iso_time,
    short_hash,
)

__all__ = ["AnthropicDialect"]

BATCHES = "/v1/messages/batches"
WINDOW_SECONDS = 24 * 3600
ARCHIVE_SECONDS = 29 * 24 * 3600  # results are downloadable for 29 days
MAX_REQUESTS = 100_000
MAX_BODY_BYTES = 256 * 1024 * 1024
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# The fake model speaks OpenAI chat; Anthropic params have the same messages/max_tokens shape.
ANSWER_ENDPOINT = "/v1/chat/completions"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_KNOWN_TYPES = frozenset(ERROR_TYPES.values())

_BATCH = re.compile(r"^/v1/messages/batches/([^/]+)$")
_CANCEL = re.compile(r"^/v1/messages/batches/([^/]+)/cancel$")
_RESULTS = re.compile(r"^/v1/messages/batches/([^/]+)/results$")


def _request_id() -> str:
    return "req_011" + secrets.token_hex(12)


class AnthropicDialect(Dialect):
    """``/v1/messages/batches`` and its retrieve, list, cancel, results and delete routes."""

    name: ClassVar[str] = "anthropic"
    prefix: ClassVar[str] = "/anthropic"
    base_url_suffix: ClassVar[str] = ""
    max_request_bytes: ClassVar[int] = MAX_BODY_BYTES

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
        if type not in _KNOWN_TYPES:
            fallback = "api_error" if status_code >= 500 else "invalid_request_error"
            type = ERROR_TYPES.get(status_code, fallback)
        return {
            "type": "error",
            "error": {"type": type, "message": message},
            "request_id": _request_id(),
        }

    def unauthorized(self, request: httpx.Request, token: str | None) -> httpx.Response:
        message = "x-api-key header is required" if token is None else "invalid x-api-key"
        return self.error_response(401, message, type="authentication_error")

    def check_auth(self, engine: Engine, request: httpx.Request) -> httpx.Response | None:
        # The docs send x-api-key; anthropic 2.12.0 sends Authorization: Bearer.
        key = request.headers.get("x-api-key") or bearer_token(request)
        denied = check_key(self, engine, request, key)
        if denied is not None:
            return denied
        if not request.headers.get("anthropic-version"):
            return self.error_response(400, "anthropic-version: header is required")
        return None

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        try:
            response = self._route(engine, request, path.rstrip("/") or "/")
        except HTTPErrorResponse as exc:
            response = exc.response
        response.headers["request-id"] = _request_id()
        return response

    def _route(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        denied = self.check_auth(engine, request)
        if denied is not None:
            return denied
        method = request.method
        if path == BATCHES:
            if method == "POST":
                return self._create(engine, request)
            if method == "GET":
                return self._list(engine, request)
        elif m := _CANCEL.match(path):
            if method == "POST":
                return self._cancel(engine, request, m.group(1))
        elif m := _RESULTS.match(path):
            if method == "GET":
                return self._results(engine, request, m.group(1))
        elif m := _BATCH.match(path):
            if method == "GET":
                batch = self._batch(engine, m.group(1))
                return self.json_response(self.batch_object(engine, request, batch))
            if method == "DELETE":
                return self._delete(engine, request, m.group(1))
        return self.not_found(request, path)

    def not_found(self, request: httpx.Request, path: str) -> httpx.Response:
        return self.error_response(404, f"Not found: {request.method} {path}")

    def _bad(self, message: str, status: int = 400) -> HTTPErrorResponse:
        return HTTPErrorResponse(self.error_response(status, message))

    def _batch(self, engine: Engine, batch_id: str) -> SimBatch:
        batch = engine.get_batch(batch_id, self.name)
        if batch is None:
            raise HTTPErrorResponse(self.error_response(404, f"message_batch {batch_id} not found"))
        return batch

    # -- create -----------------------------------------------------------------------------

    def _create(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        if len(request.content) > MAX_BODY_BYTES:
            raise self._bad("Request exceeds the maximum size of 256 MB", 413)
        try:
            body = orjson.loads(request.content)
        except orjson.JSONDecodeError as exc:
            raise self._bad(f"Invalid JSON in request body: {exc}") from None
        items = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise self._bad("requests: Field required")
        if not items:
            raise self._bad("requests: List should have at least 1 item after validation, not 0")
        if len(items) > MAX_REQUESTS:
            raise self._bad(
                f"requests: List should have at most {MAX_REQUESTS} items after validation, "
                f"not {len(items)}"
            )
        requests: list[SimRequest] = []
        reasons: dict[int, str] = {}
        seen: set[str] = set()
        for i, item in enumerate(items):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            params = item.get("params") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                raise self._bad(
                    f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            if custom_id in seen:
                raise self._bad(
                    f"requests.{i}.custom_id: Duplicate custom_id '{custom_id}'; every request "
                    "in a batch needs a unique custom_id"
                )
            seen.add(custom_id)
            if not isinstance(params, dict):
                raise self._bad(f"requests.{i}.params: Field required")
            if params.get("stream"):
                raise self._bad(f"requests.{i}.params.stream: streaming is not supported")
            req = SimRequest(index=i, custom_id=custom_id, body=params, raw=orjson.dumps(params))
            # Anthropic validates params asynchronously: bad ones come back as errored results.
            reason = _param_problem(params)
            if reason is not None:
                req.failure = 400
                reasons[i] = reason
            requests.append(req)
        batch = engine.create_batch(
            "msgbatch_01" + engine.random_token(22),
            dialect=self.name,
            endpoint=ANSWER_ENDPOINT,
            requests=requests,
            window=WINDOW_SECONDS,
            extra={"reasons": reasons},
        )
        return self.json_response(self.batch_object(engine, request, batch))

    # -- read, list, cancel, delete ---------------------------------------------------------

    def _status(self, batch: SimBatch, phase: Phase) -> str:
        if phase.terminal:
            return "ended"
        if phase is Phase.CANCELLING or batch.extra.get("cancel_initiated_at") is not None:
            return "canceling"
        return "in_progress"

    def batch_object(
        self, engine: Engine, request: httpx.Request, batch: SimBatch
    ) -> dict[str, Any]:
        """The ``MessageBatch`` as the API returns it now."""
        snap = engine.snapshot(batch)
        engine.ensure_results(batch, snap, lambda b, s: self._write_results(engine, b, s))
        ended = snap.terminal
        counts = {
            "processing": snap.total,
            "succeeded": 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        }
        if ended:
            rest = snap.total - snap.done
            counts = {
                "processing": 0,
                "succeeded": snap.succeeded,
                "errored": snap.failed,
                "canceled": rest if snap.phase is Phase.CANCELLED else 0,
                "expired": rest if snap.phase is Phase.EXPIRED else 0,
            }
        cancel_at = batch.extra.get("cancel_initiated_at", snap.cancelling_at)
        archived = ended and engine.now() >= snap.created_at + ARCHIVE_SECONDS
        results_url = None
        if ended and not archived:
            results_url = str(
                request.url.copy_with(
                    path=f"{self.prefix}{BATCHES}/{batch.id}/results", query=None, fragment=None
                )
            )
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": self._status(batch, snap.phase),
            "request_counts": counts,
            "ended_at": iso_time(snap.ended_at),
            "created_at": iso_time(snap.created_at),
            "expires_at": iso_time(snap.expires_at),
            "archived_at": iso_time(snap.created_at + ARCHIVE_SECONDS) if archived else None,
            "cancel_initiated_at": iso_time(cancel_at),
            "results_url": results_url,
        }

    def _list(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        try:
            limit = int(params.get("limit", "20"))
        except ValueError:
            raise self._bad("limit: Input should be a valid integer") from None
        if not 1 <= limit <= 1000:
            raise self._bad("limit: Input should be between 1 and 1000")
        batches = list(reversed(engine.list_batches(self.name)))  # newest first
        ids = [b.id for b in batches]
        after, before = params.get("after_id"), params.get("before_id")
        for value in (after, before):
            if value is not None and value not in ids:
                raise self._bad(f"message_batch {value} not found")
        if before is not None:
            end = ids.index(before)
            start = max(0, end - limit)
            page, more = batches[start:end], start > 0
        else:
            start = ids.index(after) + 1 if after is not None else 0
            page, more = batches[start : start + limit], start + limit < len(batches)
        return self.json_response(
            {
                "data": [self.batch_object(engine, request, b) for b in page],
                "has_more": more,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
            }
        )

    def _cancel(self, engine: Engine, request: httpx.Request, batch_id: str) -> httpx.Response:
        batch = self._batch(engine, batch_id)
        try:
            engine.request_cancel(batch)
        except BatchStateConflict as exc:
            if exc.phase.terminal:
                raise self._bad(
                    f"Batch {batch_id} has already ended and can no longer be canceled"
                ) from None
            # Anthropic has no finalizing state: the cancel is recorded and the batch ends
            # with nothing left to cancel.
            batch.extra.setdefault("cancel_initiated_at", engine.now())
        return self.json_response(self.batch_object(engine, request, batch))

    def _delete(self, engine: Engine, request: httpx.Request, batch_id: str) -> httpx.Response:
        batch = self._batch(engine, batch_id)
        if not engine.snapshot(batch).terminal:
            raise self._bad(
                f"Batch {batch_id} is still processing; cancel it and wait until it has ended "
                "before deleting it"
            )
        engine.delete_batch(batch.id)
        return self.json_response({"id": batch.id, "type": "message_batch_deleted"})

    # -- results ----------------------------------------------------------------------------

    def _results(self, engine: Engine, request: httpx.Request, batch_id: str) -> httpx.Response:
        batch = self._batch(engine, batch_id)
        view = self.batch_object(engine, request, batch)
        if view["processing_status"] != "ended":
            raise self._bad(
                f"Batch {batch_id} has not finished processing; results are available once "
                "its processing_status is ended"
            )
        if view["archived_at"] is not None:
            raise HTTPErrorResponse(
                self.error_response(404, f"Results of batch {batch_id} have been archived")
            )
        data: bytes = batch.extra["results"]
        return content_response(request, data, "application/x-jsonl")

    def _write_results(self, engine: Engine, batch: SimBatch, snap: Any) -> None:
        lines = []
        for req in engine.processed(batch, snap):
            lines.append({"custom_id": req.custom_id, "result": self._result(engine, batch, req)})
        if snap.phase in (Phase.CANCELLED, Phase.EXPIRED):
            kind = "canceled" if snap.phase is Phase.CANCELLED else "expired"
            for req in engine.unprocessed(batch, snap):
                lines.append({"custom_id": req.custom_id, "result": {"type": kind}})
        batch.extra["results"] = b"".join(orjson.dumps(line) + b"\n" for line in lines)

    def _result(self, engine: Engine, batch: SimBatch, req: SimRequest) -> dict[str, Any]:
        if req.failure is not None:
            if req.failure >= 500:
                status, message = 500, "Internal server error (emulated)"
            elif ERROR_MARKER in req.raw:
                status = 400
                message = "This request contains the emulator error marker [[emulator:error]]."
            else:
                status = 400
                message = batch.extra.get("reasons", {}).get(req.index, "Invalid request")
            return {"type": "errored", "error": self.error_body(status, message)}
        answer = answer_for(ANSWER_ENDPOINT, req.body)
        ident = f"{batch.id}:{req.index}"
        return {
            "type": "succeeded",
            "message": {
                "id": "msg_01" + short_hash("msg", ident, size=11),
                "type": "message",
                "role": "assistant",
                "model": str(req.body.get("model", "")),
                "content": [{"type": "text", "text": answer.texts[0]}],
                "stop_reason": "max_tokens" if answer.finish_reasons[0] == "length" else "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": answer.prompt_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": answer.completion_tokens,
                    "service_tier": "batch",
                },
            },
        }


def _param_problem(params: dict[str, Any]) -> str | None:
    """What the Messages API would reject in ``params`` (checked when the batch runs)."""
    if not isinstance(params.get("model"), str) or not params["model"]:
        return "model: Field required"
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return "max_tokens: Field required"
    if max_tokens < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    return None
