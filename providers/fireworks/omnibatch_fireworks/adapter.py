"""Fireworks AI batch inference adapter.

Wire facts (providers.md §8 and §15.1, ``fireworks-ai`` 1.2.28): everything lives under
``/v1/accounts/{account}/`` (``FIREWORKS_ACCOUNT_ID``); the input is a *dataset* (create it,
upload the JSONL with ``:upload`` or, above 150 MB, through a signed URL from
``:getUploadEndpoint``, then ``:validateUpload``); a ``batchInferenceJob`` names the model and
the inference parameters once, for every request; ``state`` takes 18 ``JOB_STATE_*`` values;
``jobProgress`` carries the counts; results and errors are files of the output dataset, reached
through ``:getDownloadEndpoint``. There is no cancel. A job expires after 24 hours with the
requests done so far kept; ``continuedFromJobName`` starts a job over its unfinished requests.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

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
    InputPart,
    InputRef,
    Page,
    ProviderAdapter,
    ProviderLimits,
    ProviderResponseError,
    RequestCounts,
    ResultSource,
    ResultStatus,
    Sleep,
    UnsupportedOperationError,
    Usage,
    query,
    to_datetime,
)
from omnibatch.plugin import lines as openai_lines

__all__ = ["FIREWORKS_STATUSES", "FireworksAdapter", "dataset_id_for"]

FIREWORKS_STATUSES: dict[str, BatchStatus] = {
    # Not started, or waiting for capacity (may come back to running).
    "JOB_STATE_UNSPECIFIED": BatchStatus.QUEUED,
    "JOB_STATE_CREATING": BatchStatus.QUEUED,
    "JOB_STATE_PENDING": BatchStatus.QUEUED,
    "JOB_STATE_CREATING_INPUT_DATASET": BatchStatus.QUEUED,
    "JOB_STATE_IDLE": BatchStatus.QUEUED,
    "JOB_STATE_RE_QUEUEING": BatchStatus.QUEUED,
    "JOB_STATE_PAUSED": BatchStatus.QUEUED,
    "JOB_STATE_VALIDATING": BatchStatus.VALIDATING,
    "JOB_STATE_RUNNING": BatchStatus.RUNNING,
    "JOB_STATE_WRITING_RESULTS": BatchStatus.FINALIZING,
    "JOB_STATE_CANCELLING": BatchStatus.CANCELLING,
    "JOB_STATE_COMPLETED": BatchStatus.SUCCEEDED,
    # Stopped before every request ran, the results so far kept: ended, partly done.
    "JOB_STATE_EARLY_STOPPED": BatchStatus.SUCCEEDED,
    "JOB_STATE_FAILED": BatchStatus.FAILED,
    "JOB_STATE_EXPIRED": BatchStatus.EXPIRED,
    "JOB_STATE_CANCELLED": BatchStatus.CANCELLED,
    # Being deleted by its owner: over for good, like a cancelled job.
    "JOB_STATE_DELETING": BatchStatus.CANCELLED,
    "JOB_STATE_DELETING_CLEANING_UP": BatchStatus.CANCELLED,
}

ACCOUNT_ENV = "FIREWORKS_ACCOUNT_ID"
DIRECT_UPLOAD_MAX_BYTES = 150 * 1024 * 1024
"""Above this size the dataset is uploaded through a signed URL, not ``:upload``."""
_JOB_ID_PREFIX = "omnibatch-"
_KEYED_JOB = re.compile(r"^omnibatch-([0-9a-f]{32})$")
_PARAMETERS = {"max_tokens": "maxTokens", "temperature": "temperature", "top_p": "topP"}
_PARAMETERS |= {"top_k": "topK", "n": "n"}
_OUTCOME_BY_CODE = {
    "expired": ResultStatus.EXPIRED,
    "batch_expired": ResultStatus.EXPIRED,
    "cancelled": ResultStatus.CANCELLED,
    "batch_cancelled": ResultStatus.CANCELLED,
}


def dataset_id_for(filename: str) -> str:
    """A dataset id (1-63 of ``a-z0-9-``) from an upload's file name, its unique tail kept."""
    stem = filename.rsplit(".", 1)[0].lower()
    cleaned = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")[-63:].strip("-")
    return cleaned or f"omnibatch-input-{uuid.uuid4().hex[:24]}"


def _short(name: Any) -> str:
    """``accounts/a/datasets/x`` -> ``x`` (a bare id stays as it is)."""
    return str(name).rsplit("/", 1)[-1]


