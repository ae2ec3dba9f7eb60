"""The job runner: takes a job through the lifecycle, writing every step to the ledger.

A *job* is one input run through one provider with one set of options. :class:`JobRunner` takes
it through the lifecycle, writing every step to the :class:`~omnibatch.ledger.Ledger` before or
after it happens:

1. open: find the job by its identity, or record it, under the job's lock (one process per job);
2. prepare: validate, translate and split the input (``omnibatch.pipeline.prepare_input``);
3. per part, upload: record the upload's unique file name, upload, record the file id;
4. per part, create: write the intent row (an idempotency key derived from the job's identity,
   carried in the batch metadata), create with :func:`omnibatch._lifecycle.create_once`, record
   the batch id;
5. wait for every part with one progress display (:func:`omnibatch._lifecycle.wait_many`);
6. collect: download result files (resumable), write OUTPUT with one line per input custom id,
   delete the uploaded input files.

Run it again after a crash and each step resumes from the ledger: an intent without a batch id
is reconciled by listing the provider's batches for its key (the batch is reattached, not created
again), and an upload without a file id is looked up by its unique file name (reused, or deleted
if another upload already took its place). The provider's HTTP work is the lifecycle's flows;
this module only decides, from the ledger, which flow to run next.

Tests pass a ``checkpoint`` callable (see :mod:`omnibatch.testing.crash`) that the runner calls
at each named step, and every HTTP request carries the operation it belongs to in its
``omnibatch.operation`` extension.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from omnibatch._exceptions import (
    BatchStateError,
    ConfigurationError,
    ConflictError,
    InputValidationError,
    NotFoundError,
    ProviderError,
    SubmissionUnknownError,
    UnsupportedOperationError,
    WaitTimeoutError,
)
from omnibatch._http import RetryPolicy
from omnibatch._lifecycle import (
    FetchedSource,
    PollPolicy,
    can_reconcile,
    create_once,
    fetch_results,
    find_by_key,
    find_by_keys,
    find_files,
    merged_metadata,
    upload_once,
    wait_many,
)
from omnibatch.adapter import CreateSpec, InputPart, InputRef, ProviderAdapter, ResultSource
from omnibatch.config import (
    EMBEDDED_KEY_SOURCE,
    EMULATOR_KEY_SOURCE,
    EMULATOR_URL_ENV,
    FileConfig,
    ProviderSettings,
    embedded_settings,
    emulator_key,
    load_config,
    resolve_provider,
)
from omnibatch.jobs.inputs import override_model
from omnibatch.jobs.model import (
    JOB_METADATA_KEY,
    JobObserver,
    JobOptions,
    JobView,
    RunResult,
    counts_of,
    hash_file,
    job_key,
    part_key,
    status_of,
)
from omnibatch.ledger import (
    JobRecord,
    Ledger,
    NewPart,
    PartRecord,
    damage_error,
    safe_url,
    writing,
)
from omnibatch.models import Batch
from omnibatch.pipeline import prepare_input
from omnibatch.results import OutputSummary, PartResults, write_output

if TYPE_CHECKING:
    from omnibatch.client import BatchClient

__all__ = ["OPERATION_EXTENSION", "Checkpoint", "JobRunner", "purge_job_files"]

log = logging.getLogger("omnibatch")

Checkpoint = Callable[[str], None]
"""Called with a step's name each time the runner reaches it (a test hook)."""

OPERATION_EXTENSION = "omnibatch.operation"
"""The request extension naming the runner operation a request belongs to (upload, create, ...)."""


