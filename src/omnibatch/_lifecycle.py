"""The batch lifecycle, written once as flows that both clients drive.

Adapter flows translate single operations; these compose them: create without ever creating
twice, wait with backoff and progress, fetch result files. They run inside
:func:`omnibatch._http.with_http`, so every HTTP request already has retries.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from omnibatch._exceptions import (
    BatchStateError,
    ConfigurationError,
    ProviderConnectionError,
    ProviderServerError,
    RateLimitError,
    UnsupportedOperationError,
    WaitTimeoutError,
)
from omnibatch._http import RetryPolicy
from omnibatch._status import BatchStatus
from omnibatch.adapter import CreateSpec, InputPart, InputRef, ProviderAdapter, ResultSource
from omnibatch.flows import Flow, HttpRequest, HttpResponse, Sleep
from omnibatch.models import Batch

__all__ = [
    "IDEMPOTENCY_KEY",
    "PollPolicy",
    "create_once",
    "fetch_results",
    "find_by_key",
    "find_by_keys",
    "find_files",
    "new_idempotency_key",
    "upload_once",
    "wait_flow",
    "wait_many",
]

T = TypeVar("T")

IDEMPOTENCY_KEY = "omnibatch_idempotency_key"
"""Metadata key under which every create carries its idempotency key."""

# How far back (before the create call) a reconciling listing looks, to allow for clock skew.
_RECONCILE_SLACK = timedelta(hours=24)


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class PollPolicy:
    """How ``wait`` polls: every ``initial`` seconds at first, growing by ``multiplier`` up to
    ``maximum``; ``max_consecutive_errors`` failed polls in a row end the wait."""

    initial: float = 1.0
    multiplier: float = 1.5
    maximum: float = 60.0
    max_consecutive_errors: int = 5


def carries_key(adapter: ProviderAdapter) -> bool:
    caps = adapter.capabilities
    return caps.metadata or caps.idempotency_key


def can_reconcile(adapter: ProviderAdapter) -> bool:
    return carries_key(adapter) and adapter.capabilities.list_batches


def find_by_key(
    adapter: ProviderAdapter, key: str, since: datetime | None, max_pages: int = 1000
) -> Flow[Batch | None]:
    """The provider's batch carrying idempotency key ``key`` (see :func:`find_by_keys`)."""
    found = yield from find_by_keys(adapter, [key], since, max_pages)
    return found.get(key)


def find_by_keys(
    adapter: ProviderAdapter,
    keys: Collection[str],
    since: datetime | None,
    max_pages: int = 1000,
) -> Flow[dict[str, Batch]]:
    """Look through the provider's batches, newest first, for those carrying ``keys``.

    The listing is read until every key is found, or until a whole page predates ``since``
    by more than a day: a bound in the provider's own timestamps that a local clock hours
    off cannot cut short (the first old batch does not stop it: batches created after ours
    by other work may be older than a skewed ``since``). ``since=None`` reads ``max_pages``.
    """
    wanted = set(keys)
    found: dict[str, Batch] = {}
    cursor: str | None = None
    floor = since - _RECONCILE_SLACK if since else None
    filters: dict[str, Any] = {}
    if len(wanted) == 1:  # providers that filter by metadata answer in one page
        filters = {"metadata": {IDEMPOTENCY_KEY: next(iter(wanted))}}
    for _ in range(max_pages):
        page = yield from adapter.list_batches(cursor=cursor, limit=100, filters=filters)
        for batch in page.items:
            key = batch.metadata.get(IDEMPOTENCY_KEY)
            if key in wanted and key not in found:
                found[key] = batch
        if len(found) == len(wanted) or not page.next_cursor:
            return found
        times = [b.created_at for b in page.items if b.created_at]
        if floor and times and max(times) < floor:
            return found
        cursor = page.next_cursor
    return found