def _read(record: Mapping[str, Any]) -> openai_lines.Line:
    """A result line of the output dataset. Its exact shape is not documented: both the
    OpenAI form (``response: {status_code, body}``) and a bare completion as ``response`` are
    read, and an ``error`` (object or string) makes the line a failure."""
    custom_id = record["custom_id"]
    if not isinstance(custom_id, str):
        raise TypeError(f"custom_id must be a string, got {custom_id!r}")
    response, body, status_code, error = openai_lines.split(record)
    if isinstance(response, Mapping) and "body" not in response and "status_code" not in response:
        body = response
    if error:
        code, message = openai_lines.line_error(error)
        status = _OUTCOME_BY_CODE.get(str(code).lower(), ResultStatus.ERRORED)
        code = str(code) if code is not None else None
        return custom_id, status, status_code, body, openai_lines.error_dict(code, message)
    if not isinstance(response, Mapping):
        raise ValueError("line has neither response nor error")
    if status_code is not None and int(status_code) >= 400:
        failure = openai_lines.error_dict(*openai_lines.http_failure(body, status_code))
        return custom_id, ResultStatus.ERRORED, int(status_code), body, failure
    return custom_id, ResultStatus.SUCCEEDED, status_code, body, None


def _usage(body: Any) -> Usage | None:
    return openai_lines.parse_usage(body)


def _count(value: Any) -> int:
    # int64 counts may come as JSON strings (proto3 JSON mapping).
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


