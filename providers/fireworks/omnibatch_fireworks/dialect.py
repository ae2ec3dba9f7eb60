"""Fireworks' datasets and batch inference jobs, for the omnibatch emulator (at ``/fireworks``).

Point the official SDK at it with
``Fireworks(api_key=..., account_id="my-account", base_url="http://HOST:PORT/fireworks")``.
Shapes follow ``fireworks-ai`` 1.2.28 (``Dataset``, ``DatasetUploadResponse``,
``DatasetGetUploadEndpointResponse``, ``DatasetGetDownloadEndpointResponse``,
``BatchInferenceJob``, the ``batchInferenceJobs``/``nextPageToken`` cursor page).
Every path is scoped to an account: ``/v1/accounts/{account}/datasets...`` and
``/v1/accounts/{account}/batchInferenceJobs...``. A dataset is one stored file (its id is the
dataset id) whose ``extra["files"]`` holds the files of an output dataset. Signed URLs are
served under ``/fireworks/signed/`` and need no key. States ``JOB_STATE_VALIDATING →
JOB_STATE_RUNNING → JOB_STATE_WRITING_RESULTS → JOB_STATE_COMPLETED`` (or ``JOB_STATE_FAILED``,
``JOB_STATE_EXPIRED``); no cancel. The output dataset holds ``results.jsonl``
(``{"custom_id", "response": {"status_code", "body"}}``) and ``errors.jsonl``
(``{"custom_id", "error": {"code", "message"}}``): the exact names and line shapes are not
documented, these are the emulator's choice.
"""

from __future__ import annotations

import re
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
    StoredFile,
    ValidationIssue,
    answer_for,
    chat_completion_body,
    content_response,
    iso_time,
    jsonl_lines,
    parse_multipart,
    read_json,
    request_lines,
    short_hash,
)

__all__ = ["FireworksDialect", "parse_dataset"]

STATE = {
    Phase.VALIDATING: "JOB_STATE_VALIDATING",
    Phase.RUNNING: "JOB_STATE_RUNNING",
    Phase.FINALIZING: "JOB_STATE_WRITING_RESULTS",
    Phase.COMPLETED: "JOB_STATE_COMPLETED",
    Phase.FAILED: "JOB_STATE_FAILED",
    Phase.EXPIRED: "JOB_STATE_EXPIRED",
    Phase.CANCELLING: "JOB_STATE_CANCELLING",
    Phase.CANCELLED: "JOB_STATE_CANCELLED",
}
WINDOW_SECONDS = 24 * 3600
MAX_DATASET_BYTES = 500 * 1024 * 1024
MAX_DIRECT_UPLOAD_BYTES = 150 * 1024 * 1024
MAX_REPORTED_ISSUES = 1_000
RESULTS_FILE = "results.jsonl"
ERRORS_FILE = "errors.jsonl"
_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

_ACCOUNT = re.compile(r"^/v1/accounts/([^/]+)/(.*)$")
_SIGNED = re.compile(r"^/signed/(upload|download)/([^/]+)/([^/]+)$")
# gRPC codes in the ``{"code", "message", "details"}`` error body
_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14}


def _signature(*parts: str) -> str:
    return short_hash("fireworks-signed", *parts)


