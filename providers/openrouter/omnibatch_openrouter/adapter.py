"""OpenRouter Batch API adapter.

Wire facts (providers.md §15.2, the official ``openrouter`` SDK 1.3.84): requests go inline in
``POST /api/v1/batches {"endpoint", "model", ..., "requests": [{"custom_id", "body"}]}`` (no file
upload). The service parses that body as a stream, so ``endpoint``, ``model`` and
``callback_url`` must come before ``requests`` in the JSON text: ``create`` writes them first. One
model and one endpoint per batch, up to 5,000 requests and 200 MB. Statuses are OpenAI's;
results come back inline in ``GET /batches/{id}`` with the batch's ``usage.cost``. There is no
cancel; a terminal batch can be deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from omnibatch.plugin import (
    Batch,
    BatchErrorDetail,
    BatchRequest,
    BatchResult,
    BatchStatus,
    Capabilities,
    ConfigurationError,
    CreateSpec,
    Flow,
    HttpRequest,
    InputPart,
    InputRef,
    Page,
    ProviderAdapter,
    ProviderLimits,
    ProviderResponseError,
    RequestCounts,
    RequestIssue,
    ResultError,
    ResultSource,
    ResultStatus,
    UnsupportedOperationError,
    Usage,
    json_object,
    no_io,
    query,
    to_datetime,
)

__all__ = ["ENDPOINTS", "OPENROUTER_STATUSES", "OpenRouterAdapter"]

OPENROUTER_STATUSES: dict[str, BatchStatus] = {
    "validating": BatchStatus.VALIDATING,
    "in_progress": BatchStatus.RUNNING,
    "finalizing": BatchStatus.FINALIZING,
    "completed": BatchStatus.SUCCEEDED,
    "failed": BatchStatus.FAILED,
    "expired": BatchStatus.EXPIRED,
    "cancelling": BatchStatus.CANCELLING,
    "cancelled": BatchStatus.CANCELLED,
}

ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings"})
BATCHES = "/batches"
MAX_LIST_LIMIT = 100
MAX_REQUESTS = 5_000
MAX_BODY_BYTES = 200 * 1024 * 1024
# The create body wraps the part's lines in a header and brackets: keep the part a little
# smaller than the service's body limit, so a full part still fits.
_BODY_MARGIN = 64 * 1024
_ROUTING_KEYS = frozenset({"only", "allow_fallbacks"})


def _usage(usage: Any) -> Usage | None:
    """Token counts and cost of a chat/embeddings/responses ``usage`` object."""
    if not isinstance(usage, Mapping):
        return None
    cost = usage.get("cost")
    return Usage(
        input_tokens=usage.get("prompt_tokens", usage.get("input_tokens")),
        output_tokens=usage.get("completion_tokens", usage.get("output_tokens")),
        total_tokens=usage.get("total_tokens"),
        cost=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
    )


class OpenRouterAdapter(ProviderAdapter):
    """OpenRouter's ``/api/v1/batches`` (inline requests, inline results, no cancel).

    Options: ``provider`` (routing preferences: ``{"only": [...], "allow_fallbacks": bool}``,
    the only two keys batches accept) and ``callback_url`` (an HTTPS URL that receives
    ``batch.completed`` / ``failed`` / ``cancelled`` / ``expired`` events).
    """

    name: ClassVar[str] = "openrouter"
    display_name: ClassVar[str] = "OpenRouter"
    default_base_url: ClassVar[str] = "https://openrouter.ai/api/v1"
    api_key_env: ClassVar[str | None] = "OPENROUTER_API_KEY"
    base_url_env: ClassVar[str | None] = "OPENROUTER_BASE_URL"
    emulator_prefix: ClassVar[str] = "/openrouter/api/v1"
    status_map: ClassVar[Mapping[str, BatchStatus]] = OPENROUTER_STATUSES
    documented_statuses: ClassVar[frozenset[str]] = frozenset(OPENROUTER_STATUSES)
    endpoints: ClassVar[frozenset[str]] = ENDPOINTS
    limits: ClassVar[ProviderLimits] = ProviderLimits(
        max_requests=MAX_REQUESTS, max_bytes=MAX_BODY_BYTES - _BODY_MARGIN
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        file_upload=False,
        metadata=False,
        idempotency_key=False,
        list_batches=True,
        cancel=False,
        delete_files=False,
        delete_batch=True,
        single_model=True,
        model_at_job_level=True,
    )

    # --- options ----------------------------------------------------------------------------

    def _options(self, spec: CreateSpec) -> dict[str, Any]:
        """``callback_url`` and ``provider`` from the create's options over the adapter's."""
        merged = {**self.options, **spec.options}
        out: dict[str, Any] = {}
        callback = merged.get("callback_url")
        if callback is not None:
            if not isinstance(callback, str) or not callback.startswith("https://"):
                raise ConfigurationError(
                    f"openrouter option callback_url must be an https:// URL (got {callback!r})",
                    provider=self.name,
                )
            out["callback_url"] = callback
        routing = merged.get("provider")
        if routing is not None:
            if not isinstance(routing, Mapping) or not set(routing) <= _ROUTING_KEYS:
                raise ConfigurationError(
                    "openrouter option provider must be an object with only 'only' (a list of "
                    f"provider names) and 'allow_fallbacks' (a boolean); got {routing!r}",
                    provider=self.name,
                )
            only = routing.get("only")
            if only is not None and (
                not isinstance(only, list) or not all(isinstance(p, str) for p in only)
            ):
                raise ConfigurationError(
                    f"openrouter option provider.only must be a list of names (got {only!r})",
                    provider=self.name,
                )
            fallbacks = routing.get("allow_fallbacks")
            if fallbacks is not None and not isinstance(fallbacks, bool):
                raise ConfigurationError(
                    "openrouter option provider.allow_fallbacks must be true or false "
                    f"(got {fallbacks!r})",
                    provider=self.name,
                )
            out["provider"] = dict(routing)
        return out

    # --- translation ------------------------------------------------------------------------

    def check_request(self, request: BatchRequest) -> list[RequestIssue]:
        if request.body.get("stream"):
            return [
                RequestIssue(
                    "body.stream", "streaming is not available in batches", 'remove "stream"'
                )
            ]
        return []

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        return {"custom_id": request.custom_id, "body": request.body}

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": custom_id, "body": body}

    # --- flows ------------------------------------------------------------------------------

    def upload(self, part: InputPart) -> Flow[InputRef]:
        # No file storage: create sends the part's lines inline.
        return no_io(InputRef(part=part))

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        if ref.part is None:
            raise ConfigurationError(
                "openrouter takes its requests inline and has no files: create the batch from "
                "a prepared input (submit(), or create(upload(prepare(...)))), not a file id",
                provider=self.name,
            )
        model = spec.model or ref.part.model
        if not model:
            raise ConfigurationError(
                "openrouter needs the batch's model: give every request a body.model or pass "
                "--model / model=",
                provider=self.name,
            )
        # Order matters: the service reads endpoint, model and callback_url before requests.
        head: dict[str, Any] = {"endpoint": spec.endpoint, "model": model}
        options = self._options(spec)
        if "callback_url" in options:
            head["callback_url"] = options["callback_url"]
        head["completion_window"] = spec.completion_window
        if "provider" in options:
            head["provider"] = options["provider"]
        # The part's lines are already {"custom_id", "body"} objects: splice them in as bytes.
        with open(ref.part.path, "rb") as fh:
            items = [line.rstrip(b"\r\n") for line in fh if line.strip()]
        body = orjson.dumps(head)[:-1] + b',"requests":[' + b",".join(items) + b"]}"
        response = yield HttpRequest(
            "POST",
            BATCHES,
            content=body,
            headers={"Content-Type": "application/json"},
            operation="create batch",
        )
        return self.parse_batch(json_object(response, self.name))

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest("GET", f"{BATCHES}/{batch_id}", operation="retrieve batch")
        return self.parse_batch(json_object(response, self.name))

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        size = min(limit, MAX_LIST_LIMIT) if limit else None
        statuses = filters.get("status")
        if isinstance(statuses, str):
            statuses = [statuses]
        # A list becomes repeated ``status`` parameters, as the SDK sends them.
        params = query(limit=size, after=cursor, status=list(statuses) if statuses else None)
        response = yield HttpRequest("GET", BATCHES, params=params, operation="list batches")
        payload = json_object(response, self.name)
        items = [self.parse_batch(item) for item in payload.get("data") or []]
        last = payload.get("last_id") or (items[-1].id if items else None)
        more = bool(payload.get("has_more")) and bool(items) and bool(last)
        return Page[Batch](items=items, next_cursor=str(last) if more else None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        yield from ()
        raise UnsupportedOperationError(
            f"openrouter batches cannot be cancelled (batch {batch_id} runs to its end); "
            "delete it once it has ended",
            provider=self.name,
        )

    def delete_batch(self, batch_id: str) -> Flow[None]:
        yield HttpRequest("DELETE", f"{BATCHES}/{batch_id}", operation="delete batch")

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        yield from ()  # the results came inline with the batch
        records = batch.raw.get("results")
        if records is None:
            if batch.status is BatchStatus.FAILED:
                return []
            raise ProviderResponseError(
                f"batch {batch.id} is {batch.provider_status} but carries no results "
                "(they come inline in GET /batches/{id}, not in listings)",
                provider=self.name,
            )
        if not isinstance(records, list):
            raise ProviderResponseError(
                f"batch {batch.id}: results must be a list, got {type(records).__name__}",
                provider=self.name,
            )
        return [ResultSource("results", records=tuple(records), name=f"results of {batch.id}")]

    # --- parsing ----------------------------------------------------------------------------

    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        if not isinstance(raw.get("id"), str):
            raise ProviderResponseError(
                f"a batch without an id: {dict(raw)!r:.200}", provider=self.name
            )
        counts = raw.get("request_counts") or {}
        raw_status = raw.get("status")
        error = raw.get("error")
        errors: tuple[BatchErrorDetail, ...] = ()
        if isinstance(error, Mapping) and error.get("message"):
            errors = (BatchErrorDetail(message=str(error["message"])),)
        return Batch(
            id=raw["id"],
            provider=self.name,
            status=self.normalize(raw_status),
            provider_status=str(raw_status),
            request_counts=RequestCounts(
                total=int(counts.get("total") or 0),
                succeeded=int(counts.get("completed") or 0),
                failed=int(counts.get("failed") or 0),
            ),
            created_at=to_datetime(raw.get("created_at")),
            ended_at=to_datetime(raw.get("finalized_at")),
            expires_at=to_datetime(raw.get("expires_at")),
            endpoint=raw.get("endpoint"),
            model=raw.get("model"),
            errors=errors,
            usage=_usage(raw.get("usage")),
            raw=dict(raw),
        )

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        custom_id = record["custom_id"]
        if not isinstance(custom_id, str):
            raise TypeError(f"custom_id must be a string, got {custom_id!r}")
        response = record.get("response")
        error = record.get("error")
        body = response.get("body") if isinstance(response, Mapping) else None
        status_code = response.get("status_code") if isinstance(response, Mapping) else None
        body = body if isinstance(body, dict) else None
        if not error and isinstance(status_code, int) and status_code < 400 and body is not None:
            return BatchResult(
                custom_id=custom_id,
                status=ResultStatus.SUCCEEDED,
                status_code=status_code,
                response=body,
                usage=_usage(body.get("usage")),
                raw=dict(record),
            )
        detail: Mapping[str, Any] = {}
        if isinstance(error, Mapping):
            detail = error
        elif body is not None and isinstance(body.get("error"), Mapping):
            detail = body["error"]
        code = detail.get("code") or detail.get("error_type") or detail.get("type")
        if code is None and isinstance(status_code, int):
            code = f"http_{status_code}"
        message = detail.get("message") or (error if isinstance(error, str) else None)
        kind = detail.get("type")
        return BatchResult(
            custom_id=custom_id,
            status=_failure_status(code),
            status_code=status_code if isinstance(status_code, int) else None,
            response=body,
            error=ResultError(
                code=str(code) if code is not None else None,
                message=str(message or code or "the request failed"),
                type=str(kind) if kind is not None else None,
            ),
            raw=dict(record),
        )


def _failure_status(code: Any) -> ResultStatus:
    """Requests a cancelled or expired batch never ran carry OpenAI's codes for that."""
    if code == "batch_expired":
        return ResultStatus.EXPIRED
    if code == "batch_cancelled":
        return ResultStatus.CANCELLED
    return ResultStatus.ERRORED