class FireworksAdapter(ProviderAdapter):
    """Fireworks' ``batchInferenceJobs`` over datasets, scoped to one account.

    Options: ``account_id`` (default: ``$FIREWORKS_ACCOUNT_ID``), ``continued_from_job_name``
    (resume an expired job's unfinished requests), ``inference_parameters`` (a mapping, or
    snake_case keys accepted),
    ``precision``, ``display_name``, ``output_dataset_id``.
    """

    name: ClassVar[str] = "fireworks"
    display_name: ClassVar[str] = "Fireworks AI"
    default_base_url: ClassVar[str] = "https://api.fireworks.ai"
    api_key_env: ClassVar[str | None] = "FIREWORKS_API_KEY"
    base_url_env: ClassVar[str | None] = "FIREWORKS_BASE_URL"
    emulator_prefix: ClassVar[str] = "/fireworks"
    status_map: ClassVar[Mapping[str, BatchStatus]] = FIREWORKS_STATUSES
    documented_statuses: ClassVar[frozenset[str]] = frozenset(FIREWORKS_STATUSES)
    endpoints: ClassVar[frozenset[str]] = frozenset({"/v1/chat/completions"})
    limits: ClassVar[ProviderLimits] = ProviderLimits(max_bytes=500 * 1024 * 1024)
    # No metadata, but the job id is chosen by the client: it carries the idempotency key.
    capabilities: ClassVar[Capabilities] = Capabilities(
        metadata=False,
        idempotency_key=True,
        cancel=False,
        delete_batch=True,
        model_at_job_level=True,
    )
    direct_upload_max_bytes: ClassVar[int] = DIRECT_UPLOAD_MAX_BYTES
    # The emulator serves any account: on it, the README's command needs no account id.
    emulator_options: ClassVar[Mapping[str, Any]] = {"account_id": "emulator-account"}

    # --- account scoping --------------------------------------------------------------------

    @property
    def account_id(self) -> str:
        account = self.options.get("account_id") or os.environ.get(ACCOUNT_ENV)
        if not account:
            raise ConfigurationError(
                f"fireworks needs an account id: set ${ACCOUNT_ENV} or the provider option "
                "account_id (the id in your Fireworks console's account settings)",
                provider=self.name,
            )
        return str(account)

    def _path(self, rest: str) -> str:
        return f"/v1/accounts/{self.account_id}/{rest}"

    # --- translation ------------------------------------------------------------------------

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        # The model is the job's; a dataset line is {custom_id, body}.
        body = {k: v for k, v in request.body.items() if k != "model"}
        return {"custom_id": request.custom_id, "body": body}

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        if "model" in body:
            body = body.copy()
            del body["model"]
        return {"custom_id": custom_id, "body": body}

    # --- input datasets -----------------------------------------------------------------------

    def upload(self, part: InputPart) -> Flow[InputRef]:
        dataset_id = dataset_id_for(part.path.name)
        # The id follows from the part's unique file name: a resend meets 409 and goes on.
        yield HttpRequest(
            "POST",
            self._path("datasets"),
            json={
                "datasetId": dataset_id,
                "dataset": {
                    "displayName": part.path.name,
                    "userUploaded": {},
                    "exampleCount": str(part.count),
                },
            },
            idempotent=True,
            ok_statuses=frozenset({409}),
            operation="create input dataset",
        )
        base = self._path(f"datasets/{dataset_id}")
        if part.size_bytes <= self.direct_upload_max_bytes:
            yield HttpRequest(
                "POST",
                f"{base}:upload",
                files=[FilePart("file", part.path.name, path=part.path)],
                idempotent=True,
                operation="upload input dataset",
            )
        else:
            response = yield HttpRequest(
                "POST",
                f"{base}:getUploadEndpoint",
                json={"filenameToSize": {part.path.name: str(part.size_bytes)}},
                idempotent=True,
                operation="request a dataset upload URL",
            )
            urls = response.json().get("filenameToSignedUrls") or {}
            url = urls.get(part.path.name)
            if not url:
                raise ProviderResponseError(
                    "Fireworks gave no signed upload URL for the dataset", provider=self.name
                )
            yield HttpRequest(
                "PUT",
                str(url),
                headers={"Content-Type": "application/octet-stream"},
                content_path=part.path,
                idempotent=True,
                operation="upload input dataset (signed URL)",
            )
        yield HttpRequest(
            "POST",
            f"{base}:validateUpload",
            json={},
            idempotent=True,
            operation="validate input dataset",
        )
        yield from self._until_ready(base)
        return InputRef(part=part, file_id=dataset_id)

    def _until_ready(self, base: str, polls: int = 60) -> Flow[None]:
        delay = 0.5
        for _ in range(polls):
            response = yield HttpRequest("GET", base, operation="check input dataset")
            dataset = response.json()
            if dataset.get("state") in ("READY", None):
                return
            yield Sleep(delay)
            delay = min(delay * 2, 10.0)
        raise ProviderResponseError(
            f"dataset {_short(base)} did not become READY", provider=self.name
        )

    # --- jobs ---------------------------------------------------------------------------------

    def _job_id(self, spec: CreateSpec) -> str:
        key = spec.metadata.get(IDEMPOTENCY_KEY)
        if key and re.fullmatch(r"[0-9a-f]{32}", key):
            return _JOB_ID_PREFIX + key
        return _JOB_ID_PREFIX + uuid.uuid4().hex

    @staticmethod
    def inference_parameters(spec: CreateSpec) -> dict[str, Any]:
        """The job's ``inferenceParameters`` from the option of that name (snake_case keys
        are accepted); the requests' own bodies keep their parameters too."""
        explicit = spec.options.get("inference_parameters")
        if isinstance(explicit, Mapping):
            return {_PARAMETERS.get(str(k), str(k)): v for k, v in explicit.items()}
        return {}

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        job_id = self._job_id(spec)
        options = spec.options
        body: dict[str, Any] = {}
        continued = options.get("continued_from_job_name")
        model = spec.model or (ref.part.model if ref.part else None)
        if model:
            body["model"] = model if "/" in model else f"accounts/fireworks/models/{model}"
        if ref.file_id:
            body["inputDatasetId"] = f"accounts/{self.account_id}/datasets/{ref.file_id}"
        output = options.get("output_dataset_id")
        if output:
            body["outputDatasetId"] = (
                output if "/" in str(output) else f"accounts/{self.account_id}/datasets/{output}"
            )
        if options.get("display_name"):
            body["displayName"] = str(options["display_name"])
        parameters = self.inference_parameters(spec)
        if parameters:
            body["inferenceParameters"] = parameters
        if options.get("precision"):
            body["precision"] = str(options["precision"])
        if continued:
            name = str(continued)
            if "/" not in name:
                name = f"accounts/{self.account_id}/batchInferenceJobs/{name}"
            body["continuedFromJobName"] = name
        response = yield HttpRequest(
            "POST",
            self._path("batchInferenceJobs"),
            params=query(batchInferenceJobId=job_id),
            json=body,
            # The job id is ours: a resend of an ambiguous create meets 409 ALREADY_EXISTS.
            idempotent=True,
            ok_statuses=frozenset({409}),
            operation="create batch",
        )
        if response.status_code == 409:
            return (yield from self.retrieve(job_id))
        return self.parse_batch(response.json())

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest(
            "GET", self._path(f"batchInferenceJobs/{_short(batch_id)}"), operation="retrieve batch"
        )
        return self.parse_batch(response.json())

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        response = yield HttpRequest(
            "GET",
            self._path("batchInferenceJobs"),
            params=query(
                pageSize=min(limit or 50, 200),
                pageToken=cursor,
                orderBy="create_time desc",
                filter=filters.get("filter"),
            ),
            operation="list batches",
        )
        payload = response.json()
        items = [self.parse_batch(job) for job in payload.get("batchInferenceJobs") or []]
        return Page[Batch](items=items, next_cursor=payload.get("nextPageToken") or None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        yield from ()
        raise UnsupportedOperationError(
            "Fireworks batch inference jobs cannot be cancelled (the API has no cancel); "
            "delete the job to stop it (omnibatch: delete_batch), which discards its results",
            provider=self.name,
        )

    def delete_batch(self, batch_id: str) -> Flow[None]:
        yield HttpRequest(
            "DELETE", self._path(f"batchInferenceJobs/{_short(batch_id)}"), operation="delete batch"
        )

    # --- results ------------------------------------------------------------------------------

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        sources: list[ResultSource] = []
        for dataset_id in batch.output_file_ids:
            response = yield HttpRequest(
                "GET",
                self._path(f"datasets/{dataset_id}:getDownloadEndpoint"),
                operation=f"locate the files of output dataset {dataset_id}",
            )
            urls = response.json().get("filenameToSignedUrls") or {}
            for filename, url in sorted(urls.items()):
                kind = "error" if "error" in filename.lower() else "output"
                sources.append(
                    ResultSource(
                        kind,
                        download=HttpRequest(
                            "GET", str(url), operation=f"download {dataset_id}/{filename}"
                        ),
                        name=f"{kind} file {dataset_id}/{filename}",
                    )
                )
        return sources

    def download_file(self, file_id: str) -> HttpRequest:
        # A dataset is several files: this answers with their signed download URLs.
        return HttpRequest(
            "GET",
            self._path(f"datasets/{file_id}:getDownloadEndpoint"),
            operation=f"locate the files of dataset {file_id}",
        )

    def list_files(self, *, cursor: str | None, limit: int | None) -> Flow[Page[FileObject]]:
        response = yield HttpRequest(
            "GET",
            self._path("datasets"),
            params=query(pageSize=min(limit or 50, 200), pageToken=cursor),
            operation="list datasets",
        )
        payload = response.json()
        items = [
            FileObject(
                id=_short(item.get("name")),
                provider=self.name,
                filename=item.get("displayName"),
                purpose="dataset",
                created_at=to_datetime(item.get("createTime")),
                raw=dict(item),
            )
            for item in payload.get("datasets") or []
        ]
        return Page[FileObject](items=items, next_cursor=payload.get("nextPageToken") or None)

    def delete_file(self, file_id: str) -> Flow[None]:
        yield HttpRequest(
            "DELETE", self._path(f"datasets/{file_id}"), operation=f"delete dataset {file_id}"
        )

    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        name = str(raw.get("name") or "")
        job_id = _short(name)
        state = raw.get("state")
        progress = raw.get("jobProgress") or {}
        status = raw.get("status") or {}
        message = status.get("message") if isinstance(status, Mapping) else None
        code = status.get("code") if isinstance(status, Mapping) else None
        keyed = _KEYED_JOB.match(job_id)
        source, output = raw.get("inputDatasetId"), raw.get("outputDatasetId")
        normalized = self.normalize(state)
        failed = code not in (None, "OK") and state == "JOB_STATE_FAILED"
        succeeded = _count(progress.get("successfullyProcessedRequests"))
        failures = _count(progress.get("failedRequests"))
        return Batch(
            id=job_id,
            provider=self.name,
            status=normalized,
            provider_status=str(state),
            request_counts=RequestCounts(
                total=_count(progress.get("totalInputRequests")) or succeeded + failures,
                succeeded=succeeded,
                failed=failures,
            ),
            created_at=to_datetime(raw.get("createTime")),
            ended_at=to_datetime(raw.get("updateTime")) if normalized.is_terminal else None,
            model=raw.get("model"),
            metadata={IDEMPOTENCY_KEY: keyed.group(1)} if keyed else {},
            input_file_ids=(_short(source),) if source else (),
            output_file_ids=(_short(output),) if output else (),
            errors=(BatchErrorDetail(code=str(code), message=str(message)),)
            if failed and message
            else (),
            usage=Usage(
                input_tokens=_count(progress.get("inputTokens")),
                output_tokens=_count(progress.get("outputTokens")),
            )
            if progress.get("inputTokens") is not None
            else None,
            raw=dict(raw),
        )

    def output_line(self, record: Mapping[str, Any], source: ResultSource) -> dict[str, Any]:
        return openai_lines.output_line(_read(record))

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        return openai_lines.batch_result(_read(record), record, _usage)
