"""Jobs: run a whole batch job through the ledger, so it survives crashes and never submits twice.

A *job* is one input run through one provider with one set of options. :class:`JobRunner` takes
it through the lifecycle, writing every step to the :class:`~omnibatch.ledger.Ledger` before or
after it happens:

1. prepare: validate, translate and split the input (``omnibatch.pipeline.prepare_input``);
2. per part, upload: record the upload's unique file name, upload, record the file id;
3. per part, create: write the intent row (an idempotency key, carried in the batch metadata),
   create with :func:`omnibatch._lifecycle.create_once`, record the batch id;
4. wait for every part with one progress display;
5. collect: download result files (resumable), write OUTPUT with one line per input custom id,
   delete the uploaded input files.

Run it again after a crash and each step resumes from the ledger: an intent without a batch id
is reconciled by listing the provider's batches for its key (the batch is reattached, not created
again), and an upload without a file id is looked up by its unique file name (reused, or deleted
if another upload already took its place).

``OMNIBATCH_CRASH_AT=<checkpoint>[:N]`` kills the process with SIGKILL the N-th time it reaches a
checkpoint (see :data:`CHECKPOINTS`): the fault-injection switch the crash tests use.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from omnibatch._exceptions import (
    BatchStateError,
    ConfigurationError,
    ConflictError,
    InputValidationError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    RateLimitError,
    UnsupportedOperationError,
    WaitTimeoutError,
)
from omnibatch._http import RetryPolicy
from omnibatch._lifecycle import (
    PollPolicy,
    can_reconcile,
    create_once,
    fetch_results,
    find_by_key,
    merged_metadata,
    new_idempotency_key,
)
from omnibatch._status import BatchStatus
from omnibatch.adapter import CreateSpec, InputPart, InputRef, ProviderAdapter
from omnibatch.config import (
    EMULATOR_KEY,
    EMULATOR_URL_ENV,
    FileConfig,
    load_config,
    resolve_provider_name,
    resolve_settings,
)
from omnibatch.ledger import JobRecord, Ledger, NewPart, PartRecord, safe_url
from omnibatch.models import Batch
from omnibatch.pipeline import prepare_input
from omnibatch.results import OutputSummary, PartResults, write_output

if TYPE_CHECKING:
    from omnibatch.client import BatchClient

__all__ = [
    "CHECKPOINTS",
    "CRASH_ENV",
    "JOB_METADATA_KEY",
    "CrashPlan",
    "JobObserver",
    "JobOptions",
    "JobRunner",
    "JobView",
    "RunResult",
    "SubmissionUnknownError",
    "Target",
    "hash_file",
]

log = logging.getLogger("omnibatch")

CRASH_ENV = "OMNIBATCH_CRASH_AT"
JOB_METADATA_KEY = "omnibatch_job"
"""Metadata key naming the ledger job a batch belongs to (next to the idempotency key)."""
EMBEDDED_KEY_SOURCE = "embedded emulator"

CHECKPOINTS: tuple[str, ...] = (
    "prepared",  # parts written and recorded, nothing sent
    "before-upload",  # upload name recorded, nothing sent
    "upload-sent",  # the upload request is about to leave
    "upload-answered",  # the provider stored the file; its answer is not read yet
    "after-upload",  # file id known, not yet in the ledger
    "uploaded",  # file id in the ledger
    "before-create",  # intent row (idempotency key) written, create not sent
    "create-sent",
    "create-answered",  # the provider created the batch; its answer is not read yet
    "after-create",  # batch id known, not yet in the ledger
    "created",  # batch id in the ledger
    "list-answered",  # a reconciling listing was answered
    "retrieve-answered",  # a status poll was answered, not stored
    "poll",  # a status poll was stored in the ledger
    "before-download",  # every batch ended; a part's results are about to be fetched
    "download-partial",  # half of a result file arrived
    "downloaded",  # a part's result files are on disk
    "before-output",
    "output-written",  # OUTPUT is complete, the job is not marked done yet
    "delete-answered",  # an input file was deleted at the provider, not yet in the ledger
    "done",
)

_WAITING_ORDER = (
    BatchStatus.UNKNOWN,
    BatchStatus.QUEUED,
    BatchStatus.VALIDATING,
    BatchStatus.RUNNING,
    BatchStatus.FINALIZING,
)
_ENDED_ORDER = (BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED)


class SubmissionUnknownError(BatchStateError):
    """A create was sent before a crash and the provider cannot be searched for it, so whether
    the batch exists is unknown; omnibatch refuses to risk paying twice."""


# --- fault injection ------------------------------------------------------------------------------


@dataclass
class CrashPlan:
    """Kill this process at the ``nth`` time ``point`` is reached (a test switch)."""

    point: str
    nth: int = 1
    seen: Counter[str] = field(default_factory=Counter)

    @classmethod
    def parse(cls, spec: str) -> CrashPlan:
        name, _, count = spec.strip().partition(":")
        if name not in CHECKPOINTS:
            raise ConfigurationError(
                f"{CRASH_ENV}={spec!r}: unknown checkpoint {name!r}; "
                f"known: {', '.join(CHECKPOINTS)}"
            )
        try:
            nth = int(count) if count else 1
        except ValueError:
            nth = 0
        if nth < 1:
            raise ConfigurationError(f"{CRASH_ENV}={spec!r}: the count after ':' must be >= 1")
        return cls(name, nth)

    @classmethod
    def from_env(cls) -> CrashPlan | None:
        spec = os.environ.get(CRASH_ENV)
        return cls.parse(spec) if spec else None

    def hit(self, point: str) -> None:
        self.seen[point] += 1
        if point == self.point and self.seen[point] == self.nth:
            log.debug("%s: killing the process at %s:%d", CRASH_ENV, point, self.nth)
            if sys.platform == "win32":  # no SIGKILL there; _exit skips cleanup just the same
                os._exit(137)
            os.kill(os.getpid(), signal.SIGKILL)


class _HalfStream(httpx.SyncByteStream):
    """A response body that delivers half of its first chunk, then reaches a checkpoint."""

    def __init__(self, inner: httpx.SyncByteStream, plan: CrashPlan) -> None:
        self._inner = inner
        self._plan = plan

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if len(chunk) > 1:
                yield chunk[: len(chunk) // 2]
                self._plan.hit("download-partial")
                yield chunk[len(chunk) // 2 :]
            else:
                yield chunk
                self._plan.hit("download-partial")

    def close(self) -> None:
        self._inner.close()


class _CheckpointTransport(httpx.BaseTransport):
    """Reaches ``<operation>-sent`` / ``<operation>-answered`` around each request."""

    def __init__(self, inner: httpx.BaseTransport, plan: CrashPlan, runner: JobRunner) -> None:
        self._inner = inner
        self._plan = plan
        self._runner = runner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        operation = self._runner._operation
        self._plan.hit(f"{operation}-sent")
        response = self._inner.handle_request(request)
        self._plan.hit(f"{operation}-answered")
        if operation == "download" and isinstance(response.stream, httpx.SyncByteStream):
            response.stream = _HalfStream(response.stream, self._plan)
        return response

    def close(self) -> None:
        self._inner.close()


# --- values ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOptions:
    """The options that, with the input and the provider, identify a job."""

    model: str | None = None
    max_requests_per_batch: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    completion_window: str = "24h"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_requests_per_batch": self.max_requests_per_batch,
            "metadata": dict(sorted(self.metadata.items())),
            "completion_window": self.completion_window,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobOptions:
        return cls(
            model=data.get("model"),
            max_requests_per_batch=data.get("max_requests_per_batch"),
            metadata=dict(data.get("metadata") or {}),
            completion_window=data.get("completion_window") or "24h",
        )


@dataclass(frozen=True)
class Target:
    """Where a job runs. ``key_source`` says where the key came from (never the key itself)."""

    provider: str
    base_url: str
    api_key: str | None = field(repr=False)
    key_source: str | None = None
    embedded: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


def _counts_of(batch: Batch) -> dict[str, int]:
    c = batch.request_counts
    return {
        "total": c.total,
        "succeeded": c.succeeded,
        "failed": c.failed,
        "cancelled": c.cancelled,
        "expired": c.expired,
    }


def _status(value: str | None) -> BatchStatus:
    try:
        return BatchStatus(value) if value else BatchStatus.UNKNOWN
    except ValueError:
        return BatchStatus.UNKNOWN


@dataclass(frozen=True)
class JobView:
    """A job and its parts as the ledger has them, with the derived status and counts."""

    job: JobRecord
    parts: tuple[PartRecord, ...]

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def created(self) -> bool:
        """Every part has a provider batch."""
        return bool(self.parts) and all(p.batch_id for p in self.parts)

    @property
    def ended(self) -> bool:
        """Every part's batch reached a terminal status."""
        return self.created and all(_status(p.status).is_terminal for p in self.parts)

    @property
    def status(self) -> str:
        """One normalized status for the job: the least advanced of its running batches, or
        ``succeeded`` when all succeeded, else the worst ending (failed > expired > cancelled).
        Before every batch exists it is the job's phase (``preparing``, ``submitting``)."""
        if self.job.phase == "abandoned":
            return "abandoned"
        if not self.created:
            return self.job.phase if self.job.phase in ("preparing", "submitting") else "submitting"
        statuses = [_status(p.status) for p in self.parts]
        if BatchStatus.CANCELLING in statuses:
            return BatchStatus.CANCELLING.value
        running = [s for s in statuses if not s.is_terminal]
        if running:
            return min(running, key=_WAITING_ORDER.index).value
        for ending in _ENDED_ORDER:
            if ending in statuses:
                return ending.value
        return BatchStatus.SUCCEEDED.value

    @property
    def counts(self) -> dict[str, int]:
        total = dict.fromkeys(("total", "succeeded", "failed", "cancelled", "expired"), 0)
        for p in self.parts:
            for key in total:
                total[key] += int(p.counts.get(key, 0))
            if not p.counts.get("total"):
                total["total"] += p.requests
        return total

    @property
    def cost(self) -> dict[str, Any]:
        """``cost_usd`` (unrounded; None until the results are read or when unknown),
        ``cost_source`` and ``cost_reason``, as the ledger recorded them."""
        summary = self.job.summary or {}
        if "cost_reason" not in summary:
            return {"cost_usd": None, "cost_source": None, "cost_reason": "results not read yet"}
        return {k: summary.get(k) for k in ("cost_usd", "cost_source", "cost_reason")}

    def cost_label(self) -> str:
        cost = self.cost
        if cost["cost_usd"] is None:
            return f"unknown ({cost['cost_reason']})"
        where = "reported by the provider" if cost["cost_source"] == "provider" else "batch prices"
        return f"${cost['cost_usd']:.6f} ({where})"

    def to_dict(self) -> dict[str, Any]:
        job = self.job
        return {
            "job": job.id,
            "provider": job.provider,
            "base_url": job.base_url,
            "embedded": job.embedded,
            "status": self.status,
            "phase": job.phase,
            "counts": self.counts,
            "requests": job.total,
            "input": job.input_path,
            "output": job.output_path,
            "options": dict(job.options),
            "summary": dict(job.summary) if job.summary else None,
            **self.cost,
            "created_at": datetime.fromtimestamp(job.created_at, UTC).isoformat(),
            "updated_at": datetime.fromtimestamp(job.updated_at, UTC).isoformat(),
            "batches": [
                {
                    "part": p.part,
                    "requests": p.requests,
                    "batch_id": p.batch_id,
                    "status": p.status,
                    "provider_status": p.provider_status,
                    "counts": dict(p.counts),
                    "input_file_id": p.file_id,
                    "output_file_ids": list(p.output_file_ids),
                    "error_file_ids": list(p.error_file_ids),
                }
                for p in self.parts
            ],
        }