class JobRunner:
    """Runs jobs recorded in ``ledger``.

    ``transport`` replaces the network (an emulator's ``MockTransport`` in tests); ``poll`` and
    ``retry`` tune waiting and HTTP retries; ``clock`` and ``sleep`` drive the polling loop;
    ``checkpoint`` is called at each named step (a test hook); ``keep_files`` keeps the
    uploaded inputs at the provider; ``keep_data`` keeps the job's working files on disk
    (otherwise only what a resume needs is kept, and nothing once the job is done).
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
        checkpoint: Checkpoint | None = None,
        keep_files: bool = False,
        keep_data: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ledger = ledger
        self.config = config if config is not None else load_config()
        self.observer = observer or JobObserver()
        self.poll = poll or PollPolicy()
        self.retry = retry or RetryPolicy()
        self.keep_files = keep_files
        self.keep_data = keep_data
        self.strict = False
        """Refuse an input whose models do not look like the provider's (``--strict``)."""
        self._clock = clock
        self._sleep = sleep
        self._checkpoint_hook = checkpoint
        self._operation = "request"
        self._http = httpx.Client(
            transport=transport, timeout=timeout, event_hooks={"request": [self._tag]}
        )
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
        if self._checkpoint_hook is not None:
            self._checkpoint_hook(point)

    def _tag(self, request: httpx.Request) -> None:
        request.extensions = {**request.extensions, OPERATION_EXTENSION: self._operation}

    def _send(self, client: BatchClient, operation: str) -> BatchClient:
        self._operation = operation  # labels the HTTP checkpoints of the next requests
        return client

    # --- where a job runs ------------------------------------------------------------------------

    def resolve(self, provider: str | None) -> ProviderSettings:
        """The provider settings for a new job (see :func:`omnibatch.config.resolve_provider`)."""
        return resolve_provider(provider, config=self.config)

    def embedded(self, root_url: str) -> ProviderSettings:
        """The settings of an emulator this process serves at ``root_url``."""
        return embedded_settings(root_url)

    def settings_for(self, job: JobRecord) -> ProviderSettings:
        """Where an existing job runs: its provider and recorded base URL, with the key found
        in this process's environment or config (or the emulator's, if it ran on one)."""
        if job.embedded:
            raise BatchStateError(
                f"job {job.id} ran on an embedded emulator that ended with its process; its "
                "batches are gone. Run the same command again to start a fresh job."
            )
        placeholder = job.key_source in (EMULATOR_KEY_SOURCE, EMBEDDED_KEY_SOURCE)
        try:
            current: ProviderSettings | None = self.resolve(job.provider)
        except ConfigurationError:
            if not placeholder:
                raise
            current = None
        if current is not None and safe_url(current.base_url) == job.base_url:
            return current  # same place: keep the full configured URL
        default_url = self._adapter_cls(job.provider).default_base_url
        if current is not None and not placeholder:
            if current.emulated:  # never report an emulator for a job that ran elsewhere
                raise ConfigurationError(
                    f"job {job.id} ran on {job.base_url or default_url}, not on the emulator "
                    f"{current.base_url} that ${EMULATOR_URL_ENV} names: unset it to reach the job",
                    provider=job.provider,
                )
            return replace(current, base_url=job.base_url or default_url)
        return ProviderSettings(
            provider=job.provider,
            base_url=job.base_url or default_url,
            api_key=emulator_key(),
            options=current.options if current else {},
            emulated=True,
            sources={
                "provider": "the ledger",
                "base_url": "the ledger",
                "api_key": EMULATOR_KEY_SOURCE,
            },
        )

    def client_for(self, settings: ProviderSettings, workdir: Path) -> BatchClient:
        """One client per (base URL, download directory), sharing this runner's connections."""
        from omnibatch.client import BatchClient, adapter_for

        key = (settings.base_url, str(workdir))
        client = self._clients.get(key)
        if client is None:
            client = BatchClient(
                adapter=adapter_for(settings),
                http_client=self._http,
                workdir=workdir,
                retry=self.retry,
                poll=self.poll,
                clock=self._clock,
                sleep=self._sleep,
            )
            self._clients[key] = client
        return client

    def _job_client(self, job: JobRecord, settings: ProviderSettings | None = None) -> BatchClient:
        return self.client_for(settings or self.settings_for(job), job.workdir / "downloads")

    # --- reading the ledger -----------------------------------------------------------------------

    def view(self, job: JobRecord | str) -> JobView:
        job_id = job if isinstance(job, str) else job.id
        record = self.ledger.job(job_id)
        return JobView(record, tuple(self.ledger.parts(record.id)))

    # --- 1. open and prepare ----------------------------------------------------------------------

    def open(
        self,
        input_path: Path,
        target: ProviderSettings,
        options: JobOptions,
        *,
        new: bool = False,
        output: Path | None = None,
    ) -> tuple[JobView, bool]:
        """The job for this input, target and options: the latest one recorded (resumed) unless
        ``new`` or the target is an embedded emulator, else a new one. Returns (job, resumed)."""
        input_path = input_path.resolve()
        input_hash = hash_file(input_path)
        if target.embedded:
            self._abandon_embedded()
        job, created = self.ledger.open_job(
            job_key=job_key(input_hash, target, options),
            provider=target.provider,
            base_url=target.base_url,
            key_source=target.key_source,
            embedded=target.embedded,
            input_path=str(input_path),
            input_hash=input_hash,
            options=options.as_dict(),
            output_path=str(output) if output else None,
            new=new or target.embedded,
        )
        if created:
            return self.view(job), False
        self.ledger.note(job.id, "resumed")
        if output is not None and job.phase != "done":  # a done job keeps the OUTPUT it wrote
            self.ledger.set_phase(job.id, job.phase, output_path=str(output))
        return self.view(job), True

    def _abandon_embedded(self) -> None:
        """Embedded-emulator jobs left unfinished by earlier processes can never resume."""
        for job in self.ledger.list_jobs():
            if job.embedded and job.phase not in ("done", "abandoned"):
                try:
                    with self.ledger.lock(job):
                        self.ledger.set_phase(job.id, "abandoned")
                        purge_job_files(job, keep_ids=False)  # nothing there can be used
                except BatchStateError:
                    continue  # still running in another process

    def prepare(self, view: JobView, target: ProviderSettings) -> JobView:
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
            with writing(parts_dir):
                prepared = prepare_input(
                    source,
                    adapter,
                    parts_dir,
                    model=options.model,
                    max_requests=options.max_requests_per_batch,
                    split=True,
                    generate_ids=options.generate_ids,
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

    def submit(self, view: JobView, target: ProviderSettings | None = None) -> JobView:
        """Upload and create every part that has no batch yet (resuming where a crash left).

        Before a part's first upload, the provider's newest batches are searched (one listing
        for the whole job) for the part's idempotency key: a job whose ledger was lost finds
        the batches an earlier run created instead of paying for them again."""
        job = view.job
        client = self._job_client(job, target)
        options = JobOptions.from_dict(job.options)
        total = len(view.parts)
        existing = self._earlier_batches(client, job, view)
        for part in view.parts:
            if part.batch_id:
                continue
            label = f"part {part.part + 1}/{total}"
            found = existing.get(part.idempotency_key or part_key(job.identity, part.part))
            if found is not None and part.idempotency_key is None:
                self._reattach(
                    job, part, found, f"found batch {found.id} for {label} at the provider"
                )
                continue
            file_id = self._upload(client, job, part, total)
            self._create(client, job, self.ledger.part(job.id, part.part), file_id, options, total)
        self.ledger.set_phase(job.id, "running")
        return self.view(job.id)

    def _earlier_batches(
        self, client: BatchClient, job: JobRecord, view: JobView
    ) -> dict[str, Batch]:
        """Batches at the provider carrying the keys of parts that have no intent yet."""
        keys = [part_key(job.identity, p.part) for p in view.parts if p.idempotency_key is None]
        if not keys or not can_reconcile(client.adapter):
            return {}
        found: dict[str, Batch] = self._send(client, "list").run(
            find_by_keys(client.adapter, keys, None, max_pages=1)
        )
        return found

    def _reattach(self, job: JobRecord, part: PartRecord, batch: Batch, message: str) -> None:
        self.ledger.begin_create(job.id, part.part, part_key(job.identity, part.part))
        self.ledger.record_batch(
            job.id,
            part.part,
            batch_id=batch.id,
            status=batch.status.value,
            provider_status=batch.provider_status,
            counts=counts_of(batch),
            reconciled=True,
        )
        self.observer.message(message)

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
                upload_once(
                    adapter,
                    self._input_part(part, link),
                    since=time.time() - 600,
                    policy=self.retry,
                    rng=self._rng,
                    on_duplicate=lambda file_id: self.observer.message(
                        f"deleted a duplicate upload {file_id} of {label}"
                    ),
                )
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
        try:
            found = self._send(client, "list").run(
                find_files(client.adapter, [f.name for f in pending], since)
            )
        except UnsupportedOperationError:
            log.warning(
                "%s cannot list files: an upload interrupted by a crash may remain at the "
                "provider (see docs/reliability.md)",
                client.adapter.name,
            )
            found = {}
        have = part.file_id
        for record in pending:
            file_ids = sorted(found.get(record.name, []))
            if not file_ids:
                self.ledger.set_file_state(job.id, part.part, record.name, "absent")
                continue
            if have is None:
                have = file_ids.pop(0)
                self.ledger.record_upload(job.id, part.part, record.name, have)
                self.observer.message(f"reusing {label}'s upload {have} from the earlier run")
            for file_id in file_ids:
                self._delete_file(client, job.id, part.part, record.name, file_id)
                self.observer.message(f"deleted a duplicate upload {file_id} of {label}")

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
                self._reattach(
                    job,
                    part,
                    found,
                    f"reattached batch {found.id} for {label} (created before the interruption)",
                )
                return
        else:
            part = self.ledger.begin_create(job.id, part.part, part_key(job.identity, part.part))
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
            counts=counts_of(batch),
        )
        self.observer.message(f"created batch {batch.id} for {label}")
        self._checkpoint("created")
        if not self.keep_data:
            # The batch exists: its translated copy of the input is never needed again.
            part.part_path.unlink(missing_ok=True)

    # --- 4. wait ----------------------------------------------------------------------------------

    def refresh(self, view: JobView, target: ProviderSettings | None = None) -> JobView:
        """Poll every batch of the job that has not ended, once, and store what came back."""
        client = self._job_client(view.job, target)
        for part in view.parts:
            if part.batch_id and not status_of(part.status).is_terminal:
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
            counts=counts_of(batch),
            output_file_ids=batch.output_file_ids,
            error_file_ids=batch.error_file_ids,
        )

    def wait(
        self,
        view: JobView,
        *,
        timeout: float | None = None,
        target: ProviderSettings | None = None,
    ) -> JobView:
        """Poll every batch until all have ended (:func:`omnibatch._lifecycle.wait_many`),
        storing each answer. A failed poll is never a failed batch."""
        client = self._job_client(view.job, target)
        job = view.job
        parts = {
            p.batch_id: p for p in view.parts if p.batch_id and not status_of(p.status).is_terminal
        }

        def on_batch(batch: Batch) -> None:
            part = parts.get(batch.id)
            if part is not None:
                self.record_status(job, part, batch)
                self._checkpoint("poll")

        def on_round() -> None:
            nonlocal view
            view = self.view(job.id)
            self.observer.progress(view)

        self.observer.waiting(view)
        try:
            if not view.created:
                on_round()  # nothing to wait for until every part has a batch
                return view
            self._send(client, "retrieve").run(
                wait_many(
                    client.adapter,
                    list(parts),
                    poll=self.poll,
                    clock=self._clock,
                    timeout=timeout,
                    on_batch=on_batch,
                    on_round=on_round,
                )
            )
            return self.view(job.id)
        except WaitTimeoutError as exc:
            view = self.view(job.id)
            raise WaitTimeoutError(
                f"job {job.id} still {view.status}: {exc.message}",
                batch=exc.batch,
                provider=exc.provider,
            ) from None
        finally:
            self.observer.waited(view)

    # --- 5. collect -------------------------------------------------------------------------------

    def collect(
        self,
        view: JobView,
        output: Path,
        *,
        target: ProviderSettings | None = None,
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
            with writing(job.workdir / "downloads"):
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
        with writing(output):
            output.parent.mkdir(parents=True, exist_ok=True)
            summary = write_output(parts, output, output_format=format)
        self._checkpoint("output-written")
        if not self.keep_files:
            self._delete_inputs(client, job)
        self.ledger.set_phase(job.id, "done", output_path=str(output), summary=vars(summary))
        self._checkpoint("done")
        if not self.keep_data:
            # OUTPUT holds the results. A provider's job keeps its ids files (bytes per
            # request), so `omnibatch results` can rebuild OUTPUT from the provider's files;
            # an embedded job's batches are gone, so nothing of it is useful.
            purge_job_files(job, keep_ids=not job.embedded)
        return self.view(job.id), summary

    def rewrite(
        self, view: JobView, output: Path, format: str = "omnibatch"
    ) -> OutputSummary | None:
        """Write OUTPUT of a finished job again without calling the provider: from the result
        files it downloaded, or (once those were cleaned up) from the OUTPUT it wrote when that
        is in the same ``format``. None when neither is left (then :meth:`collect` fetches the
        results again)."""
        summary = self._rewrite_from_downloads(view, output, format)
        if summary is None:
            summary = self._copy_output(view, output, format)
        if summary is not None:
            self.ledger.note(view.job.id, "output-rewritten", output=str(output))
            if view.job.phase == "done":  # the newest copy is the one to read next time
                self.ledger.set_phase(view.job.id, "done", output_path=str(output))
        return summary

    @staticmethod
    def _copy_output(view: JobView, output: Path, format: str) -> OutputSummary | None:
        job = view.job
        saved = Path(job.output_path) if job.output_path else None
        if saved is None or job.summary is None or not saved.is_file():
            return None
        if job.summary.get("format", "omnibatch") != format:
            return None  # written in the other format: collect again
        if saved.resolve() != output.resolve():
            with writing(output):
                output.parent.mkdir(parents=True, exist_ok=True)
                tmp = output.with_name(output.name + ".tmp")
                shutil.copyfile(saved, tmp)
                tmp.replace(output)
        return OutputSummary(**dict(job.summary))

    def _rewrite_from_downloads(
        self, view: JobView, output: Path, format: str
    ) -> OutputSummary | None:
        job = view.job
        adapter = self._adapter_cls(job.provider)(api_key=None, base_url=job.base_url)
        parts: list[PartResults] = []
        for part in view.parts:
            fetched = []
            for record in part.results:
                path = Path(record["path"]) if record.get("path") else None
                if path is None or not path.is_file():
                    return None
                source = ResultSource(kind=str(record["kind"]), name=str(record.get("name") or ""))
                fetched.append(FetchedSource(source, path))
            if part.batch_id is None or not fetched:
                return None
            parts.append(
                PartResults(
                    adapter,
                    part.batch_id,
                    part.ids_path,
                    fetched,
                    batch_status=status_of(part.status),
                )
            )
        with writing(output):
            output.parent.mkdir(parents=True, exist_ok=True)
            return write_output(parts, output, output_format=format)

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

    def cancel(self, view: JobView, target: ProviderSettings | None = None) -> JobView:
        """Ask the provider to cancel every batch of the job that has not ended."""
        client = self._job_client(view.job, target)
        for part in view.parts:
            if part.batch_id and not status_of(part.status).is_terminal:
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
        target: ProviderSettings,
        options: JobOptions,
        *,
        new: bool = False,
        wait: bool = True,
        format: str = "omnibatch",
    ) -> RunResult:
        """The whole job: open (or resume), prepare, submit, and unless ``wait`` is False, wait
        and collect into ``output`` (in ``format``: ``omnibatch`` or ``openai``). A full disk
        or a damaged ledger raises :class:`~omnibatch.StorageError` /
        :class:`~omnibatch.LedgerError`; what was recorded is kept, and the same call resumes."""
        try:
            return self._run(input_path, output, target, options, new=new, wait=wait, format=format)
        except (OSError, sqlite3.DatabaseError) as exc:
            damage = damage_error(exc, self.ledger.path)
            if damage is None:
                raise
            raise damage from exc

    def _run(
        self,
        input_path: Path,
        output: Path | None,
        target: ProviderSettings,
        options: JobOptions,
        *,
        new: bool,
        wait: bool,
        format: str = "omnibatch",
    ) -> RunResult:
        view, resumed = self.open(input_path, target, options, new=new, output=output)
        self.current = view
        with self.ledger.lock(view.job):
            view = self.view(view.id)
            if resumed and view.job.phase == "done" and output is not None:
                summary = self.rewrite(view, output, format)
                if summary is not None:
                    return RunResult(self.view(view.id), True, output, summary, rewritten=True)
                # Its downloads were removed when it ended (keep_data keeps them): the
                # provider still has the result files, so they are fetched again, not paid.
                ended = datetime.fromtimestamp(view.job.updated_at, UTC)
                self.observer.message(
                    f"job {view.id} finished at {ended:%Y-%m-%d %H:%M:%S} UTC; its downloaded "
                    "results were removed, so they are fetched again; --new submits again"
                )
            elif resumed:
                self.observer.message(f"resuming job {view.id} ({view.status})")
            try:
                view = self.prepare(view, target)
            except InputValidationError:
                if not resumed and not view.parts:
                    # Nothing was sent: an input that does not validate leaves no job behind.
                    self.ledger.delete_job(view.id)
                    self.current = None
                raise
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


def purge_job_files(job: JobRecord, *, keep_ids: bool) -> None:
    """Delete a job's working files: the translated input parts, uploads in flight, the
    downloaded results, and (unless ``keep_ids``) the parts' custom id lists. The lock file
    stays; the ledger keeps the job's record."""
    root = job.workdir
    for name in ("upload", "downloads"):
        shutil.rmtree(root / name, ignore_errors=True)
    (root / "input-model.jsonl").unlink(missing_ok=True)
    parts = root / "parts"
    if not keep_ids:
        shutil.rmtree(parts, ignore_errors=True)
    elif parts.is_dir():
        for path in parts.iterdir():
            if path.suffix != ".ids":
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
