"""Cohere Batches (v2) adapter.

Wire facts (providers.md §15.3, the official ``cohere`` SDK 7.3.1): the input is a dataset
uploaded with ``POST /v1/datasets?name=&type=batch-openai-chat-input`` (multipart field
``data``) that Cohere validates asynchronously; ``POST /v2/batches {name, input_dataset_id,
model}`` answers ``{"batch": {...}}``; statuses are ``BATCH_STATUS_*`` with
``num_records`` / ``num_successful_records`` / ``num_failed_records``; ``POST
/v2/batches/{id}:cancel``; ``GET /v2/batches?page_size&page_token``. Results are the output
dataset's parts: Avro files at the URLs ``GET /v1/datasets/{id}`` lists, which the SDK reads
with fastavro (so does this adapter; ``pip install "omnibatch[cohere]"``). Batches carry no
metadata: the batch ``name`` carries omnibatch's idempotency key.

UNVERIFIED (see docs/providers/cohere.md): the exact input line shape of
``batch-openai-chat-input`` (taken to be OpenAI's batch line), the output records' fields, and
how a batch that runs out of time reports it.
"""

from __future__ import annotations

import io
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
    FileObject,
    FilePart,
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
    Sleep,
    Usage,
    json_object,
    query,
    to_datetime,
)

__all__ = ["COHERE_STATUSES", "DATASET_TYPE", "CohereAdapter"]

COHERE_STATUSES: dict[str, BatchStatus] = {
    # The enum's default before the service has said anything: not started yet.
    "BATCH_STATUS_UNSPECIFIED": BatchStatus.QUEUED,
    "BATCH_STATUS_QUEUED": BatchStatus.QUEUED,
    "BATCH_STATUS_IN_PROGRESS": BatchStatus.RUNNING,
    "BATCH_STATUS_CANCELING": BatchStatus.CANCELLING,
    "BATCH_STATUS_COMPLETED": BatchStatus.SUCCEEDED,
    "BATCH_STATUS_FAILED": BatchStatus.FAILED,
    "BATCH_STATUS_CANCELED": BatchStatus.CANCELLED,
}

CHAT = "/v1/chat/completions"
DATASET_TYPE = "batch-openai-chat-input"
DATASETS = "/v1/datasets"
BATCHES = "/v2/batches"
MAX_PAGE_SIZE = 1000
MAX_DATASET_BYTES = 1_500_000_000  # 1.5 GB per dataset (docs.cohere.com/docs/datasets)
# How long the upload waits for Cohere to validate the dataset, polling with a growing delay.
VALIDATION_TIMEOUT = 3600.0
_KEY_MARK = re.compile(r"omnibatch-key-([0-9a-f]{32})$")
# A failed batch whose reason says its time ran out is an expired one (the emulator's words;
# Cohere documents no batch time limit).
_EXPIRED_REASON = re.compile(r"\bexpired\b", re.IGNORECASE)


def _read_avro(data: bytes, where: str, provider: str) -> list[dict[str, Any]]:
    try:
        import fastavro
    except ImportError:  # pragma: no cover - fastavro ships with the cohere extra
        raise ConfigurationError(
            "reading Cohere results needs fastavro: pip install 'omnibatch[cohere]'",
            provider=provider,
        ) from None
    try:
        return [
            dict(record) for record in fastavro.reader(io.BytesIO(data)) if isinstance(record, dict)
        ]
    except Exception as exc:  # fastavro raises several types for a corrupt file
        raise ProviderResponseError(
            f"{where} is not a readable Avro file: {exc}", provider=provider
        ) from exc


def _json_field(value: Any) -> Any:
    """Output records keep nested objects as JSON text (Avro needs a fixed schema)."""
    if isinstance(value, str | bytes):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