class FireworksDialect(Dialect):
    """Fireworks' account-scoped ``datasets`` and ``batchInferenceJobs`` endpoints."""

    name: ClassVar[str] = "fireworks"
    prefix: ClassVar[str] = "/fireworks"
    base_url_suffix: ClassVar[str] = ""

    def error_body(
        self,
        status_code: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> Any:
        return {"code": _GRPC.get(status_code, 2), "message": message, "details": []}

    def _error(self, status_code: int, message: str) -> HTTPErrorResponse:
        return HTTPErrorResponse(self.error_response(status_code, message))

    # -- routing ------------------------------------------------------------------------

    def preflight(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response | None:
        # Signed URLs carry no key: their signature is checked in handle.
        if _SIGNED.match(path.rstrip("/")):
            return None
        return super().preflight(engine, request, path)

    def body_limit(self, method: str, path: str) -> int:
        path = path.rstrip("/")
        if (method == "PUT" and _SIGNED.match(path)) or path.endswith(":upload"):
            return self.max_upload_bytes
        return super().body_limit(method, path)

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        method = request.method
        path = path.rstrip("/") or "/"
        if m := _SIGNED.match(path):
            return self._signed(engine, request, *m.groups())
        denied = self.check_auth(engine, request)
        if denied is not None:
            return denied
        m = _ACCOUNT.match(path)
        if m is None:
            return self.not_found(request, path)
        account, rest = m.groups()
        resource, _, verb = rest.partition(":")
        parts = resource.split("/")
        if parts[0] == "datasets":
            if len(parts) == 1 and not verb:
                if method == "POST":
                    return self._create_dataset(engine, request, account)
                if method == "GET":
                    return self._list_datasets(engine, request, account)
            elif len(parts) == 2:
                return self._dataset_route(engine, request, account, parts[1], verb, path)
        elif parts[0] == "batchInferenceJobs" and not verb:
            if len(parts) == 1:
                if method == "POST":
                    return self._create_job(engine, request, account)
                if method == "GET":
                    return self._list_jobs(engine, request, account)
            elif len(parts) == 2:
                job = self._job(engine, account, parts[1])
                if method == "GET":
                    return self.json_response(self.job_object(engine, job))
                if method == "DELETE":
                    engine.delete_batch(job.id)
                    return self.json_response({})
        return self.not_found(request, path)

    def _dataset_route(
        self,
        engine: Engine,
        request: httpx.Request,
        account: str,
        dataset_id: str,
        verb: str,
        path: str,
    ) -> httpx.Response:
        method = request.method
        dataset = self._dataset(engine, account, dataset_id)
        if not verb:
            if method == "GET":
                return self.json_response(self.dataset_object(dataset))
            if method == "DELETE":
                engine.delete_file(dataset.id)
                return self.json_response({})
            if method == "PATCH":
                body = self._json(request)
                if "displayName" in body:
                    dataset.extra["display_name"] = body["displayName"]
                if "exampleCount" in body:
                    dataset.extra["example_count"] = int(body["exampleCount"] or 0)
                dataset.extra["updated_at"] = engine.now()
                return self.json_response(self.dataset_object(dataset))
        elif verb == "upload" and method == "POST":
            return self._upload(request, dataset)
        elif verb == "getUploadEndpoint" and method == "POST":
            return self._upload_endpoint(request, dataset, path)
        elif verb == "validateUpload" and method == "POST":
            if not dataset.data:
                raise self._error(400, f"dataset {dataset_id} has no uploaded file")
            dataset.extra["state"] = "READY"
            return self.json_response({})
        elif verb == "getDownloadEndpoint" and method == "GET":
            return self._download_endpoint(request, dataset, path)
        return self.not_found(request, path)

    def _root(self, request: httpx.Request, path: str) -> str:
        url = str(request.url.copy_with(query=None, fragment=None))
        return url[: len(url) - len(path)] if url.endswith(path) else url

    def _dataset(self, engine: Engine, account: str, dataset_id: str) -> StoredFile:
        stored = engine.get_file(dataset_id, self.name)
        if stored is None or stored.extra.get("account") != account:
            raise self._error(404, f"dataset accounts/{account}/datasets/{dataset_id} not found")
        return stored

    def _job(self, engine: Engine, account: str, job_id: str) -> SimBatch:
        job = engine.get_batch(job_id, self.name)
        if job is None or job.extra.get("account") != account:
            raise self._error(
                404, f"batch inference job accounts/{account}/batchInferenceJobs/{job_id} not found"
            )
        return job

    # -- datasets ---------------------------------------------------------------------------

    def dataset_object(self, stored: StoredFile) -> dict[str, Any]:
        account = stored.extra["account"]
        obj: dict[str, Any] = {
            "name": f"accounts/{account}/datasets/{stored.id}",
            "displayName": stored.extra.get("display_name") or stored.id,
            "createTime": iso_time(stored.created_at),
            "updateTime": iso_time(stored.extra.get("updated_at", stored.created_at)),
            "createdBy": "emulator@example.com",
            "state": stored.extra.get("state", "UPLOADING"),
            "status": {"code": "OK", "message": ""},
            "exampleCount": str(stored.extra.get("example_count", 0)),
            "format": "FORMAT_UNSPECIFIED",
        }
        if stored.extra.get("source_job"):
            obj["sourceJobName"] = stored.extra["source_job"]
        else:
            obj["userUploaded"] = {}
        return obj

    def _new_dataset(
        self, engine: Engine, account: str, dataset_id: str, **extra: Any
    ) -> StoredFile:
        if engine.get_file(dataset_id) is not None:
            raise self._error(409, f"dataset accounts/{account}/datasets/{dataset_id} exists")
        return engine.add_file(
            dataset_id,
            b"",
            purpose="dataset",
            filename=f"{dataset_id}.jsonl",
            dialect=self.name,
            extra={"account": account, "files": {}, **extra},
        )

    def _create_dataset(
        self, engine: Engine, request: httpx.Request, account: str
    ) -> httpx.Response:
        body = self._json(request)
        dataset_id = body.get("datasetId")
        spec = body.get("dataset")
        if not isinstance(dataset_id, str) or not _ID.match(dataset_id):
            raise self._error(400, "datasetId must be 1-63 lower-case letters, digits or dashes")
        if not isinstance(spec, dict):
            raise self._error(400, "dataset is required")
        stored = self._new_dataset(
            engine,
            account,
            dataset_id,
            state="UPLOADING",
            display_name=spec.get("displayName"),
            example_count=int(spec.get("exampleCount") or 0),
        )
        return self.json_response(self.dataset_object(stored))

    def _list_datasets(
        self, engine: Engine, request: httpx.Request, account: str
    ) -> httpx.Response:
        datasets = [
            f for f in reversed(engine.list_files(self.name)) if f.extra.get("account") == account
        ]
        start, size = self._page(request, len(datasets))
        page = datasets[start : start + size]
        more = start + size < len(datasets)
        return self.json_response(
            {
                "datasets": [self.dataset_object(d) for d in page],
                "nextPageToken": str(start + size) if more else "",
                "totalSize": len(datasets),
            }
        )

    def _store_input(self, dataset: StoredFile, data: bytes, filename: str) -> None:
        if len(data) > MAX_DATASET_BYTES:
            raise self._error(400, "datasets must be smaller than 500 MB")
        dataset.data = data
        dataset.extra["files"] = {filename: data}
        dataset.extra["example_count"] = sum(1 for _ in jsonl_lines(data))

    def _upload(self, request: httpx.Request, dataset: StoredFile) -> httpx.Response:
        try:
            fields = {p.name: p for p in parse_multipart(request)}
        except ValueError as exc:
            raise self._error(400, f"invalid multipart body: {exc}") from None
        upload = fields.get("file")
        if upload is None:
            raise self._error(400, "the form has no 'file' part")
        if len(upload.data) > MAX_DIRECT_UPLOAD_BYTES:
            raise self._error(400, "files above 150 MB go through getUploadEndpoint")
        filename = upload.filename or "dataset.jsonl"
        self._store_input(dataset, upload.data, filename)
        dataset.extra["state"] = "READY"
        return self.json_response(
            {
                "id": dataset.id,
                "object": "file",
                "bytes": len(upload.data),
                "created_at": int(dataset.created_at),
                "filename": filename,
                "purpose": "dataset",
            }
        )

    def _upload_endpoint(
        self, request: httpx.Request, dataset: StoredFile, path: str
    ) -> httpx.Response:
        body = self._json(request)
        sizes = body.get("filenameToSize")
        if not isinstance(sizes, dict) or not sizes:
            raise self._error(400, "filenameToSize is required")
        root = self._root(request, path)
        urls = {
            name: f"{root}/signed/upload/{dataset.id}/{name}?signature="
            + _signature("upload", dataset.id, name)
            for name in sizes
        }
        return self.json_response({"filenameToSignedUrls": urls})

    def _download_endpoint(
        self, request: httpx.Request, dataset: StoredFile, path: str
    ) -> httpx.Response:
        root = self._root(request, path)
        urls = {
            name: f"{root}/signed/download/{dataset.id}/{name}?signature="
            + _signature("download", dataset.id, name)
            for name in dataset.extra.get("files", {})
        }
        return self.json_response({"filenameToSignedUrls": urls})

    def _signed(
        self, engine: Engine, request: httpx.Request, kind: str, dataset_id: str, name: str
    ) -> httpx.Response:
        stored = engine.get_file(dataset_id, self.name)
        good = request.url.params.get("signature") == _signature(kind, dataset_id, name)
        if stored is None or not good:
            return httpx.Response(403, content=b"<Error><Code>AccessDenied</Code></Error>")
        if kind == "upload" and request.method == "PUT":
            self._store_input(stored, request.read(), name)
            return httpx.Response(200, content=b"")
        files = stored.extra.get("files", {})
        if kind == "download" and request.method == "GET" and name in files:
            return content_response(request, files[name], "application/jsonl")
        return httpx.Response(404, content=b"<Error><Code>NoSuchKey</Code></Error>")

    # -- jobs ---------------------------------------------------------------------------------

    def _json(self, request: httpx.Request) -> dict[str, Any]:
        try:
            body = read_json(request)
        except ValueError:
            raise self._error(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise self._error(400, "the request body must be a JSON object")
        return body

    def _page(self, request: httpx.Request, total: int) -> tuple[int, int]:
        params = request.url.params
        try:
            size = int(params.get("pageSize") or 50)
            start = int(params.get("pageToken") or 0)
        except ValueError:
            raise self._error(400, "pageSize and pageToken must be integers") from None
        return start, max(1, min(size, 200))

    def _create_job(self, engine: Engine, request: httpx.Request, account: str) -> httpx.Response:
        body = self._json(request)
        job_id = request.url.params.get("batchInferenceJobId") or engine.random_hex(12)
        if not _ID.match(job_id):
            raise self._error(
                400, "batchInferenceJobId must be 1-63 lower-case letters, digits or dashes"
            )
        if engine.get_batch(job_id) is not None:
            raise self._error(
                409, f"batch inference job accounts/{account}/batchInferenceJobs/{job_id} exists"
            )
        continued = body.get("continuedFromJobName")
        previous = None
        if continued:
            previous = self._job(engine, account, str(continued).rsplit("/", 1)[-1])
        model = body.get("model") or (previous.model if previous else None)
        if not isinstance(model, str) or not model:
            raise self._error(400, "model is required")
        input_name = body.get("inputDatasetId")
        if previous is not None and not input_name:
            input_name = previous.extra["input_dataset"]
        if not isinstance(input_name, str) or not input_name:
            raise self._error(400, "inputDatasetId is required")
        dataset = self._dataset(engine, account, input_name.rsplit("/", 1)[-1])
        if dataset.extra.get("state") != "READY":
            raise self._error(400, f"dataset {dataset.id} is not READY (upload it first)")
        if previous is not None:
            requests, issues = self._unfinished(engine, previous)
        else:
            requests, issues = parse_dataset(dataset)
        output_name = body.get("outputDatasetId") or f"accounts/{account}/datasets/{job_id}-output"
        output_id = str(output_name).rsplit("/", 1)[-1]
        output = engine.get_file(output_id, self.name)
        if output is None:
            output = self._new_dataset(
                engine,
                account,
                output_id,
                state="UPLOADING",
                source_job=f"accounts/{account}/batchInferenceJobs/{job_id}",
            )
        job = engine.create_batch(
            job_id,
            dialect=self.name,
            endpoint="/v1/chat/completions",
            requests=requests,
            window=WINDOW_SECONDS,
            validation_errors=issues,
            model=model,
            input_file_ids=[dataset.id],
            extra={
                "account": account,
                "input_dataset": f"accounts/{account}/datasets/{dataset.id}",
                "output_dataset": f"accounts/{account}/datasets/{output.id}",
                "display_name": body.get("displayName"),
                "inference_parameters": body.get("inferenceParameters"),
                "precision": body.get("precision"),
                "continued_from": continued,
            },
        )
        return self.json_response(self.job_object(engine, job))

    def _unfinished(
        self, engine: Engine, previous: SimBatch
    ) -> tuple[list[SimRequest], list[ValidationIssue]]:
        """The requests an ended job did not get to: what a continuation processes."""
        snap = engine.snapshot(previous)
        if not snap.terminal:
            raise self._error(400, f"job {previous.id} has not ended; only ended jobs continue")
        left = engine.unprocessed(previous, snap)
        requests = [
            SimRequest(index=i, custom_id=r.custom_id, body=r.body, raw=r.raw, line=r.line)
            for i, r in enumerate(left)
        ]
        issues = [] if requests else [ValidationIssue("empty", "no unfinished requests")]
        return requests, issues

    def _list_jobs(self, engine: Engine, request: httpx.Request, account: str) -> httpx.Response:
        jobs = [j for j in engine.list_batches(self.name) if j.extra.get("account") == account]
        # Oldest first unless asked otherwise (the API's default order is by create time).
        if (request.url.params.get("orderBy") or "").strip().lower().endswith(" desc"):
            jobs.reverse()
        start, size = self._page(request, len(jobs))
        page = jobs[start : start + size]
        more = start + size < len(jobs)
        return self.json_response(
            {
                "batchInferenceJobs": [self.job_object(engine, j) for j in page],
                "nextPageToken": str(start + size) if more else "",
                "totalSize": len(jobs),
            }
        )

    # -- rendering ----------------------------------------------------------------------

    def job_object(self, engine: Engine, job: SimBatch) -> dict[str, Any]:
        """A ``BatchInferenceJob`` as the API returns it now."""
        snap = engine.snapshot(job)
        engine.ensure_results(job, snap, lambda b, s: self._write_results(engine, b, s))
        account = job.extra["account"]
        status = {"code": "OK", "message": ""}
        if snap.phase is Phase.FAILED:
            message = "; ".join(i.message for i in job.validation_errors[:5])
            status = {"code": "INVALID_ARGUMENT", "message": message}
        elif snap.phase is Phase.EXPIRED:
            status = {"code": "DEADLINE_EXCEEDED", "message": "the job ran out of time"}
        obj: dict[str, Any] = {
            "name": f"accounts/{account}/batchInferenceJobs/{job.id}",
            "displayName": job.extra.get("display_name") or job.id,
            "createTime": iso_time(snap.created_at),
            "updateTime": iso_time(snap.ended_at or snap.started_at or snap.created_at),
            "createdBy": "emulator@example.com",
            "state": STATE[snap.phase],
            "status": status,
            "model": job.model,
            "inputDatasetId": job.extra["input_dataset"],
            "outputDatasetId": job.extra["output_dataset"],
            "jobProgress": {
                "percent": int(100 * snap.done / snap.total) if snap.total else 0,
                "epoch": 0,
                "totalInputRequests": snap.total,
                "totalProcessedRequests": snap.done,
                "successfullyProcessedRequests": snap.succeeded,
                "failedRequests": snap.failed,
                "outputRows": snap.succeeded,
                "inputTokens": snap.prompt_tokens,
                "outputTokens": snap.completion_tokens,
                "cachedInputTokenCount": 0,
            },
        }
        if job.extra.get("inference_parameters"):
            obj["inferenceParameters"] = job.extra["inference_parameters"]
        if job.extra.get("precision"):
            obj["precision"] = job.extra["precision"]
        if job.extra.get("continued_from"):
            obj["continuedFromJobName"] = job.extra["continued_from"]
        return obj

    def _write_results(self, engine: Engine, job: SimBatch, snap: Snapshot) -> None:
        output = engine.get_file(job.extra["output_dataset"].rsplit("/", 1)[-1], self.name)
        if output is None or snap.phase is Phase.FAILED:
            return
        ok: list[bytes] = []
        failed: list[bytes] = []
        for position, req in enumerate(engine.processed(job, snap)):
            created = int(engine.processed_at(job, position, snap))
            line = self.result_line(job, req, created)
            (failed if req.failure else ok).append(orjson.dumps(line))
        files: dict[str, bytes] = output.extra.setdefault("files", {})
        files[RESULTS_FILE] = b"".join(line + b"\n" for line in ok)
        if failed:
            files[ERRORS_FILE] = b"".join(line + b"\n" for line in failed)
        output.data = files[RESULTS_FILE]
        output.extra["state"] = "READY"
        output.extra["example_count"] = len(ok)

    def result_line(self, job: SimBatch, req: SimRequest, created: int) -> dict[str, Any]:
        if req.failure is not None:
            if req.failure == 500:
                message = "Internal server error (emulated)"
            elif ERROR_MARKER in req.raw:
                message = "This request contains the emulator error marker [[emulator:error]]."
            else:
                message = "The emulator does not simulate this request."
            return {
                "custom_id": req.custom_id,
                "error": {"code": req.failure, "message": message},
            }
        answer = answer_for(job.endpoint, req.body)
        body = chat_completion_body(
            answer, model=str(job.model or ""), created=created, ident=f"{job.id}:{req.index}"
        )
        return {"custom_id": req.custom_id, "response": {"status_code": 200, "body": body}}


def parse_dataset(stored: StoredFile) -> tuple[list[SimRequest], list[ValidationIssue]]:
    """Parse an input dataset (lines ``{"custom_id", "body"}``)."""
    return request_lines(
        stored.data,
        empty=ValidationIssue("empty_dataset", "the dataset contains no requests"),
        max_issues=MAX_REPORTED_ISSUES,
    )