@dataclass(frozen=True)
class RunResult:
    """What :meth:`JobRunner.run` did."""

    view: JobView
    resumed: bool
    output: Path | None = None
    summary: OutputSummary | None = None

    @property
    def succeeded(self) -> bool:
        return self.view.status == BatchStatus.SUCCEEDED.value


class JobObserver:
    """Receives what a runner does; the CLI draws progress from it. Methods do nothing here."""

    def message(self, text: str) -> None:
        """A one-line note (uploaded a part, reattached a batch, ...)."""

    def waiting(self, view: JobView) -> None:
        """Waiting starts."""

    def progress(self, view: JobView) -> None:
        """A polling round stored new states."""

    def waited(self, view: JobView) -> None:
        """Waiting ended (every batch ended, or the wait was interrupted)."""


def hash_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def job_key(input_hash: str, target: Target, options: JobOptions) -> str:
    """A job's identity: same input bytes, provider, endpoint, options and provider settings
    (the model map and every other setting that changes what is sent) = same job."""
    identity: dict[str, Any] = {
        "v": 1,
        "input": input_hash,
        "provider": target.provider,
        "base_url": safe_url(target.base_url),
        "options": options.as_dict(),
    }
    if target.options:  # absent when empty: the jobs recorded before keep their keys
        identity["settings"] = dict(target.options)
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()