class CohereAdapter(ProviderAdapter):
    """Cohere's ``/v2/batches`` over uploaded datasets.

    Options: ``name`` (the batch name's prefix; omnibatch appends its idempotency key) and
    ``dataset_type`` (default ``batch-openai-chat-input``).
    """

    name: ClassVar[str] = "cohere"
    display_name: ClassVar[str] = "Cohere"
    default_base_url: ClassVar[str] = "https://api.cohere.com"
    api_key_env: ClassVar[str | None] = "CO_API_KEY"
    base_url_env: ClassVar[str | None] = "CO_API_URL"
    emulator_prefix: ClassVar[str] = "/cohere"
    status_map: ClassVar[Mapping[str, BatchStatus]] = COHERE_STATUSES
    documented_statuses: ClassVar[frozenset[str]] = frozenset(COHERE_STATUSES)
    endpoints: ClassVar[frozenset[str]] = frozenset({CHAT})
    limits: ClassVar[ProviderLimits] = ProviderLimits(max_bytes=MAX_DATASET_BYTES)
    capabilities: ClassVar[Capabilities] = Capabilities(
        file_upload=True,
        metadata=False,
        idempotency_key=True,
        list_batches=True,
        cancel=True,
        delete_files=True,
        delete_batch=False,
        single_model=True,
        model_at_job_level=True,
    )

    # --- translation ------------------------------------------------------------------------

    def check_request(self, request: BatchRequest) -> list[RequestIssue]:
        if request.body.get("stream"):
            return [
                RequestIssue(
                    "body.stream", "streaming is not available in batches", 'remove "stream"'
                )
            ]
        messages = request.body.get("messages")
        if not isinstance(messages, list) or not messages:
            return [
                RequestIssue(
                    "body.messages",
                    "a chat request needs a non-empty messages list",
                    'add "messages": [{"role": "user", "content": "..."}]',
                )
            ]
        return []

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        return self.encode_line(request.custom_id, request.url, request.body)

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}

    # --- datasets -----------------------------------------------------------------------------

    def upload(self, part: InputPart) -> Flow[InputRef]:
        dataset_type = str(self.options.get("dataset_type") or DATASET_TYPE)
        response = yield HttpRequest(
            "POST",
            DATASETS,
            # The dataset is named like the part's file, so a crashed upload can be found.
            params=query(name=part.path.name, type=dataset_type),
            files=[
                FilePart("data", part.path.name, path=part.path, content_type="application/jsonl")
            ],
            operation=f"upload dataset {part.path.name}",
        )
        dataset_id = json_object(response, self.name).get("id")
        if not isinstance(dataset_id, str) or not dataset_id:
            raise ProviderResponseError(
                f"the dataset upload answered without an id: {response.text[:200]!r}",
                provider=self.name,
            )
        yield from self._await_validation(dataset_id)
        return InputRef(part=part, file_id=dataset_id)

    def _await_validation(self, dataset_id: str) -> Flow[None]:
        """Cohere validates an uploaded dataset before a batch may read it."""
        delay, waited = 0.5, 0.0
        while True:
            response = yield HttpRequest(
                "GET", f"{DATASETS}/{dataset_id}", operation=f"check dataset {dataset_id}"
            )
            dataset = json_object(response, self.name).get("dataset") or {}
            status = dataset.get("validation_status")
            if status == "validated":
                return
            if status in ("failed", "skipped", "unknown"):
                raise ProviderResponseError(
                    f"dataset {dataset_id} was not accepted ({status}): "
                    f"{dataset.get('validation_error') or 'no reason given'}",
                    provider=self.name,
                )
            if waited >= VALIDATION_TIMEOUT:
                raise ProviderResponseError(
                    f"dataset {dataset_id} still {status} after {waited:.0f}s of validation",
                    provider=self.name,
                )
            yield Sleep(delay)
            waited += delay
            delay = min(delay * 2, 30.0)

    def list_files(self, *, cursor: str | None, limit: int | None) -> Flow[Page[FileObject]]:
        """The input datasets, newest first (``limit``/``offset`` paging)."""
        size = min(limit or 100, 100)
        offset = int(cursor) if cursor else 0
        response = yield HttpRequest(
            "GET",
            DATASETS,
            params=query(
                datasetType=str(self.options.get("dataset_type") or DATASET_TYPE),
                limit=size,
                offset=offset or None,
            ),
            operation="list datasets",
        )
        rows = json_object(response, self.name).get("datasets") or []
        items = [
            FileObject(
                id=str(row["id"]),
                provider=self.name,
                filename=row.get("name"),
                purpose=row.get("dataset_type"),
                created_at=to_datetime(row.get("created_at")),
                raw=dict(row),
            )
            for row in rows
            if isinstance(row, Mapping) and row.get("id")
        ]
        more = len(rows) >= size
        return Page[FileObject](items=items, next_cursor=str(offset + len(rows)) if more else None)

    def delete_file(self, file_id: str) -> Flow[None]:
        yield HttpRequest("DELETE", f"{DATASETS}/{file_id}", operation=f"delete dataset {file_id}")

    def download_file(self, file_id: str) -> HttpRequest:
        # A dataset is a description with part URLs, not one file: this saves the description.
        return HttpRequest("GET", f"{DATASETS}/{file_id}", operation=f"download dataset {file_id}")

    # --- batches ------------------------------------------------------------------------------

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        if ref.file_id is None:
            raise ConfigurationError(
                "cohere batches read an uploaded dataset: upload the input first",
                provider=self.name,
            )
        model = spec.model or (ref.part.model if ref.part else None)
        if not model:
            raise ConfigurationError(
                "cohere needs the batch's model: give every request a body.model or pass "
                "--model / model=",
                provider=self.name,
            )
        name = str({**self.options, **spec.options}.get("name") or "omnibatch")
        key = spec.metadata.get(IDEMPOTENCY_KEY)
        if key:
            # No metadata on Cohere batches: the name carries the key, so an ambiguous create
            # is reconciled by listing instead of being sent (and paid for) twice.
            name = f"{name}-omnibatch-key-{key}"
        response = yield HttpRequest(
            "POST",
            BATCHES,
            json={"name": name, "input_dataset_id": ref.file_id, "model": model},
            operation="create batch",
        )
        return self.parse_batch(self._batch_of(response))

    def _batch_of(self, response: HttpResponse) -> Mapping[str, Any]:
        batch = json_object(response, self.name).get("batch")
        if not isinstance(batch, Mapping):
            raise ProviderResponseError(
                f"expected {{'batch': {{...}}}}, got {response.text[:200]!r}", provider=self.name
            )
        return batch

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest("GET", f"{BATCHES}/{batch_id}", operation="retrieve batch")
        return self.parse_batch(self._batch_of(response))

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        size = min(limit, MAX_PAGE_SIZE) if limit else None
        response = yield HttpRequest(
            "GET",
            BATCHES,
            params=query(page_size=size, page_token=cursor),
            operation="list batches",
        )
        payload = json_object(response, self.name)
        items = [self.parse_batch(item) for item in payload.get("batches") or []]
        token = payload.get("next_page_token")
        return Page[Batch](items=items, next_cursor=str(token) if token and items else None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        # The cancel answer is an empty object: read the batch back for its state.
        yield HttpRequest(
            "POST", f"{BATCHES}/{batch_id}:cancel", idempotent=True, operation="cancel batch"
        )
        return (yield from self.retrieve(batch_id))

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        output = batch.raw.get("output_dataset_id")
        if not output:
            return []
        response = yield HttpRequest(
            "GET", f"{DATASETS}/{output}", operation=f"read output dataset {output}"
        )
        dataset = json_object(response, self.name).get("dataset") or {}
        parts = sorted(dataset.get("dataset_parts") or [], key=lambda p: p.get("index") or 0)
        sources = []
        for part in parts:
            url = part.get("url")
            if not url:
                raise ProviderResponseError(
                    f"output dataset {output} part {part.get('name')!r} has no url",
                    provider=self.name,
                )
            where = f"output dataset {output} part {part.get('name') or part.get('index')}"
            data = yield HttpRequest("GET", str(url), operation=f"download {where}")
            records = _read_avro(data.content, where, self.name)
            sources.append(ResultSource("output", records=tuple(records), name=where))
        return sources

    # --- parsing ----------------------------------------------------------------------------

    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        if not isinstance(raw.get("id"), str):
            raise ProviderResponseError(
                f"a batch without an id: {dict(raw)!r:.200}", provider=self.name
            )
        raw_status = raw.get("status") or "BATCH_STATUS_UNSPECIFIED"
        status = self.normalize(raw_status)
        reason = raw.get("status_reason")
        if (
            status is BatchStatus.FAILED
            and isinstance(reason, str)
            and _EXPIRED_REASON.search(reason)
        ):
            status = BatchStatus.EXPIRED
        name = raw.get("name")
        mark = _KEY_MARK.search(name) if isinstance(name, str) else None
        succeeded = int(raw.get("num_successful_records") or 0)
        failed = int(raw.get("num_failed_records") or 0)
        tokens_in, tokens_out = raw.get("input_tokens"), raw.get("output_tokens")
        usage = None
        if tokens_in is not None or tokens_out is not None:
            usage = Usage(
                input_tokens=int(tokens_in or 0),
                output_tokens=int(tokens_out or 0),
                total_tokens=int(tokens_in or 0) + int(tokens_out or 0),
            )
        output = raw.get("output_dataset_id")
        errors: tuple[BatchErrorDetail, ...] = ()
        if status in (BatchStatus.FAILED, BatchStatus.EXPIRED) and reason:
            errors = (BatchErrorDetail(message=str(reason)),)
        terminal = status.is_terminal
        return Batch(
            id=raw["id"],
            provider=self.name,
            status=status,
            provider_status=str(raw_status),
            request_counts=RequestCounts(
                total=int(raw.get("num_records") or 0), succeeded=succeeded, failed=failed
            ),
            created_at=to_datetime(raw.get("created_at")),
            ended_at=to_datetime(raw.get("updated_at")) if terminal else None,
            model=raw.get("model"),
            metadata={IDEMPOTENCY_KEY: mark.group(1)} if mark else {},
            input_file_ids=(str(raw["input_dataset_id"]),) if raw.get("input_dataset_id") else (),
            output_file_ids=(str(output),) if output else (),
            errors=errors,
            usage=usage,
            raw=dict(raw),
        )

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        custom_id = record["custom_id"]
        if not isinstance(custom_id, str):
            raise TypeError(f"custom_id must be a string, got {custom_id!r}")
        status_code = record.get("status_code")
        body = _json_field(record.get("response"))
        error = _json_field(record.get("error"))
        body = body if isinstance(body, dict) else None
        code_ok = isinstance(status_code, int) and status_code < 400
        if not error and code_ok and body is not None:
            usage = body.get("usage")
            return BatchResult(
                custom_id=custom_id,
                status=ResultStatus.SUCCEEDED,
                status_code=status_code,
                response=body,
                usage=Usage(
                    input_tokens=usage.get("prompt_tokens"),
                    output_tokens=usage.get("completion_tokens"),
                    total_tokens=usage.get("total_tokens"),
                )
                if isinstance(usage, Mapping)
                else None,
                raw=dict(record),
            )
        detail: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
        code = detail.get("code") or (
            f"http_{status_code}" if isinstance(status_code, int) else None
        )
        message = detail.get("message") or (error if isinstance(error, str) else None)
        kind = detail.get("type")
        return BatchResult(
            custom_id=custom_id,
            status=ResultStatus.ERRORED,
            status_code=status_code if isinstance(status_code, int) else None,
            response=body,
            error=ResultError(
                code=str(code) if code is not None else None,
                message=str(message or code or "the request failed"),
                type=str(kind) if kind is not None else None,
            ),
            raw=dict(record),
        )