def create_once(
    adapter: ProviderAdapter,
    ref: InputRef,
    spec: CreateSpec,
    *,
    key: str,
    since: datetime | None,
    policy: RetryPolicy,
    rng: random.Random,
) -> Flow[Batch]:
    """Create a batch, never twice.

    The idempotency key goes into the batch metadata. When a create ends ambiguously (connection
    lost, timeout, 5xx: the provider may have created it), the provider's listing is searched
    for the key before anything is sent again.
    """
    reconcilable = can_reconcile(adapter)
    if carries_key(adapter):
        spec = replace(spec, metadata={**spec.metadata, IDEMPOTENCY_KEY: key})
    attempt = 1
    while True:
        try:
            batch: Batch = yield from adapter.create(ref, spec)
            return batch
        except (ProviderConnectionError, ProviderServerError) as exc:
            # 429s were already retried by the HTTP layer: they are refused, never ambiguous.
            if not reconcilable or attempt >= policy.max_attempts:
                raise
            retry_after = exc.retry_after if isinstance(exc, ProviderServerError) else None
            yield Sleep(policy.delay(attempt, rng, retry_after))
            if reconcilable:
                found = yield from find_by_key(adapter, key, since)
                if found is not None:
                    return found
            attempt += 1


def upload_once(
    adapter: ProviderAdapter,
    part: InputPart,
    *,
    since: float,
    policy: RetryPolicy,
    rng: random.Random,
    on_duplicate: Callable[[str], Any] | None = None,
) -> Flow[InputRef]:
    """Upload a part whose file name (``part.path.name``) no other upload has, never leaving a
    second copy behind.

    The upload is never resent blindly: after an ambiguous failure (connection lost, timeout,
    5xx: the provider may have stored it) the provider's file listing is searched for the name
    first. A stored copy is used; any further copies are deleted (``on_duplicate`` hears of
    each). A provider that cannot list files gets the upload again, as its adapter allows.
    """
    name = part.path.name
    attempt = 1
    while True:
        try:
            ref: InputRef = yield from _not_resent(adapter.upload(part))
            return ref
        except (ProviderConnectionError, ProviderServerError):
            if attempt >= policy.max_attempts:
                raise
            yield Sleep(policy.delay(attempt, rng))
            try:
                found = (yield from find_files(adapter, [name], since)).get(name, [])
            except UnsupportedOperationError:
                found = []
            if found:
                keep, *extra = sorted(found)
                for file_id in extra:
                    yield from adapter.delete_file(file_id)
                    if on_duplicate is not None:
                        on_duplicate(file_id)
                return InputRef(part=part, file_id=keep)
            attempt += 1


