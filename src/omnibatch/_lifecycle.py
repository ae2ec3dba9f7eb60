"""The batch lifecycle, written once as flows that both clients drive.

Adapter flows translate single operations; these compose them: create without ever creating
twice, wait with backoff and progress, fetch result files. They run inside
:func:`omnibatch._http.with_http`, so every HTTP request already has retries.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from omnibatch._exceptions import (
    BatchStateError,
    ConfigurationError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    RateLimitError,
    WaitTimeoutError,
)
from omnibatch._http import RetryPolicy
from omnibatch._status import BatchStatus
from omnibatch.adapter import CreateSpec, InputRef, ProviderAdapter, ResultSource
from omnibatch.flows import Flow, HttpResponse, Sleep
from omnibatch.models import Batch

__all__ = [
    "IDEMPOTENCY_KEY",
    "PollPolicy",
    "create_once",
    "fetch_results",
    "find_by_key",
    "new_idempotency_key",
    "wait_flow",
]

IDEMPOTENCY_KEY = "omnibatch_idempotency_key"
"""Metadata key under which every create carries its idempotency key."""

# How far back (before the create call) a reconciling listing looks, to allow for clock skew.
_RECONCILE_SLACK = timedelta(minutes=10)


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
    """Look through the provider's batches, newest first, for one carrying ``key``.

    Stops at the first batch created well before ``since`` (the listing is newest first), so
    it reaches back as far as needed, not a fixed number of batches.
    """
    cursor: str | None = None
    floor = since - _RECONCILE_SLACK if since else None
    for _ in range(max_pages):
        page = yield from adapter.list_batches(
            cursor=cursor, limit=100, filters={"metadata": {IDEMPOTENCY_KEY: key}}
        )
        for batch in page.items:
            if batch.metadata.get(IDEMPOTENCY_KEY) == key:
                return batch
            if floor and batch.created_at and batch.created_at < floor:
                return None
        if not page.next_cursor:
            return None
        cursor = page.next_cursor
    return None


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


def wait_flow(
    adapter: ProviderAdapter,
    batch_id: str,
    *,
    poll: PollPolicy,
    clock: Callable[[], float],
    timeout: float | None,
    on_progress: Callable[[Batch], Any] | None,
) -> Flow[Batch]:
    """Poll until the batch is terminal. A failed poll is never a failed batch: transient errors
    are tolerated up to ``poll.max_consecutive_errors`` in a row."""
    start = clock()
    delay = poll.initial
    errors = 0
    last: Batch | None = None
    while True:
        try:
            batch: Batch = yield from adapter.retrieve(batch_id)
        except ProviderError as exc:
            if isinstance(exc, ProviderConnectionError | ProviderServerError | RateLimitError):
                errors += 1
                if errors > poll.max_consecutive_errors:
                    raise
            else:
                raise
        else:
            errors = 0
            last = batch
            if on_progress is not None:
                on_progress(batch)
            if batch.status.is_terminal:
                return batch
        elapsed = clock() - start
        if timeout is not None and elapsed + delay > timeout and elapsed + 1e-3 < timeout:
            delay = timeout - elapsed  # one last poll when the timeout is up, not before
        elif timeout is not None and elapsed + delay > timeout:
            if last is None:
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
                f"batch {batch_id} still {last.status} after {elapsed:.1f}s",
                batch=last,
                provider=adapter.name,
            )
        yield Sleep(delay)
        delay = min(delay * poll.multiplier, poll.maximum)


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
