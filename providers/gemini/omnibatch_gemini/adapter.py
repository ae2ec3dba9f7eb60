"""Gemini API (Developer API) batch adapter.

Wire facts (providers.md §5, sdk-requests/gemini.json): a batch is a long-running operation
named ``batches/<id>``, created with ``POST /v1beta/models/{model}:batchGenerateContent`` (one
model per batch, in the URL); requests go inline (``inputConfig.requests.requests[]``, under
20 MB) or in an uploaded JSONL file of ``{"key", "request"}`` lines (resumable upload, then
``inputConfig.fileName``). The wire state is ``BATCH_STATE_*`` (the SDK shows ``JOB_STATE_*``);
counts are int64 strings in ``metadata.batchStats``; results are a ``responsesFile`` joined by
``key`` or the nested ``inlinedResponses.inlinedResponses[]`` joined by ``metadata.key``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from omnibatch.plugin import (
    IDEMPOTENCY_KEY,
    Batch,
    BatchErrorDetail,
    BatchRequest,
    BatchResult,
    BatchStatus,
    Capabilities,
    ConfigurationError,
    CreateSpec,
    ErrorInfo,
    FileObject,
    Flow,
    HttpRequest,
    HttpResponse,
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
    Usage,
    candidates_answer,
    invalid_request,
    json_object,
    no_io,
    query,
    request_issues,
    to_datetime,
)
from omnibatch_gemini.translate import chat_to_request

__all__ = [
    "API_VERSION",
    "CHUNK_BYTES",
    "DOCUMENTED_STATUSES",
    "GEMINI_STATUSES",
    "INLINE_MAX_BYTES",
    "GeminiAdapter",
    "inline_records",
]

_STATES = {
    "PENDING": BatchStatus.QUEUED,
    "RUNNING": BatchStatus.RUNNING,
    "SUCCEEDED": BatchStatus.SUCCEEDED,
    "FAILED": BatchStatus.FAILED,
    "CANCELLED": BatchStatus.CANCELLED,
    "EXPIRED": BatchStatus.EXPIRED,
}
# The REST API answers BATCH_STATE_*; the docs' samples and the SDK say JOB_STATE_*: accept both.
# *_STATE_UNSPECIFIED (the proto default) means "not known" and is reported as UNKNOWN.
DOCUMENTED_STATUSES = frozenset(
    f"{prefix}_STATE_{k}" for prefix in ("BATCH", "JOB") for k in _STATES
)
GEMINI_STATUSES: dict[str, BatchStatus] = {
    **{f"BATCH_STATE_{k}": v for k, v in _STATES.items()},
    **{f"JOB_STATE_{k}": v for k, v in _STATES.items()},
    # Not documented for the Gemini API, but in the SDK's JobState and seen by third-party
    # clients after a cancel: known, so never "unknown".
    "BATCH_STATE_CANCELLING": BatchStatus.CANCELLING,
    "JOB_STATE_CANCELLING": BatchStatus.CANCELLING,
}

API_VERSION = "v1beta"
"""The API version in the paths (the docs' ``v1beta``; google-genai 3.x defaults to ``v1``)."""
INLINE_MAX_BYTES = 20_000_000
"""Inline requests must stay under 20 MB per create call; larger inputs go as a file."""
CHUNK_BYTES = 8 * 1024 * 1024
"""Upload chunk size (the official SDK's)."""
UPLOAD_MIME = "jsonl"  # what the Gemini batch docs pass as the input file's mime type
_KEY_MARK = re.compile(r"\[omnibatch-key:([^\]]+)\]$")
_ITEM_OVERHEAD = 16  # bytes an inline item adds to its line ({"request","metadata":{"key"}})


def _name(batch_id: str) -> str:
    return batch_id if batch_id.startswith("batches/") else f"batches/{batch_id}"


def _file_name(file_id: str) -> str:
    return file_id if file_id.startswith("files/") else f"files/{file_id}"


def _model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def _int(value: Any) -> int:
    # batchStats counts are int64 JSON strings; proto3 JSON omits zeros.
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _batch_fields(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """The GenerateContentBatch: an operation's ``metadata``, or the object itself."""
    md = raw.get("metadata")
    if isinstance(md, Mapping) and ("state" in md or "@type" in md or "batchStats" in md):
        return md
    return raw


def _output(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    for candidate in (raw.get("response"), _batch_fields(raw).get("output")):
        if isinstance(candidate, Mapping) and (
            "responsesFile" in candidate or "inlinedResponses" in candidate
        ):
            return candidate
    return {}


def inline_records(batch: Batch, provider: str = "gemini") -> tuple[Mapping[str, Any], ...]:
    """The inline responses of a batch, checked: every one carries the key we put in its
    request's metadata, keys are unique, and their number matches the batch's request count
    (a succeeded batch must answer every request). Never joined by position."""
    container = _output(batch.raw).get("inlinedResponses")
    # The wire nests the list once more (inlinedResponses.inlinedResponses).
    items = container.get("inlinedResponses") if isinstance(container, Mapping) else container
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ProviderResponseError(
            f"batch {batch.id}: inlinedResponses is {type(items).__name__}, expected a list",
            provider=provider,
        )
    seen: set[str] = set()
    for position, item in enumerate(items, start=1):
        md = item.get("metadata") if isinstance(item, Mapping) else None
        key = md.get("key") if isinstance(md, Mapping) else None
        if not isinstance(key, str):
            raise ProviderResponseError(
                f"batch {batch.id}: inline response {position} carries no metadata.key; "
                "refusing to join results by position",
                provider=provider,
            )
        if key in seen:
            raise ProviderResponseError(
                f"batch {batch.id}: two inline responses carry the key {key!r}", provider=provider
            )
        seen.add(key)
    total = batch.request_counts.total
    if total and (
        len(items) > total or (batch.status is BatchStatus.SUCCEEDED and len(items) != total)
    ):
        raise ProviderResponseError(
            f"batch {batch.id}: {len(items)} inline responses for {total} requests",
            provider=provider,
        )
    return tuple(items)


def _usage(response: Mapping[str, Any]) -> Usage | None:
    usage = response.get("usageMetadata")
    if not isinstance(usage, Mapping):
        return None
    prompt = _int(usage.get("promptTokenCount"))
    # Thinking tokens are billed as output, as OpenAI counts reasoning in completion_tokens.
    output = _int(usage.get("candidatesTokenCount")) + _int(usage.get("thoughtsTokenCount"))
    total = _int(usage.get("totalTokenCount")) or prompt + output
    return Usage(input_tokens=prompt, output_tokens=output, total_tokens=total)


class GeminiAdapter(ProviderAdapter):
    """The Gemini API's ``batches`` (inline below 20 MB, an uploaded file above).

    Options: ``display_name`` (omnibatch appends its idempotency key), ``input_mode``
    (``auto``, ``inline`` or ``file``), ``inline_max_bytes``, ``priority``, ``api_version``.
    """

    name: ClassVar[str] = "gemini"
    display_name: ClassVar[str] = "Google Gemini API"
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    api_key_env: ClassVar[str | None] = "GEMINI_API_KEY"
    base_url_env: ClassVar[str | None] = "GEMINI_BASE_URL"
    emulator_prefix: ClassVar[str] = "/gemini"
    status_map: ClassVar[Mapping[str, BatchStatus]] = GEMINI_STATUSES
    documented_statuses: ClassVar[frozenset[str]] = DOCUMENTED_STATUSES
    endpoints: ClassVar[frozenset[str]] = frozenset({"/v1/chat/completions"})
    price_provider: ClassVar[str | None] = "google"
    limits: ClassVar[ProviderLimits] = ProviderLimits(max_bytes=2 * 1024 * 1024 * 1024)
    capabilities: ClassVar[Capabilities] = Capabilities(
        metadata=False,
        idempotency_key=True,
        delete_files=True,
        delete_batch=True,
        single_model=True,
        model_at_job_level=True,
    )

    @property
    def api(self) -> str:
        """The version path segment, ``/v1beta`` unless the ``api_version`` option says else."""
        return "/" + str(self.options.get("api_version", API_VERSION)).strip("/")

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._api_key} if self._api_key else {}

    # --- translation ------------------------------------------------------------------------

    def model_of(self, request: BatchRequest) -> str | None:
        model = request.body.get("model")
        if not isinstance(model, str):
            return None
        return model.removeprefix("models/")

    def check_request(self, request: BatchRequest) -> list[RequestIssue]:
        translated, problems = chat_to_request(request.body)
        if not problems:
            # The pipeline encodes the same body next: translate it once, not twice.
            self._last = (request.body, translated)
        return request_issues(problems)

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        return self.encode_line(request.custom_id, request.url, request.body)

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        last = getattr(self, "_last", None)
        if last is not None and last[0] is body:
            return {"key": custom_id, "request": last[1]}
        translated, problems = chat_to_request(body)
        if problems:  # check_request reports these first; reached only when it is skipped
            raise invalid_request(problems, custom_id, self.name)
        return {"key": custom_id, "request": translated}

    # --- input ------------------------------------------------------------------------------

    def input_mode(self, part: InputPart) -> str:
        """``inline`` or ``file`` for a part, by the ``input_mode`` option and its size."""
        mode = str(self.options.get("input_mode", "auto")).lower()
        limit = int(self.options.get("inline_max_bytes", INLINE_MAX_BYTES))
        estimate = part.size_bytes + _ITEM_OVERHEAD * part.count + 256
        if mode == "auto":
            return "inline" if estimate < limit else "file"
        if mode == "inline" and estimate >= limit:
            raise ConfigurationError(
                f"input_mode 'inline' but the part is about {estimate} bytes; Gemini takes "
                f"inline requests under {limit} bytes: use input_mode 'auto' or 'file'",
                provider=self.name,
            )
        if mode not in ("inline", "file"):
            raise ConfigurationError(
                f"gemini option input_mode must be auto, inline or file (got {mode!r})",
                provider=self.name,
            )
        return mode

    def uploads(self, part: InputPart) -> bool:
        return self.input_mode(part) == "file"

    def upload(self, part: InputPart) -> Flow[InputRef]:
        if self.input_mode(part) == "inline":
            return no_io(InputRef(part=part, extra={"mode": "inline"}))
        return self._upload_file(part)

    def _upload_file(self, part: InputPart) -> Flow[InputRef]:
        """The resumable upload the SDK does: start a session, then send 8 MiB chunks, the
        last one with ``upload, finalize``."""
        size = part.path.stat().st_size
        start = yield HttpRequest(
            "POST",
            f"/upload{self.api}/files",
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(size),
                "X-Goog-Upload-Header-Content-Type": UPLOAD_MIME,
            },
            json={
                "file": {
                    "display_name": part.path.name,
                    "mime_type": UPLOAD_MIME,
                    "size_bytes": size,
                }
            },
            idempotent=True,
            operation="start input upload",
        )
        url = start.headers.get("x-goog-upload-url")
        if not url:
            raise ProviderResponseError(
                "the upload start answer has no x-goog-upload-url", provider=self.name
            )
        offset = 0
        while True:
            with open(part.path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read(CHUNK_BYTES)
            last = offset + len(chunk) >= size
            response = yield HttpRequest(
                "POST",
                url,
                content=chunk,
                headers={
                    "X-Goog-Upload-Command": "upload, finalize" if last else "upload",
                    "X-Goog-Upload-Offset": str(offset),
                },
                idempotent=True,  # same bytes at the same offset: safe to resend
                operation=f"upload input bytes {offset}-{offset + len(chunk)}",
            )
            offset += len(chunk)
            if last or response.headers.get("x-goog-upload-status") == "final":
                break
        if response.headers.get("x-goog-upload-status", "final") != "final":
            raise ProviderResponseError("the upload did not finalize", provider=self.name)
        stored = json_object(response, self.name).get("file")
        if not isinstance(stored, Mapping) or not isinstance(stored.get("name"), str):
            raise ProviderResponseError("the finalized upload names no file", provider=self.name)
        return InputRef(part=part, file_id=stored["name"], extra={"mode": "file"})

    # --- flows ------------------------------------------------------------------------------

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        model = spec.model or (ref.part.model if ref.part else None)
        if not model:
            raise ConfigurationError(
                "Gemini batches take one model, in the URL: pass model=... (or --model)",
                provider=self.name,
            )
        if ref.file_id:
            input_config: dict[str, Any] = {"fileName": _file_name(ref.file_id)}
        elif ref.part is not None:
            requests = []
            with open(ref.part.path, "rb") as fh:
                for line in fh:
                    if line.strip():
                        item = orjson.loads(line)
                        requests.append(
                            {"request": item["request"], "metadata": {"key": item["key"]}}
                        )
            input_config = {"requests": {"requests": requests}}
        else:
            raise ConfigurationError(
                "create needs a prepared input or an uploaded file id", provider=self.name
            )
        display = str(spec.options.get("display_name") or "omnibatch")
        key = spec.metadata.get(IDEMPOTENCY_KEY)
        if key:
            # No metadata on Gemini batches: the display name carries the key, so an ambiguous
            # create can be reconciled by listing instead of creating (and paying) twice.
            display = f"{display} [omnibatch-key:{key}]"
        batch: dict[str, Any] = {"displayName": display, "inputConfig": input_config}
        if spec.options.get("priority") is not None:
            batch["priority"] = str(int(spec.options["priority"]))
        response = yield HttpRequest(
            "POST",
            f"{self.api}/{_model_path(model.removeprefix('models/'))}:batchGenerateContent",
            json={"batch": batch},
            operation="create batch",
        )
        return self.parse_batch(json_object(response, self.name))

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest(
            "GET", f"{self.api}/{_name(batch_id)}", operation="retrieve batch"
        )
        return self.parse_batch(json_object(response, self.name))

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        # The Developer API has no server-side filter; metadata filters are matched by the core.
        response = yield HttpRequest(
            "GET",
            f"{self.api}/batches",
            params=query(pageSize=limit, pageToken=cursor),
            operation="list batches",
        )
        payload = json_object(response, self.name)
        items = [self.parse_batch(op) for op in payload.get("operations") or []]
        token = payload.get("nextPageToken")
        return Page[Batch](items=items, next_cursor=str(token) if token else None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        name = _name(batch_id)
        # The cancel answer is an empty object: read the batch back to return its state.
        yield HttpRequest(
            "POST", f"{self.api}/{name}:cancel", idempotent=True, operation="cancel batch"
        )
        batch: Batch = yield from self.retrieve(name)
        return batch

    def delete_batch(self, batch_id: str) -> Flow[None]:
        yield HttpRequest("DELETE", f"{self.api}/{_name(batch_id)}", operation="delete batch")

    def list_files(self, *, cursor: str | None, limit: int | None) -> Flow[Page[FileObject]]:
        response = yield HttpRequest(
            "GET",
            f"{self.api}/files",
            params=query(pageSize=min(limit, 100) if limit else None, pageToken=cursor),
            operation="list files",
        )
        payload = json_object(response, self.name)
        items = [
            FileObject(
                id=str(item["name"]),
                provider=self.name,
                # The upload's display name is the part's file name: what the job runner
                # looks for after a crash.
                filename=item.get("displayName"),
                bytes=_int(item.get("sizeBytes")),
                created_at=to_datetime(item.get("createTime")),
                raw=dict(item),
            )
            for item in payload.get("files") or []
            if isinstance(item, Mapping) and isinstance(item.get("name"), str)
        ]
        token = payload.get("nextPageToken")
        return Page[FileObject](items=items, next_cursor=str(token) if token else None)

    def delete_file(self, file_id: str) -> Flow[None]:
        name = _file_name(file_id)
        yield HttpRequest("DELETE", f"{self.api}/{name}", operation=f"delete file {name}")

    def download_file(self, file_id: str) -> HttpRequest:
        name = _file_name(file_id)
        return HttpRequest(
            "GET",
            f"/download{self.api}/{name}:download",
            params=[("alt", "media")],
            operation=f"download file {name}",
        )

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        yield from ()  # no I/O: the operation holds the file name or the inline responses
        output = _output(batch.raw)
        sources = [
            ResultSource("results", download=self.download_file(name), name=f"results file {name}")
            for name in batch.output_file_ids
        ]
        records = inline_records(batch, self.name)
        if records:
            sources.append(ResultSource("results", records=records, name="inline responses"))
        if not sources and output:
            raise ProviderResponseError(
                f"batch {batch.id}: unrecognised output {output!r:.200}", provider=self.name
            )
        return sources

    # --- parsing ----------------------------------------------------------------------------

    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        md = _batch_fields(raw)
        name = raw.get("name") or md.get("name")
        if not isinstance(name, str):
            raise ProviderResponseError(
                f"a batch without a name: {dict(raw)!r:.200}", provider=self.name
            )
        state = md.get("state")
        if isinstance(state, str) and state.endswith("_STATE_UNSPECIFIED"):
            status = BatchStatus.UNKNOWN  # documented as "unknown": no warning needed
        else:
            status = self.normalize(state if isinstance(state, str) else None)
        stats = md.get("batchStats") or {}
        total = _int(stats.get("requestCount"))
        succeeded = _int(stats.get("successfulRequestCount"))
        failed = _int(stats.get("failedRequestCount"))
        # What never ran in a cancelled or expired batch is counted as such, not as pending.
        rest = max(total - succeeded - failed, 0)
        counts = RequestCounts(
            total=total,
            succeeded=succeeded,
            failed=failed,
            cancelled=rest if status is BatchStatus.CANCELLED else 0,
            expired=rest if status is BatchStatus.EXPIRED else 0,
        )
        display = md.get("displayName")
        mark = _KEY_MARK.search(display) if isinstance(display, str) else None
        config = md.get("inputConfig")
        input_file = None
        if isinstance(config, Mapping):
            input_file = config.get("fileName") or config.get("file_name")
        responses_file = _output(raw).get("responsesFile")
        error = raw.get("error")
        model = md.get("model")
        return Batch(
            id=name,
            provider=self.name,
            status=status,
            provider_status=str(state),
            request_counts=counts,
            created_at=to_datetime(md.get("createTime")),
            ended_at=to_datetime(md.get("endTime")),
            model=model.removeprefix("models/") if isinstance(model, str) else None,
            metadata={IDEMPOTENCY_KEY: mark.group(1)} if mark else {},
            input_file_ids=(str(input_file),) if input_file else (),
            output_file_ids=(str(responses_file),) if responses_file else (),
            errors=(
                BatchErrorDetail(
                    code=str(error.get("status") or error.get("code")),
                    message=str(error.get("message") or "batch failed"),
                ),
            )
            if isinstance(error, Mapping)
            else (),
            raw=dict(raw),
        )

    def read_answer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        # A succeeded result's body is a ``GenerateContentResponse`` (or an embedding).
        return candidates_answer(body)

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        md = record.get("metadata")
        key = record.get("key", md.get("key") if isinstance(md, Mapping) else None)
        if not isinstance(key, str):
            raise TypeError(f"a Gemini result needs a string key, got {key!r}")
        error = record.get("error")
        status = record.get("status")
        if not error and isinstance(status, Mapping) and status.get("code") not in (None, 0):
            error = status  # the docs: "each line is a GenerateContentResponse or a status"
        if error:
            detail = error if isinstance(error, Mapping) else {"message": str(error)}
            code = detail.get("status") or detail.get("code")
            http = detail.get("code")
            return BatchResult(
                custom_id=key,
                status=ResultStatus.ERRORED,
                status_code=http if isinstance(http, int) and http >= 100 else None,
                error=ResultError(
                    code=str(code) if code is not None else None,
                    message=str(detail.get("message") or code or "error"),
                    type=str(detail["status"]) if detail.get("status") else None,
                ),
                raw=dict(record),
            )
        response = record.get("response")
        if not isinstance(response, dict):
            raise ValueError("result has neither response nor error")
        return BatchResult(
            custom_id=key,
            status=ResultStatus.SUCCEEDED,
            status_code=200,
            response=response,
            usage=_usage(response),
            raw=dict(record),
        )

    def error_info(self, response: HttpResponse) -> ErrorInfo:
        info = super().error_info(response)
        try:
            body = response.json()
        except ValueError:
            return info
        error = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(error, Mapping) and isinstance(error.get("status"), str):
            # A wrong key is a 400 INVALID_ARGUMENT whose ErrorInfo reason says so.
            details = error.get("details")
            for detail in details if isinstance(details, list) else ():
                if isinstance(detail, Mapping) and detail.get("reason") == "API_KEY_INVALID":
                    return ErrorInfo(info.message, "API_KEY_INVALID", info.request_id)
            return ErrorInfo(info.message, error["status"], info.request_id)
        return info