def _not_resent(flow: Flow[T]) -> Flow[T]:
    """``flow`` with each of its requests marked not safe to repeat (the caller reconciles)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        if isinstance(effect, HttpRequest):
            effect = replace(effect, idempotent=False)
        try:
            value, error = (yield effect), None
        except BaseException as exc:
            value, error = None, exc


def wait_flow(
    adapter: ProviderAdapter,
    batch_id: str,
    *,
    poll: PollPolicy,
    clock: Callable[[], float],
    timeout: float | None,
    on_progress: Callable[[Batch], Any] | None,
) -> Flow[Batch]:
    """Poll until the batch is terminal (see :func:`wait_many`)."""
    done = yield from wait_many(
        adapter, [batch_id], poll=poll, clock=clock, timeout=timeout, on_batch=on_progress
    )
    return done[batch_id]


def wait_many(
    adapter: ProviderAdapter,
    batch_ids: Sequence[str],
    *,
    poll: PollPolicy,
    clock: Callable[[], float],
    timeout: float | None,
    on_batch: Callable[[Batch], Any] | None = None,
    on_round: Callable[[], Any] | None = None,
) -> Flow[dict[str, Batch]]:
    """Poll every batch until all are terminal, with one backoff for all; returns the last state
    of each. A failed poll is never a failed batch: transient errors are tolerated up to
    ``poll.max_consecutive_errors`` in a row. ``on_batch`` sees each answer, ``on_round`` runs
    after each polling round."""
    start = clock()
    delay = poll.initial
    errors = 0
    last: dict[str, Batch] = {}
    pending = list(dict.fromkeys(batch_ids))
    while True:
        for batch_id in list(pending):
            try:
                batch: Batch = yield from adapter.retrieve(batch_id)
            except (ProviderConnectionError, ProviderServerError, RateLimitError):
                errors += 1
                if errors > poll.max_consecutive_errors:
                    raise
                continue
            errors = 0
            last[batch_id] = batch
            if on_batch is not None:
                on_batch(batch)
            if batch.status.is_terminal:
                pending.remove(batch_id)
        if on_round is not None:
            on_round()
        if not pending:
            return last
        elapsed = clock() - start
        if timeout is not None and elapsed + delay > timeout and elapsed + 1e-3 < timeout:
            delay = timeout - elapsed  # one last poll when the timeout is up, not before
        elif timeout is not None and elapsed + delay > timeout:
            batch_id = pending[0]
            seen = last.get(batch_id)
            if seen is None:
                raise WaitTimeoutError(
                    f"no answer for batch {batch_id} within {timeout}s",
                    batch=Batch(
                        id=batch_id,
                        provider=adapter.name,
                        status=BatchStatus.UNKNOWN,
                        provider_status="unknown",
                    ),
                    provider=adapter.name,
                )
            raise WaitTimeoutError(
                f"batch {batch_id} still {seen.status} after {elapsed:.1f}s",
                batch=seen,
                provider=adapter.name,
            )
        yield Sleep(delay)
        delay = min(delay * poll.multiplier, poll.maximum)


def find_files(
    adapter: ProviderAdapter, names: Collection[str], since: float, max_pages: int = 1000
) -> Flow[dict[str, list[str]]]:
    """The ids of the provider's stored files named ``names`` (each name may have been stored
    more than once), looking back to ``since`` (a POSIX time). The listing is read until a whole
    newest-first page predates it, not up to the first old file, so a skewed clock cannot hide
    an upload."""
    wanted = set(names)
    found: dict[str, list[str]] = {}
    cursor: str | None = None
    for _ in range(max_pages):
        page = yield from adapter.list_files(cursor=cursor, limit=100)
        for item in page.items:
            if item.filename in wanted and item.id not in found.get(item.filename, []):
                found.setdefault(item.filename, []).append(item.id)
        if not page.next_cursor:
            return found
        times = [i.created_at.timestamp() for i in page.items if i.created_at]
        if times and max(times) < since and times == sorted(times, reverse=True):
            return found
        cursor = page.next_cursor
    return found


@dataclass(frozen=True)
class FetchedSource:
    """A result source with its downloaded file (``path``) or inline ``records``."""

    source: ResultSource
    path: Path | None


def fetch_results(
    adapter: ProviderAdapter, batch_id: str, batch: Batch | None = None
) -> Flow[tuple[Batch, list[FetchedSource]]]:
    """Retrieve the batch (unless given), check it ended, and download every result source."""
    if batch is None:
        batch = yield from adapter.retrieve(batch_id)
    if not batch.status.is_terminal:
        raise BatchStateError(
            f"batch {batch_id} is {batch.status} ({batch.provider_status}); results exist once it "
            "has ended: wait() first",
            provider=adapter.name,
        )
    sources: list[ResultSource] = yield from adapter.result_sources(batch)
    fetched: list[FetchedSource] = []
    for source in sources:
        if source.download is None:
            fetched.append(FetchedSource(source, None))
            continue
        response: HttpResponse = yield replace(source.download, stream=True)
        fetched.append(FetchedSource(source, response.path))
    return batch, fetched


def merged_metadata(metadata: Mapping[str, str] | None, adapter: ProviderAdapter) -> dict[str, str]:
    """User metadata, checked against the provider's limits."""
    data = dict(metadata or {})
    if data and not adapter.capabilities.metadata:
        raise ConfigurationError(
            f"{adapter.name} batches carry no metadata; drop metadata= for this provider",
            provider=adapter.name,
        )
    limits = adapter.limits
    if limits.max_metadata_pairs is not None and len(data) + 1 > limits.max_metadata_pairs:
        raise ConfigurationError(
            f"{adapter.name} allows {limits.max_metadata_pairs} metadata pairs, one of which "
            f"omnibatch uses for its idempotency key; got {len(data)}",
            provider=adapter.name,
        )
    for k, v in data.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ConfigurationError(f"metadata keys and values must be strings ({k!r}: {v!r})")
        if limits.max_metadata_key_length and len(k) > limits.max_metadata_key_length:
            raise ConfigurationError(
                f"metadata key {k!r} is longer than {limits.max_metadata_key_length} characters",
                provider=adapter.name,
            )
        if limits.max_metadata_value_length and len(v) > limits.max_metadata_value_length:
            raise ConfigurationError(
                f"metadata value for {k!r} is longer than {limits.max_metadata_value_length} "
                "characters",
                provider=adapter.name,
            )
    return data
