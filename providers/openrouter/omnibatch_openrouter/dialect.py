"""OpenRouter's Batch API, for the omnibatch emulator (mounted at ``/openrouter``).

Point the official SDK at it with
``openrouter.OpenRouter(api_key=..., server_url="http://HOST:PORT/openrouter/api/v1")``.
Shapes follow ``openrouter`` 1.3.84 (``BatchObject``, ``BatchListResponse``,
``BatchDeletedObject``, ``BatchErrorResponseData``): requests come inline and must follow
``endpoint``, ``model`` and ``callback_url`` in the body (400 otherwise, as the service answers),
create answers 202 with status ``validating``, results come inline in ``GET /batches/{id}``
once the batch has ended (always null in listings), with the batch's ``usage.cost``. There is
no cancel route; delete works on ended batches only (409 before).

The emulator records ``callback_url`` but sends no webhook events (it makes no outbound calls).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import httpx
import orjson

from omnibatch.plugin import (
    ERROR_MARKER,
    Dialect,
    Engine,
    HTTPErrorResponse,
    Phase,
    SimBatch,
    SimRequest,
    Snapshot,
    ValidationIssue,
    answer_for,
    chat_completion_body,
    embedding_body,
    response_body,
)

__all__ = ["OpenRouterDialect"]

API = "/api/v1"
BATCHES = f"{API}/batches"
ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings")
WINDOW_SECONDS = 24 * 3600
MAX_REQUESTS = 5_000
MAX_BODY_BYTES = 200 * 1024 * 1024
# Emulated prices, US dollars per token, so usage.cost is a real, checkable number.
PROMPT_PRICE = 1e-7
COMPLETION_PRICE = 4e-7

STATUS = {
    Phase.VALIDATING: "validating",
    Phase.RUNNING: "in_progress",
    Phase.FINALIZING: "finalizing",
    Phase.COMPLETED: "completed",
    Phase.FAILED: "failed",
    Phase.EXPIRED: "expired",
    Phase.CANCELLING: "cancelling",
    Phase.CANCELLED: "cancelled",
}
# List filters fold the passing states into in_progress.
_MARKER_MESSAGE = "This request contains the emulator error marker [[emulator:error]]."
_LIST_STATUS = {"finalizing": "in_progress", "cancelling": "in_progress"}
_FILTERS = frozenset({"validating", "in_progress", "completed", "failed", "expired", "cancelled"})
_BATCH = re.compile(r"^/api/v1/batches/([^/]+)$")


def _cost(prompt: int, completion: int) -> float:
    return round(prompt * PROMPT_PRICE + completion * COMPLETION_PRICE, 10)


def _timestamp(value: str, name: str) -> float:
    """An ISO 8601 date or time (the SDK sends ``date`` objects as ``YYYY-MM-DD``)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: expected an ISO 8601 timestamp, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class OpenRouterDialect(Dialect):
    """``/api/v1/batches`` and its retrieve, list and delete routes."""

    name: ClassVar[str] = "openrouter"
    prefix: ClassVar[str] = "/openrouter"
    base_url_suffix: ClassVar[str] = API
    # The requests come inline in the create body: it may be as large as a batch.
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
        return {"error": {"code": status_code, "message": message}}

    def unauthorized(self, request: httpx.Request, token: str | None) -> httpx.Response:
        message = "No auth credentials found" if token is None else "User not found."
        return self.error_response(401, message)

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        try:
            return self._route(engine, request, path.rstrip("/") or "/")
        except HTTPErrorResponse as exc:
            return exc.response

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
        elif m := _BATCH.match(path):
            if method == "GET":
                batch = self._batch(engine, m.group(1))
                return self.json_response(self.batch_object(engine, batch))
            if method == "DELETE":
                return self._delete(engine, m.group(1))
            if method == "POST":
                return self.error_response(405, "Method not allowed: batches cannot be cancelled")
        return self.not_found(request, path)

    def not_found(self, request: httpx.Request, path: str) -> httpx.Response:
        return self.error_response(404, f"Not found: {request.method} {self.prefix}{path}")

    def _bad(self, message: str, status: int = 400) -> HTTPErrorResponse:
        return HTTPErrorResponse(self.error_response(status, message))

    def _batch(self, engine: Engine, batch_id: str) -> SimBatch:
        batch = engine.get_batch(batch_id, self.name)
        if batch is None:
            raise self._bad(f"Batch {batch_id} not found", 404)
        return batch

    # -- create -----------------------------------------------------------------------------

    def _create(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        if len(request.content) > MAX_BODY_BYTES:
            raise self._bad("Request body exceeds the 200 MB batch limit", 413)
        try:
            body = orjson.loads(request.content)
        except orjson.JSONDecodeError as exc:
            raise self._bad(f"Invalid JSON in request body: {exc}") from None
        if not isinstance(body, dict):
            raise self._bad("Request body must be a JSON object")
        # orjson keeps the document's key order: check it the way a streaming parser needs it.
        keys = list(body)
        if "requests" in keys:
            late = [k for k in ("endpoint", "model", "callback_url") if k in keys]
            late = [k for k in late if keys.index(k) > keys.index("requests")]
            if late:
                raise self._bad(
                    f"{', '.join(late)} must appear before requests in the request body"
                )
        endpoint, model = body.get("endpoint"), body.get("model")
        if endpoint not in ENDPOINTS:
            raise self._bad(f"endpoint: must be one of {', '.join(ENDPOINTS)} (got {endpoint!r})")
        if not isinstance(model, str) or not model:
            raise self._bad("model: Required")
        window = body.get("completion_window", "24h")
        if window != "24h":
            raise self._bad(f"completion_window: must be '24h' (got {window!r})")
        callback = body.get("callback_url")
        if callback is not None and (
            not isinstance(callback, str) or not callback.startswith("https://")
        ):
            raise self._bad("callback_url: must be an HTTPS URL")
        routing = body.get("provider")
        if routing is not None and (
            not isinstance(routing, dict) or not set(routing) <= {"only", "allow_fallbacks"}
        ):
            raise self._bad(
                "provider: only provider.only and provider.allow_fallbacks are supported"
            )
        items = body.get("requests")
        if not isinstance(items, list) or not items:
            raise self._bad("requests: must be a non-empty array")
        if len(items) > MAX_REQUESTS:
            raise self._bad(f"requests: at most {MAX_REQUESTS} requests per batch ({len(items)})")
        requests: list[SimRequest] = []
        seen: set[str] = set()
        mismatched: list[int] = []
        for i, item in enumerate(items):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            params = item.get("body") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not custom_id:
                raise self._bad(f"requests[{i}].custom_id: Required")
            if custom_id in seen:
                raise self._bad(f"requests[{i}].custom_id: duplicate custom_id {custom_id!r}")
            seen.add(custom_id)
            if not isinstance(params, dict):
                raise self._bad(f"requests[{i}].body: Required")
            if params.get("stream"):
                raise self._bad(f"requests[{i}].body.stream: streaming is not supported")
            if "model" in params and params["model"] != model:
                mismatched.append(i)
            requests.append(
                SimRequest(index=i, custom_id=custom_id, body=params, raw=orjson.dumps(params))
            )
        issues = []
        if mismatched:
            first = mismatched[0]
            issues.append(
                ValidationIssue(
                    code="model_mismatch",
                    message=(
                        f"requests[{first}].body.model differs from the batch model {model!r}: "
                        "a batch runs one model"
                    ),
                )
            )
        batch = engine.create_batch(
            "batch_" + engine.random_token(24),
            dialect=self.name,
            endpoint=endpoint,
            requests=requests,
            window=WINDOW_SECONDS,
            validation_errors=issues,
            model=model,
            extra={"callback_url": callback, "provider": routing},
        )
        return self.json_response(self.batch_object(engine, batch), 202)

    # -- read, list, delete -----------------------------------------------------------------

    def batch_object(
        self, engine: Engine, batch: SimBatch, *, with_results: bool = True
    ) -> dict[str, Any]:
        """The ``BatchObject`` as the API returns it now (``results`` is null in list items)."""
        snap = engine.snapshot(batch)
        engine.ensure_results(batch, snap, lambda b, s: self._write_results(engine, b, s))
        validated = snap.started_at is not None
        error = None
        if snap.phase is Phase.FAILED:
            error = {"message": "; ".join(i.message for i in batch.validation_errors)}
        usage = None
        if snap.done:
            usage = {
                "prompt_tokens": snap.prompt_tokens,
                "completion_tokens": snap.completion_tokens,
                "total_tokens": snap.prompt_tokens + snap.completion_tokens,
                "cost": _cost(snap.prompt_tokens, snap.completion_tokens),
            }
        out: dict[str, Any] = {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "model": batch.model,
            "provider": None,
            "completion_window": "24h",
            "status": STATUS[snap.phase],
            "error": error,
            "created_at": int(snap.created_at),
            "expires_at": int(snap.expires_at),
            "finalized_at": None if snap.ended_at is None else int(snap.ended_at),
            "request_counts": {
                "total": snap.total if validated or snap.phase is not Phase.FAILED else 0,
                "completed": snap.succeeded,
                "failed": snap.failed,
            },
            "usage": usage,
        }
        out["results"] = batch.extra.get("results") if with_results else None
        return out

    def _list(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        try:
            limit = int(params.get("limit", "20"))
        except ValueError:
            raise self._bad("limit: expected an integer") from None
        if not 1 <= limit <= 100:
            raise self._bad("limit: must be between 1 and 100")
        wanted = params.get_list("status")
        unknown = [s for s in wanted if s not in _FILTERS]
        if unknown:
            raise self._bad(f"status: unknown status {unknown[0]!r}")
        try:
            after_time = (
                _timestamp(params["created_after"], "created_after")
                if "created_after" in params
                else None
            )
            before_time = (
                _timestamp(params["created_before"], "created_before")
                if "created_before" in params
                else None
            )
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        rows = []
        for batch in reversed(engine.list_batches(self.name)):  # newest first
            if after_time is not None and not batch.created_at > after_time:
                continue
            if before_time is not None and not batch.created_at < before_time:
                continue
            view = self.batch_object(engine, batch, with_results=False)
            if wanted and _LIST_STATUS.get(view["status"], view["status"]) not in wanted:
                continue
            rows.append(view)
        after = params.get("after")
        start = 0
        if after is not None:
            ids = [row["id"] for row in rows]
            if after not in ids:
                raise self._bad(f"after: batch {after} not found")
            start = ids.index(after) + 1
        page = rows[start : start + limit]
        return self.json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": start + limit < len(rows),
            }
        )

    def _delete(self, engine: Engine, batch_id: str) -> httpx.Response:
        batch = self._batch(engine, batch_id)
        if not engine.snapshot(batch).terminal:
            raise self._bad(
                f"Batch {batch_id} has not reached a terminal status and cannot be deleted yet",
                409,
            )
        engine.delete_batch(batch.id)
        return self.json_response(
            {"id": batch.id, "object": "batch", "deletion": {"openrouter": "deleted"}}
        )

    # -- results ----------------------------------------------------------------------------

    def _write_results(self, engine: Engine, batch: SimBatch, snap: Snapshot) -> None:
        if snap.phase is Phase.FAILED:
            batch.extra["results"] = []
            return
        results = []
        for position, req in enumerate(engine.processed(batch, snap)):
            created = int(engine.processed_at(batch, position, snap))
            results.append(self._result(engine, batch, req, created))
        if snap.phase in (Phase.EXPIRED, Phase.CANCELLED):
            kind = "batch_expired" if snap.phase is Phase.EXPIRED else "batch_cancelled"
            message = (
                "This request did not run before the batch's completion window ended."
                if snap.phase is Phase.EXPIRED
                else "This request did not run because the batch was cancelled."
            )
            for req in engine.unprocessed(batch, snap):
                results.append(
                    {
                        "id": self._line_id(batch, req),
                        "custom_id": req.custom_id,
                        "response": None,
                        "error": {"message": message, "param": None, "type": kind},
                    }
                )
        batch.extra["results"] = results

    def _line_id(self, batch: SimBatch, req: SimRequest) -> str:
        return f"breq_{batch.id.removeprefix('batch_')}_{req.index}"

    def _result(
        self, engine: Engine, batch: SimBatch, req: SimRequest, created: int
    ) -> dict[str, Any]:
        ident = f"{batch.id}:{req.index}"
        model = str(batch.model or "")
        if req.failure is not None:
            if req.failure >= 500:
                error = {
                    "message": "The upstream provider returned an error (emulated)",
                    "param": None,
                    "type": "server_error",
                    "error_type": "provider_unavailable",
                }
            elif ERROR_MARKER in req.raw:
                error = {
                    "message": _MARKER_MESSAGE,
                    "param": None,
                    "type": "invalid_request_error",
                    "error_type": "invalid_request",
                }
            else:
                error = {
                    "message": f"The emulator does not simulate {batch.endpoint} requests.",
                    "param": None,
                    "type": "invalid_request_error",
                    "error_type": "invalid_request",
                }
            return {
                "id": self._line_id(batch, req),
                "custom_id": req.custom_id,
                "response": None,
                "error": error,
            }
        answer = answer_for(batch.endpoint, req.body)
        body: dict[str, Any]
        if answer.kind == "embedding":
            dims = req.body.get("dimensions")
            if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
                dims = engine.config.embedding_dimensions
            body = embedding_body(answer, model=model, dimensions=dims, ident=ident)
            body["usage"]["cost"] = _cost(answer.prompt_tokens, 0)
        elif answer.kind == "response":
            body = response_body(
                answer, model=model, created=created, ident=ident, request=req.body
            )
        else:
            body = chat_completion_body(answer, model=model, created=created, ident=ident)
            body.pop("system_fingerprint", None)
            body["provider"] = "Emulator"
            for choice in body["choices"]:
                choice["native_finish_reason"] = choice["finish_reason"]
                choice["message"].setdefault("refusal", None)
        return {
            "id": self._line_id(batch, req),
            "custom_id": req.custom_id,
            "response": {
                "status_code": 200,
                "request_id": f"req_{engine.random_hex(24)}",
                "body": body,
            },
            "error": None,
        }
