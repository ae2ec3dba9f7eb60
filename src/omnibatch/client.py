"""``BatchClient`` and ``AsyncBatchClient``: the same verbs, sync and async.

Both resolve the provider through the plugin registry and drive the same flows
(:mod:`omnibatch._lifecycle` and the adapter's); they differ only in how they send HTTP requests
and sleep.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx

from omnibatch._exceptions import BatchError, ConfigurationError, UnsupportedOperationError
from omnibatch._http import AsyncSender, RetryPolicy, SyncSender, with_http
from omnibatch._lifecycle import (
    FetchedSource,
    PollPolicy,
    create_once,
    fetch_results,
    merged_metadata,
    new_idempotency_key,
    wait_flow,
)
from omnibatch.adapter import CreateSpec, InputPart, InputRef, ProviderAdapter
from omnibatch.config import FileConfig, ProviderSettings, load_config, resolve_provider
from omnibatch.flows import Flow, HttpRequest, Sleep
from omnibatch.models import Batch, BatchResult, Page

if TYPE_CHECKING:  # imported when used: they are not needed to create a client
    from omnibatch.pipeline import InputSource, PreparedInput
    from omnibatch.results import OutputSummary

__all__ = ["AsyncBatchClient", "BatchClient", "ResultSet", "adapter_for", "make_adapter"]

log = logging.getLogger("omnibatch")
T = TypeVar("T")
FileIds = list[str]  # spelled once here: inside the clients, ``list`` is the listing verb


def make_adapter(
    provider: str | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    options: Mapping[str, Any] | None = None,
    config: FileConfig | str | Path | None = None,
) -> tuple[ProviderAdapter, ProviderSettings]:
    """Build the adapter for ``provider`` (or the configured one) with resolved settings (see
    :func:`omnibatch.config.resolve_provider`)."""
    file_config = config if isinstance(config, FileConfig) else load_config(config)
    settings = resolve_provider(
        provider, api_key=api_key, base_url=base_url, options=options, config=file_config
    )
    return adapter_for(settings), settings


def adapter_for(settings: ProviderSettings) -> ProviderAdapter:
    """The adapter for resolved settings."""
    from omnibatch._plugins import get_registry

    cls = get_registry().provider(settings.provider)
    return cls(api_key=settings.api_key, base_url=settings.base_url, options=settings.options)


class ResultSet:
    """The results of one batch: iterate it for :class:`BatchResult` objects, read lazily from
    the downloaded files (each custom id once; expected ids never seen come last as
    ``missing_result`` errors)."""

    def __init__(
        self,
        adapter: ProviderAdapter,
        batch: Batch,
        fetched: list[FetchedSource],
        expected_ids: Iterable[str] | None,
    ) -> None:
        self.batch = batch
        self.sources = fetched
        self._adapter = adapter
        self._expected = expected_ids

    def __iter__(self) -> Iterator[BatchResult]:
        from omnibatch.results import iter_batch_results

        return iter_batch_results(
            self._adapter,
            self.sources,
            batch_id=self.batch.id,
            expected_ids=self._expected,
            batch_status=self.batch.status,
        )

    def by_custom_id(self) -> dict[str, BatchResult]:
        """All results in a dict (convenient for small batches)."""
        return {result.custom_id: result for result in self}

    def write(
        self,
        path: str | Path,
        *,
        format: str = "omnibatch",
    ) -> OutputSummary:
        """Write every result to ``path``, a line each, in the order the provider's files give
        them: the normalized lines (``format="omnibatch"``, what ``omnibatch run`` writes), or
        OpenAI's batch output file (``format="openai"``) with every answer as a
        ``chat.completion`` (or embeddings list) body."""
        import orjson

        from omnibatch._answers import OUTPUT_FORMATS, openai_line
        from omnibatch.results import OutputSummary

        if format not in OUTPUT_FORMATS:
            raise ConfigurationError(
                f"unknown output format {format!r}: use one of {', '.join(OUTPUT_FORMATS)}"
            )
        created = int(time.time())
        summary = OutputSummary()
        out = Path(path)
        tmp = out.with_name(out.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                for result in self:
                    summary.count(result)
                    line = result.to_output_line()
                    if format == "openai":
                        line = openai_line(line, created)
                    fh.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        return summary


class _BaseBatchClient:
    """Configuration, adapter resolution and the pure parts shared by both clients."""

    def __init__(
        self,
        provider: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        options: Mapping[str, Any] | None = None,
        config: FileConfig | str | Path | None = None,
        adapter: ProviderAdapter | None = None,
        timeout: float | httpx.Timeout = 60.0,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        workdir: str | Path | None = None,
        seed: int | None = None,
    ) -> None:
        if adapter is None:
            adapter, settings = make_adapter(
                provider, api_key=api_key, base_url=base_url, options=options, config=config
            )
            self.settings: ProviderSettings | None = settings
        else:
            self.settings = None
        self.adapter = adapter
        self.provider = adapter.name
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollPolicy()
        self._clock = clock
        self._rng = random.Random(seed)
        self._timeout = timeout
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="omnibatch-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A client never closed (no ``with``, no close()) still removes its temporary folder
        # when it is garbage collected or the interpreter exits.
        self._workdir_finalizer = (
            weakref.finalize(self, shutil.rmtree, self.workdir, ignore_errors=True)
            if self._own_workdir
            else None
        )
        self._prepared = 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, base_url={self.adapter.base_url!r})"
        )

    def _http_flow(self, flow: Flow[T]) -> Flow[T]:
        return with_http(flow, self.adapter, self.retry, self._rng)

    def prepare(
        self,
        source: InputSource,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        max_requests: int | None = None,
        max_bytes: int | None = None,
        split: bool = False,
        generate_ids: bool | None = None,
    ) -> PreparedInput:
        """Validate and translate an input for this provider (local; nothing is sent). A file's
        line without ``custom_id`` is a problem unless ``generate_ids``; request objects get
        generated ids unless ``generate_ids=False``."""
        from omnibatch.pipeline import prepare_input

        self._prepared += 1
        prepared = prepare_input(
            source,
            self.adapter,
            self.workdir / f"input-{self._prepared:04d}",
            endpoint=endpoint,
            model=model,
            max_requests=max_requests,
            max_bytes=max_bytes,
            split=split,
            generate_ids=generate_ids,
        )
        for warning in prepared.warnings:  # a model the provider does not list
            log.warning("%s", warning)
        return prepared

    def _spec(
        self,
        prepared_endpoint: str,
        model: str | None,
        completion_window: str,
        metadata: Mapping[str, str] | None,
        options: Mapping[str, Any] | None,
    ) -> CreateSpec:
        return CreateSpec(
            endpoint=prepared_endpoint,
            model=model,
            completion_window=completion_window,
            metadata=merged_metadata(metadata, self.adapter),
            options={**self.adapter.options, **(options or {})},
        )

    def _submit_flow(
        self,
        prepared: PreparedInput,
        *,
        model: str | None,
        completion_window: str,
        metadata: Mapping[str, str] | None,
        options: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> Flow[Batch]:
        part = prepared.parts[0]
        spec = self._spec(
            prepared.endpoint, model or part.model, completion_window, metadata, options
        )
        ref: InputRef = yield from self.adapter.upload(part)
        since = datetime.now(UTC)
        batch: Batch = yield from create_once(
            self.adapter,
            ref,
            spec,
            key=idempotency_key or new_idempotency_key(),
            since=since,
            policy=self.retry,
            rng=self._rng,
        )
        return batch

    def _create_flow(
        self,
        input: InputRef | str,
        *,
        endpoint: str,
        model: str | None,
        completion_window: str,
        metadata: Mapping[str, str] | None,
        options: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> Flow[Batch]:
        ref = input if isinstance(input, InputRef) else InputRef(part=None, file_id=input)
        spec = self._spec(endpoint, model, completion_window, metadata, options)
        batch: Batch = yield from create_once(
            self.adapter,
            ref,
            spec,
            key=idempotency_key or new_idempotency_key(),
            since=datetime.now(UTC),
            policy=self.retry,
            rng=self._rng,
        )
        return batch

    def _cleanup_flow(self, batch_id: str) -> Flow[FileIds]:
        if not self.adapter.capabilities.delete_files:
            # Nothing stored, nothing to delete: the same code cleans up on every provider.
            yield from ()
            return []
        batch: Batch = yield from self.adapter.retrieve(batch_id)
        deleted = []
        for file_id in self.adapter.files_of(batch):
            yield from self.adapter.delete_file(file_id)
            deleted.append(file_id)
        return deleted

    def _part(self, prepared: PreparedInput | InputPart) -> InputPart:
        if isinstance(prepared, InputPart):
            return prepared
        self._check_single(prepared)
        return prepared.parts[0]

    def _check_single(self, prepared: PreparedInput) -> None:
        if len(prepared.parts) != 1:  # prepare(split=False) already refuses this; belt and braces
            raise ConfigurationError("submit() takes an input that fits one batch")

    def _close_workdir(self) -> None:
        if self._workdir_finalizer is not None:
            self._workdir_finalizer()


class BatchClient(_BaseBatchClient):
    """The synchronous client.

    >>> with BatchClient(provider="openai") as client:           # doctest: +SKIP
    ...     batch = client.submit("requests.jsonl", metadata={"description": "nightly eval"})
    ...     batch = client.wait(batch.id, on_progress=print)
    ...     for result in client.results(batch.id):
    ...         print(result.custom_id, result.status)
    """

    def __init__(
        self,
        provider: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(provider, **kwargs)
        self._own_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport, timeout=self._timeout)
        self._sender = SyncSender(self._http, self.adapter, self.workdir)
        self._sleep = sleep

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self._http.close()
        self._close_workdir()

    def run(self, flow: Flow[T]) -> T:
        """Drive a flow to completion (adapter flows get the HTTP retry policy)."""
        wrapped = self._http_flow(flow)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = wrapped.send(value) if error is None else wrapped.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            try:
                if isinstance(effect, HttpRequest):
                    value = self._sender.send(effect)
                elif isinstance(effect, Sleep):
                    self._sleep(effect.seconds)
                else:
                    raise TypeError(f"a flow yielded {effect!r}; expected HttpRequest or Sleep")
            except BatchError as exc:
                error = exc

    # --- the verbs ------------------------------------------------------------------------------

    def submit(
        self,
        source: InputSource,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        completion_window: str = "24h",
        options: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        generate_ids: bool | None = None,
    ) -> Batch:
        """Validate, translate, upload and create one batch from a JSONL file or request objects."""
        prepared = self.prepare(source, endpoint=endpoint, model=model, generate_ids=generate_ids)
        self._check_single(prepared)
        return self.run(
            self._submit_flow(
                prepared,
                model=model,
                completion_window=completion_window,
                metadata=metadata,
                options=options,
                idempotency_key=idempotency_key,
            )
        )

    def upload(self, prepared: PreparedInput | InputPart) -> InputRef:
        """Upload a prepared single-part input, or one part of a split one (no-op for inline
        providers)."""
        return self.run(self.adapter.upload(self._part(prepared)))

    def create(
        self,
        input: InputRef | str,
        *,
        endpoint: str = "/v1/chat/completions",
        model: str | None = None,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        """Create a batch from an uploaded input (an ``InputRef`` or a provider file id)."""
        return self.run(
            self._create_flow(
                input,
                endpoint=endpoint,
                model=model,
                completion_window=completion_window,
                metadata=metadata,
                options=options,
                idempotency_key=idempotency_key,
            )
        )

    def retrieve(self, batch_id: str) -> Batch:
        return self.run(self.adapter.retrieve(batch_id))

    def list_page(
        self, *, cursor: str | None = None, page_size: int | None = None, **filters: Any
    ) -> Page[Batch]:
        """One page of the provider's listing."""
        return self.run(self.adapter.list_batches(cursor=cursor, limit=page_size, filters=filters))

    def list(
        self,
        *,
        page_size: int | None = None,
        after: str | None = None,
        limit: int | None = None,
        **filters: Any,
    ) -> Iterator[Batch]:
        """Every batch, newest first, fetching pages as the iteration goes (``limit`` caps the
        number of batches, ``after`` starts after a cursor from an earlier page)."""
        cursor = after
        count = 0
        while True:
            page = self.list_page(cursor=cursor, page_size=page_size, **filters)
            for batch in page.items:
                yield batch
                count += 1
                if limit is not None and count >= limit:
                    return
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def cancel(self, batch_id: str) -> Batch:
        """Ask the provider to cancel. Raises ``UnsupportedOperationError`` before sending
        anything where the provider cannot cancel (``adapter.capabilities.cancel``)."""
        _require_cancel(self.adapter)
        return self.run(self.adapter.cancel(batch_id))

    def wait(
        self,
        batch_id: str,
        *,
        timeout: float | None = None,
        on_progress: Callable[[Batch], Any] | None = None,
        poll: PollPolicy | None = None,
    ) -> Batch:
        """Poll until the batch ends; returns it whatever the outcome (check ``status``)."""
        return self.run(
            wait_flow(
                self.adapter,
                batch_id,
                poll=poll or self.poll,
                clock=self._clock,
                timeout=timeout,
                on_progress=on_progress,
            )
        )

    def results(self, batch_id: str, *, expected_ids: Iterable[str] | None = None) -> ResultSet:
        """Download output and error files and return the results, joined to custom ids."""
        batch, fetched = self.run(fetch_results(self.adapter, batch_id))
        return ResultSet(self.adapter, batch, fetched, expected_ids)

    def download_file(self, file_id: str) -> Path:
        """Download a stored file (streamed to disk); returns the local path."""
        response = self.run(_download(self.adapter, file_id))
        assert response is not None
        return response

    def delete_file(self, file_id: str) -> None:
        self.run(self.adapter.delete_file(file_id))

    def delete_batch(self, batch_id: str) -> None:
        self.run(self.adapter.delete_batch(batch_id))

    def cleanup(self, batch_id: str) -> FileIds:
        """Delete the batch's input, output and error files; returns the deleted ids (none on a
        provider that stores no files, such as Anthropic)."""
        return self.run(self._cleanup_flow(batch_id))