def override_model(source: Path, model: str, target: Path) -> Path:
    """Copy the input to ``target`` with every body's model replaced by ``model``. Blank lines
    and lines that are not request objects stay as they are, so validation still names the
    real line numbers."""
    with open(source, "rb") as src, open(target, "wb") as out:
        for line in src:
            try:
                obj = orjson.loads(line) if line.strip() else None
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and isinstance(obj.get("body"), dict):
                obj["body"]["model"] = model
                out.write(orjson.dumps(obj) + b"\n")
            else:
                out.write(line)
    return target


# --- the runner -----------------------------------------------------------------------------------


class JobRunner:
    """Runs jobs recorded in ``ledger``.

    ``transport`` replaces the network (an emulator's ``MockTransport`` in tests); ``poll`` and
    ``retry`` tune waiting and HTTP retries; ``clock`` and ``sleep`` drive the polling loop;
    ``crash`` defaults to ``$OMNIBATCH_CRASH_AT``; ``keep_files`` keeps the uploaded inputs.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        config: FileConfig | None = None,
        observer: JobObserver | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        crash: CrashPlan | None = None,
        keep_files: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ledger = ledger
        self.config = config if config is not None else load_config()
        self.observer = observer or JobObserver()
        self.poll = poll or PollPolicy()
        self.retry = retry or RetryPolicy()
        self.keep_files = keep_files
        self.strict = False
        """Refuse an input whose models do not look like the provider's (``--strict``)."""
        self._clock = clock
        self._sleep = sleep
        self._crash = crash if crash is not None else CrashPlan.from_env()
        self._operation = "request"
        if self._crash is not None:
            transport = _CheckpointTransport(transport or httpx.HTTPTransport(), self._crash, self)
        self._http = httpx.Client(transport=transport, timeout=timeout)
        self._clients: dict[tuple[str, str], BatchClient] = {}
        self._rng = random.Random()
        self.current: JobView | None = None
        """The job :meth:`run` works on (set once it is opened), e.g. to name it after Ctrl-C."""

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._http.close()

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _checkpoint(self, point: str) -> None:
        if self._crash is not None:
            self._crash.hit(point)

    def _send(self, client: BatchClient, operation: str) -> BatchClient:
        self._operation = operation  # labels the HTTP checkpoints of the next requests
        return client

    # --- where a job runs ------------------------------------------------------------------------

    def resolve_target(self, provider: str | None) -> Target:
        """The provider to use for a new job: ``provider``, else ``$OMNIBATCH_PROVIDER``, else
        the config file, else ``openai`` when ``$OMNIBATCH_EMULATOR_URL`` names an emulator.
        Raises :class:`ConfigurationError` when none is configured."""
        name = resolve_provider_name(provider, self.config)
        if name is None and os.environ.get(EMULATOR_URL_ENV):
            name = "openai"
        if name is None:
            raise ConfigurationError(
                "no provider configured: pass --provider, set OMNIBATCH_PROVIDER, or put "
                'provider = "..." in omnibatch.toml'
            )
        return self._target(name)

    def _target(self, name: str, *, base_url: str | None = None) -> Target:
        from omnibatch._plugins import get_registry

        cls = get_registry().provider(name)
        settings = resolve_settings(
            cls.name,
            api_key_env=cls.api_key_env,
            base_url_env=cls.base_url_env,
            emulator_prefix=cls.emulator_prefix,
            base_url=base_url,
            config=self.config,
        )
        if settings.api_key is None and cls.requires_api_key:
            where = f"set ${cls.api_key_env}" if cls.api_key_env else "configure a key"
            raise ConfigurationError(f"no API key for {cls.name}: {where}", provider=cls.name)
        return Target(
            provider=cls.name,
            base_url=(settings.base_url or cls.default_base_url).rstrip("/"),
            api_key=settings.api_key,
            key_source=settings.sources.get("api_key"),
            options=dict(settings.options),
        )

    def embedded_target(self, root_url: str) -> Target:
        """OpenAI on an emulator this process serves at ``root_url``."""
        from omnibatch._plugins import get_registry

        cls = get_registry().provider("openai")
        return Target(
            provider=cls.name,
            base_url=root_url.rstrip("/") + cls.emulator_prefix,
            api_key=EMULATOR_KEY,
            key_source=EMBEDDED_KEY_SOURCE,
            embedded=True,
        )

    def target_for(self, job: JobRecord) -> Target:
        """Where an existing job runs: its provider and recorded base URL, with the key found
        in this process's environment or config (or the emulator placeholder)."""
        if job.embedded:
            raise BatchStateError(
                f"job {job.id} ran on an embedded emulator that ended with its process; its "
                "batches are gone. Run the same command again to start a fresh job."
            )
        placeholder = job.key_source in ("emulator placeholder", EMBEDDED_KEY_SOURCE)
        try:
            current = self._target(job.provider)
        except ConfigurationError:
            if not placeholder:
                raise
            current = None
        if current is not None and safe_url(current.base_url) == job.base_url:
            return current  # same place: keep the full configured URL
        from omnibatch._plugins import get_registry

        cls = get_registry().provider(job.provider)
        if current is not None and not placeholder:
            return replace(current, base_url=job.base_url or cls.default_base_url)
        return Target(
            job.provider,
            job.base_url or cls.default_base_url,
            EMULATOR_KEY,
            "emulator placeholder",
            options=current.options if current else {},
        )

    def client_for(self, target: Target, workdir: Path) -> BatchClient:
        """One client per (base URL, download directory), sharing this runner's connections."""
        from omnibatch._plugins import get_registry
        from omnibatch.client import BatchClient

        key = (target.base_url, str(workdir))
        client = self._clients.get(key)
        if client is None:
            cls = get_registry().provider(target.provider)
            adapter = cls(api_key=target.api_key, base_url=target.base_url, options=target.options)
            client = BatchClient(
                adapter=adapter,
                http_client=self._http,
                workdir=workdir,
                retry=self.retry,
                poll=self.poll,
            )
            self._clients[key] = client
        return client

    def _job_client(self, job: JobRecord, target: Target | None = None) -> BatchClient:
        return self.client_for(target or self.target_for(job), job.workdir / "downloads")

    # --- reading the ledger -----------------------------------------------------------------------

    def view(self, job: JobRecord | str) -> JobView:
        job_id = job if isinstance(job, str) else job.id
        record = self.ledger.job(job_id)
        return JobView(record, tuple(self.ledger.parts(record.id)))

    # --- 1. open and prepare ----------------------------------------------------------------------

    def open(
        self,
        input_path: Path,
        target: Target,
        options: JobOptions,
        *,
        new: bool = False,
        output: Path | None = None,
    ) -> tuple[JobView, bool]:
        """The job for this input, target and options: the latest one recorded (resumed) unless
        ``new`` or the target is an embedded emulator, else a new one. Returns (job, resumed)."""
        input_path = input_path.resolve()
        input_hash = hash_file(input_path)
        key = job_key(input_hash, target, options)
        found = None if (new or target.embedded) else self.ledger.latest_job(key)
        if found is not None:
            self.ledger.note(found.id, "resumed")
            if output is not None:
                self.ledger.set_phase(found.id, found.phase, output_path=str(output))
            return self.view(found), True
        if target.embedded:
            self._abandon_embedded()
        job = self.ledger.create_job(
            job_key=key,
            provider=target.provider,
            base_url=target.base_url,
            key_source=target.key_source,
            embedded=target.embedded,
            input_path=str(input_path),
            input_hash=input_hash,
            options=options.as_dict(),
            output_path=str(output) if output else None,
        )
        return self.view(job), False

    def _abandon_embedded(self) -> None:
        """Embedded-emulator jobs left unfinished by earlier processes can never resume."""
        for job in self.ledger.list_jobs():
            if job.embedded and job.phase not in ("done", "abandoned"):
                try:
                    with self.ledger.lock(job):
                        self.ledger.set_phase(job.id, "abandoned")
                except BatchStateError:
                    continue  # still running in another process

    def prepare(self, view: JobView, target: Target) -> JobView:
        """Validate, translate and split the input into the job's part files (once)."""
        job = view.job
        if view.parts:
            return view
        options = JobOptions.from_dict(job.options)
        parts_dir = job.workdir / "parts"
        shutil.rmtree(parts_dir, ignore_errors=True)
        cls = self._adapter_cls(target.provider)
        adapter = cls(api_key=None, base_url=target.base_url, options=target.options)
        source: Path = Path(job.input_path)
        if options.model:
            source = override_model(source, options.model, job.workdir / "input-model.jsonl")
        try:
            prepared = prepare_input(
                source,
                adapter,
                parts_dir,
                model=options.model,
                max_requests=options.max_requests_per_batch,
                split=True,
                strict=self.strict,
            )
        except InputValidationError as exc:
            # Name the user's file, not the copy with the model replaced.
            raise InputValidationError(
                exc.problems, source=job.input_path, provider=exc.provider
            ) from None
        finally:
            if options.model:
                source.unlink(missing_ok=True)
        if not prepared.parts:  # a valid input always gives at least one part
            raise BatchStateError(
                f"preparing {job.input_path} for {target.provider} gave no batch for "
                f"{prepared.total} request(s); nothing was sent (please report this)"
            )
        new_parts = [
            NewPart(
                part=p.index,
                requests=p.count,
                part_path=p.path,
                ids_path=p.custom_ids_path or p.path.with_suffix(".ids"),
                endpoint=p.endpoint,
                model=options.model or p.model or prepared.model,
            )
            for p in prepared.parts
        ]
        for warning in prepared.warnings:
            self.observer.message(f"warning: {job.input_path}: {warning}")
        self.ledger.add_parts(job.id, new_parts, prepared.total)
        self.observer.message(f"prepared {prepared.total} request(s) in {len(new_parts)} batch(es)")
        self._checkpoint("prepared")
        return self.view(job.id)

    @staticmethod
    def _adapter_cls(name: str) -> type[ProviderAdapter]:
        from omnibatch._plugins import get_registry

        return get_registry().provider(name)

    # --- 2 and 3. upload and create, exactly once ------------------------------------------------

    def submit(self, view: JobView, target: Target | None = None) -> JobView:
        """Upload and create every part that has no batch yet (resuming where a crash left)."""
        job = view.job
        client = self._job_client(job, target)
        options = JobOptions.from_dict(job.options)
        total = len(view.parts)
        for part in view.parts:
            if part.batch_id:
                continue
            file_id = self._upload(client, job, part, total)
            self._create(client, job, self.ledger.part(job.id, part.part), file_id, options, total)
        self.ledger.set_phase(job.id, "running")
        return self.view(job.id)

    def _input_part(self, part: PartRecord, path: Path | None = None) -> InputPart:
        source = path or part.part_path
        return InputPart(
            path=source,
            index=part.part,
            count=part.requests,
            size_bytes=part.part_path.stat().st_size,
            endpoint=part.endpoint,
            model=part.model,
            custom_ids_path=part.ids_path,
        )

    def _upload(
        self, client: BatchClient, job: JobRecord, part: PartRecord, total: int
    ) -> str | None:
        adapter = client.adapter
        if not adapter.uploads(self._input_part(part)):
            return None  # inline: create carries the requests
        label = f"part {part.part + 1}/{total}"
        self._heal_uploads(client, job, part, label)
        part = self.ledger.part(job.id, part.part)
        if part.file_id:
            return part.file_id
        # A name no other upload has, so an upload whose answer was lost can be found again.
        name = f"{job.id}-part-{part.part:05d}-{uuid.uuid4().hex[:6]}.jsonl"
        upload_dir = job.workdir / "upload"
        upload_dir.mkdir(parents=True, exist_ok=True)
        link = upload_dir / name
        try:
            os.link(part.part_path, link)
        except OSError:
            shutil.copyfile(part.part_path, link)
        self.ledger.begin_upload(job.id, part.part, name)
        self._checkpoint("before-upload")
        try:
            ref: InputRef = self._send(client, "upload").run(
                adapter.upload(self._input_part(part, link))
            )
        finally:
            link.unlink(missing_ok=True)
        self._checkpoint("after-upload")
        if not ref.file_id:
            raise ProviderError(f"upload of {label} returned no file id", provider=adapter.name)
        self.ledger.record_upload(job.id, part.part, name, ref.file_id)
        self.observer.message(f"uploaded {label} as {ref.file_id}")
        self._checkpoint("uploaded")
        return ref.file_id

    def _heal_uploads(
        self, client: BatchClient, job: JobRecord, part: PartRecord, label: str
    ) -> None:
        """Find uploads of this part whose answer was lost (a crash mid-upload): reuse one as
        the part's file, delete the others. Never leaves them orphaned at the provider."""
        pending = [
            f
            for f in self.ledger.files(job.id)
            if f.part == part.part and f.role == "input" and f.state == "uploading"
        ]
        if not pending:
            return
        since = min(f.updated_at for f in pending) - 600
        found = self._find_files(client, {f.name for f in pending}, since)
        have = part.file_id
        for record in pending:
            file_id = found.get(record.name)
            if file_id is None:
                self.ledger.set_file_state(job.id, part.part, record.name, "absent")
            elif have is None:
                self.ledger.record_upload(job.id, part.part, record.name, file_id)
                self.observer.message(f"reusing {label}'s upload {file_id} from the earlier run")
                have = file_id
            else:
                self._delete_file(client, job.id, part.part, record.name, file_id)
                self.observer.message(f"deleted a duplicate upload {file_id} of {label}")

    def _find_files(self, client: BatchClient, names: set[str], since: float) -> dict[str, str]:
        """The ids of stored files with these names, looking back to ``since``: the listing is
        read until a whole newest-first page predates it (not at the first old file, so a
        skewed clock cannot hide an upload)."""
        adapter = client.adapter
        found: dict[str, str] = {}
        cursor: str | None = None
        try:
            for _ in range(1000):
                page = self._send(client, "list").run(adapter.list_files(cursor=cursor, limit=100))
                for item in page.items:
                    if item.filename in names and item.filename not in found:
                        found[item.filename] = item.id
                if len(found) == len(names) or not page.next_cursor:
                    return found
                times = [i.created_at.timestamp() for i in page.items if i.created_at]
                if times and max(times) < since and times == sorted(times, reverse=True):
                    return found
                cursor = page.next_cursor
        except UnsupportedOperationError:
            log.warning(
                "%s cannot list files: an upload interrupted by a crash may remain at the "
                "provider (see docs/reliability.md)",
                adapter.name,
            )
        return found

    def _create(
        self,
        client: BatchClient,
        job: JobRecord,
        part: PartRecord,
        file_id: str | None,
        options: JobOptions,
        total: int,
    ) -> None:
        adapter = client.adapter
        label = f"part {part.part + 1}/{total}"
        if part.idempotency_key is not None:
            # An earlier run wrote the intent, then stopped: the batch may exist already.
            since = datetime.fromtimestamp(part.intent_at or time.time(), UTC)
            if not can_reconcile(adapter):
                raise SubmissionUnknownError(
                    f"{label} of job {job.id} may already exist at {adapter.name}: a create was "
                    f"sent at {since:%Y-%m-%d %H:%M:%S} UTC and {adapter.name} cannot be searched "
                    "for it. Check the provider's console; if no batch was created, start over "
                    "with --new (see docs/reliability.md)",
                    provider=adapter.name,
                )
            found = self._send(client, "list").run(
                find_by_key(adapter, part.idempotency_key, since)
            )
            self._checkpoint("list-answered")
            if found is not None:
                self.ledger.record_batch(
                    job.id,
                    part.part,
                    batch_id=found.id,
                    status=found.status.value,
                    provider_status=found.provider_status,
                    counts=_counts_of(found),
                    reconciled=True,
                )
                self.observer.message(
                    f"reattached batch {found.id} for {label} (created before the interruption)"
                )
                return
        else:
            part = self.ledger.begin_create(job.id, part.part, new_idempotency_key())
            self._checkpoint("before-create")
        assert part.idempotency_key is not None
        metadata = dict(options.metadata)
        if adapter.capabilities.metadata:
            metadata[JOB_METADATA_KEY] = job.id
        spec = CreateSpec(
            endpoint=part.endpoint,
            model=part.model,
            completion_window=options.completion_window,
            metadata=merged_metadata(metadata, adapter),
            options=dict(adapter.options),
        )
        ref = InputRef(part=self._input_part(part), file_id=file_id)
        batch: Batch = self._send(client, "create").run(
            create_once(
                adapter,
                ref,
                spec,
                key=part.idempotency_key,
                since=datetime.fromtimestamp(part.intent_at or time.time(), UTC),
                policy=self.retry,
                rng=self._rng,
            )
        )
        self._checkpoint("after-create")
        self.ledger.record_batch(
            job.id,
            part.part,
            batch_id=batch.id,
            status=batch.status.value,
            provider_status=batch.provider_status,
            counts=_counts_of(batch),
        )
        self.observer.message(f"created batch {batch.id} for {label}")
        self._checkpoint("created")

    # --- 4. wait ----------------------------------------------------------------------------------

    def refresh(self, view: JobView, target: Target | None = None) -> JobView:
        """Poll every batch of the job that has not ended, once, and store what came back."""
        client = self._job_client(view.job, target)
        for part in view.parts:
            if part.batch_id and not _status(part.status).is_terminal:
                batch = self._send(client, "retrieve").retrieve(part.batch_id)
                self.record_status(view.job, part, batch)
        return self.view(view.job.id)

    def record_status(self, job: JobRecord, part: PartRecord, batch: Batch) -> None:
        """Store a batch's latest state in the ledger."""
        self.ledger.update_status(
            job.id,
            part.part,
            status=batch.status.value,
            provider_status=batch.provider_status,
            counts=_counts_of(batch),
            output_file_ids=batch.output_file_ids,
            error_file_ids=batch.error_file_ids,
        )

    def wait(
        self,
        view: JobView,
        *,
        timeout: float | None = None,
        target: Target | None = None,
    ) -> JobView:
        """Poll every batch until all have ended. Transient errors are tolerated
        (``poll.max_consecutive_errors`` in a row): a failed poll is never a failed batch."""
        client = self._job_client(view.job, target)
        poll = self.poll
        delay = poll.initial
        errors = 0
        start = self._clock()
        self.observer.waiting(view)
        try:
            while True:
                for part in view.parts:
                    if not part.batch_id or _status(part.status).is_terminal:
                        continue
                    try:
                        batch = self._send(client, "retrieve").retrieve(part.batch_id)
                    except (ProviderConnectionError, ProviderServerError, RateLimitError) as exc:
                        errors += 1
                        if errors > poll.max_consecutive_errors:
                            raise
                        log.info("status poll failed (%s); retrying", exc)
                        continue
                    errors = 0
                    self.record_status(view.job, part, batch)
                    self._checkpoint("poll")
                view = self.view(view.job.id)
                self.observer.progress(view)
                if view.ended or not view.created:
                    return view
                elapsed = self._clock() - start
                if timeout is not None and elapsed + delay > timeout:
                    pending = next(p for p in view.parts if not _status(p.status).is_terminal)
                    raise WaitTimeoutError(
                        f"job {view.id} still {view.status} after {elapsed:.1f}s",
                        batch=_placeholder_batch(pending, client.adapter.name),
                        provider=client.adapter.name,
                    )
                self._sleep(delay)
                delay = min(delay * poll.multiplier, poll.maximum)
        finally:
            self.observer.waited(view)

    # --- 5. collect -------------------------------------------------------------------------------

    def collect(
        self,
        view: JobView,
        output: Path,
        *,
        target: Target | None = None,
        format: str = "omnibatch",
    ) -> tuple[JobView, OutputSummary]:
        """Download every part's results and write OUTPUT: one line per input custom id, in
        input order (see :func:`~omnibatch.results.write_output` for big parts), normalized
        or (``format="openai"``) as OpenAI's batch output file. Then delete the uploaded input
        files (unless ``keep_files``)."""
        job = view.job
        if not view.ended:
            raise BatchStateError(
                f"job {job.id} is {view.status}; results exist once every batch has ended: "
                f"run `omnibatch wait {job.id}` first"
            )
        client = self._job_client(job, target)
        self.ledger.set_phase(job.id, "collecting", output_path=str(output))
        parts: list[PartResults] = []
        for part in view.parts:
            assert part.batch_id is not None
            self._checkpoint("before-download")
            batch, fetched = self._send(client, "download").run(
                fetch_results(client.adapter, part.batch_id)
            )
            self.record_status(job, part, batch)
            self.ledger.record_results(
                job.id,
                part.part,
                [
                    {
                        "kind": f.source.kind,
                        "name": f.source.name,
                        "path": str(f.path) if f.path else None,
                    }
                    for f in fetched
                ],
            )
            for role, ids in (("output", batch.output_file_ids), ("error", batch.error_file_ids)):
                for file_id in ids:
                    self.ledger.add_file(job.id, part.part, role, file_id, "kept")
            self._checkpoint("downloaded")
            parts.append(
                PartResults(
                    client.adapter, part.batch_id, part.ids_path, fetched, batch_status=batch.status
                )
            )
        self._checkpoint("before-output")
        output.parent.mkdir(parents=True, exist_ok=True)
        summary = write_output(parts, output, output_format=format)
        self._checkpoint("output-written")
        if not self.keep_files:
            self._delete_inputs(client, job)
        self.ledger.set_phase(job.id, "done", output_path=str(output), summary=vars(summary))
        self._checkpoint("done")
        return self.view(job.id), summary

    def _delete_inputs(self, client: BatchClient, job: JobRecord) -> None:
        if not client.adapter.capabilities.delete_files:
            return
        for record in self.ledger.files(job.id):
            if record.role == "input" and record.state == "uploaded" and record.file_id:
                try:
                    self._delete_file(client, job.id, record.part, record.name, record.file_id)
                except ProviderError as exc:
                    log.warning("could not delete input file %s: %s", record.file_id, exc)

    def _delete_file(
        self, client: BatchClient, job_id: str, part: int, name: str, file_id: str
    ) -> None:
        with contextlib.suppress(NotFoundError):  # deleted before a crash: nothing left to do
            self._send(client, "delete").delete_file(file_id)
        self._checkpoint("delete-answered")
        self.ledger.set_file_state(job_id, part, name, "deleted", file_id)

    # --- other verbs ------------------------------------------------------------------------------

    def cancel(self, view: JobView, target: Target | None = None) -> JobView:
        """Ask the provider to cancel every batch of the job that has not ended."""
        client = self._job_client(view.job, target)
        for part in view.parts:
            if part.batch_id and not _status(part.status).is_terminal:
                try:
                    batch = self._send(client, "cancel").cancel(part.batch_id)
                except ConflictError:
                    # Too late for this one (finalizing or ended): record where it is.
                    batch = self._send(client, "retrieve").retrieve(part.batch_id)
                    self.record_status(view.job, part, batch)
                    self.observer.message(
                        f"batch {batch.id} is {batch.status} ({batch.provider_status}); it can "
                        "no longer be cancelled"
                    )
                    continue
                self.record_status(view.job, part, batch)
                self.observer.message(f"cancel requested for batch {batch.id} ({batch.status})")
        self.ledger.note(view.job.id, "cancel-requested")
        return self.view(view.job.id)

    def run(
        self,
        input_path: Path,
        output: Path | None,
        target: Target,
        options: JobOptions,
        *,
        new: bool = False,
        wait: bool = True,
        format: str = "omnibatch",
    ) -> RunResult:
        """The whole job: open (or resume), prepare, submit, and unless ``wait`` is False, wait
        and collect into ``output`` (in ``format``: ``omnibatch`` or ``openai``)."""
        view, resumed = self.open(input_path, target, options, new=new, output=output)
        self.current = view
        with self.ledger.lock(view.job):
            view = self.view(view.id)
            if resumed:
                self.observer.message(f"resuming job {view.id} ({view.status})")
            view = self.prepare(view, target)
            if not view.created:
                view = self.submit(view, target)
            if not wait:
                return RunResult(view, resumed)
            if not view.ended:
                view = self.wait(view, target=target)
            if output is None:
                return RunResult(view, resumed)
            view, summary = self.collect(view, output, target=target, format=format)
            return RunResult(view, resumed, output, summary)


def _placeholder_batch(part: PartRecord, provider: str) -> Batch:
    """The last state the ledger has of a part, as a Batch (for WaitTimeoutError)."""
    from omnibatch.models import RequestCounts

    return Batch(
        id=part.batch_id or "",
        provider=provider,
        status=_status(part.status),
        provider_status=part.provider_status or "unknown",
        request_counts=RequestCounts(**{k: int(v) for k, v in part.counts.items()}),
    )


def spool_stdin(directory: Path) -> Path:
    """Copy standard input to a file under ``directory`` (a job needs a re-readable input)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="stdin-", suffix=".jsonl", dir=directory)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out)
    return Path(name)