class AsyncBatchClient(_BaseBatchClient):
    """The asynchronous client: the same verbs as :class:`BatchClient`, awaited."""

    def __init__(
        self,
        provider: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(provider, **kwargs)
        self._own_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=self._timeout)
        self._sender = AsyncSender(self._http, self.adapter, self.workdir)
        if sleep is None:
            import asyncio  # here, not at module level: `import asyncio` costs ~15 ms

            sleep = asyncio.sleep
        self._sleep: Callable[[float], Awaitable[None]] = sleep

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()
        self._close_workdir()

    async def run(self, flow: Flow[T]) -> T:
        """Drive a flow to completion (adapter flows get the HTTP retry policy)."""
        wrapped = self._http_flow(flow)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = wrapped.send(value) if error is None else wrapped.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            try:
                if isinstance(effect, HttpRequest):
                    value = await self._sender.send(effect)
                elif isinstance(effect, Sleep):
                    await self._sleep(effect.seconds)
                else:
                    raise TypeError(f"a flow yielded {effect!r}; expected HttpRequest or Sleep")
            except BatchError as exc:
                error = exc

    async def submit(
        self,
        source: InputSource,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        completion_window: str = "24h",
        options: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        generate_ids: bool | None = None,
    ) -> Batch:
        prepared = self.prepare(source, endpoint=endpoint, model=model, generate_ids=generate_ids)
        self._check_single(prepared)
        return await self.run(
            self._submit_flow(
                prepared,
                model=model,
                completion_window=completion_window,
                metadata=metadata,
                options=options,
                idempotency_key=idempotency_key,
            )
        )

    async def upload(self, prepared: PreparedInput | InputPart) -> InputRef:
        """Upload a prepared single-part input, or one part of a split one."""
        return await self.run(self.adapter.upload(self._part(prepared)))

    async def create(
        self,
        input: InputRef | str,
        *,
        endpoint: str = "/v1/chat/completions",
        model: str | None = None,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        return await self.run(
            self._create_flow(
                input,
                endpoint=endpoint,
                model=model,
                completion_window=completion_window,
                metadata=metadata,
                options=options,
                idempotency_key=idempotency_key,
            )
        )

    async def retrieve(self, batch_id: str) -> Batch:
        return await self.run(self.adapter.retrieve(batch_id))

    async def list_page(
        self, *, cursor: str | None = None, page_size: int | None = None, **filters: Any
    ) -> Page[Batch]:
        return await self.run(
            self.adapter.list_batches(cursor=cursor, limit=page_size, filters=filters)
        )

    async def list(
        self,
        *,
        page_size: int | None = None,
        after: str | None = None,
        limit: int | None = None,
        **filters: Any,
    ) -> AsyncIterator[Batch]:
        cursor = after
        count = 0
        while True:
            page = await self.list_page(cursor=cursor, page_size=page_size, **filters)
            for batch in page.items:
                yield batch
                count += 1
                if limit is not None and count >= limit:
                    return
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def cancel(self, batch_id: str) -> Batch:
        _require_cancel(self.adapter)
        return await self.run(self.adapter.cancel(batch_id))

    async def wait(
        self,
        batch_id: str,
        *,
        timeout: float | None = None,
        on_progress: Callable[[Batch], Any] | None = None,
        poll: PollPolicy | None = None,
    ) -> Batch:
        return await self.run(
            wait_flow(
                self.adapter,
                batch_id,
                poll=poll or self.poll,
                clock=self._clock,
                timeout=timeout,
                on_progress=on_progress,
            )
        )

    async def results(
        self, batch_id: str, *, expected_ids: Iterable[str] | None = None
    ) -> ResultSet:
        batch, fetched = await self.run(fetch_results(self.adapter, batch_id))
        return ResultSet(self.adapter, batch, fetched, expected_ids)

    async def download_file(self, file_id: str) -> Path:
        response = await self.run(_download(self.adapter, file_id))
        assert response is not None
        return response

    async def delete_file(self, file_id: str) -> None:
        await self.run(self.adapter.delete_file(file_id))

    async def delete_batch(self, batch_id: str) -> None:
        await self.run(self.adapter.delete_batch(batch_id))

    async def cleanup(self, batch_id: str) -> FileIds:
        return await self.run(self._cleanup_flow(batch_id))


def _download(adapter: ProviderAdapter, file_id: str) -> Flow[Path | None]:
    response = yield replace(adapter.download_file(file_id), stream=True)
    path: Path | None = response.path
    return path


def _require_cancel(adapter: ProviderAdapter) -> None:
    """The documented answer of a provider without cancel: a clear error, nothing sent."""
    if not adapter.capabilities.cancel:
        raise UnsupportedOperationError(
            f"{adapter.name} batches cannot be cancelled (the provider has no cancel "
            "operation): a submitted batch runs until it ends or expires",
            provider=adapter.name,
        )
