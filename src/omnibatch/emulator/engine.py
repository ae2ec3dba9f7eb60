"""The provider-neutral core: a file store and simulated batches.

A batch's state is never advanced by a background thread: it is *computed* from the
clock whenever it is looked at. With the configuration's durations ``V`` (validating),
``R`` (requests per second), ``F`` (finalizing) and ``C`` (cancelling) a batch of ``n``
requests created at ``t0`` is:

- validating during ``[t0, t0 + V)``; then ``failed`` if its input was invalid;
- running during ``[t0 + V, t0 + V + n / R)``, one more request done every ``1 / R``;
- finalizing during the next ``F`` seconds, then completed;
- expired at ``t0 + window`` if it is still validating or running then;
- cancelling for ``C`` seconds after a cancel request, then cancelled.

Requests are processed in a deterministic shuffled order, which is also the order of the
lines in the result files, so results never come back in input order.
"""

from __future__ import annotations

import enum
import math
import random
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from omnibatch.emulator.clock import Clock
from omnibatch.emulator.config import EmulatorConfig
from omnibatch.emulator.fakes import ERROR_MARKER, answer_for, stable_unit

__all__ = [
    "BatchStateConflict",
    "Engine",
    "Phase",
    "RequestRecord",
    "SimBatch",
    "SimRequest",
    "Snapshot",
    "Stats",
    "StoredFile",
    "ValidationIssue",
]


class Phase(enum.Enum):
    """Provider-neutral lifecycle phases; dialects map them to their own status names."""

    VALIDATING = "validating"
    FAILED = "failed"
    RUNNING = "running"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({Phase.FAILED, Phase.COMPLETED, Phase.EXPIRED, Phase.CANCELLED})


class BatchStateConflict(Exception):
    """The operation is not possible in the batch's current phase (e.g. cancel a
    completed batch)."""

    def __init__(self, phase: Phase, message: str) -> None:
        super().__init__(message)
        self.phase = phase


@dataclass(slots=True)
class StoredFile:
    """One stored file. ``extra`` holds dialect-specific attributes."""

    id: str
    data: bytes
    purpose: str
    filename: str
    created_at: float
    dialect: str
    expires_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(slots=True)
class ValidationIssue:
    """Why a batch input is invalid (``line`` is 1-based, ``None`` for the whole file)."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None


@dataclass(slots=True)
class SimRequest:
    """One request of a batch, as parsed by a dialect.

    ``failure`` is the HTTP status the request fails with inside the batch (``400`` for
    the ``[[emulator:error]]`` marker, ``500`` for a seeded random failure), or ``None``.
    """

    index: int
    custom_id: str | None
    body: dict[str, Any]
    raw: bytes
    line: int | None = None
    failure: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(eq=False)
class SimBatch:
    """A simulated batch. Read its state through :meth:`Engine.snapshot`."""

    id: str
    dialect: str
    endpoint: str
    created_at: float
    window: float
    requests: list[SimRequest]
    validation_errors: list[ValidationIssue]
    model: str | None = None
    input_file_ids: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    cancel_at: float | None = None
    forced_complete_at: float | None = None
    forced_expire_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    materialized: bool = False
    fail_prefix: list[int] = field(default_factory=list, repr=False)
    prompt_prefix: list[int] = field(default_factory=list, repr=False)
    completion_prefix: list[int] = field(default_factory=list, repr=False)

    @property
    def total(self) -> int:
        return len(self.requests)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A batch's state at one instant (all times simulated Unix seconds)."""

    phase: Phase
    total: int
    done: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    created_at: float
    expires_at: float
    started_at: float | None = None
    finalizing_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    expired_at: float | None = None
    cancelling_at: float | None = None
    cancelled_at: float | None = None

    @property
    def succeeded(self) -> int:
        return self.done - self.failed

    @property
    def terminal(self) -> bool:
        return self.phase.terminal

    @property
    def ended_at(self) -> float | None:
        """When the batch reached its terminal phase, if it has."""
        return self.completed_at or self.failed_at or self.expired_at or self.cancelled_at


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request seen by the emulator (the ``Authorization`` value is never kept)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    dialect: str | None
    status: int | None
    fault: str | None
    at: float


@dataclass
class Stats:
    """What the emulator has seen: ``creates`` counts batch creations per dialect."""

    creates: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    requests: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=10_000))

    def count(self, method: str | None = None, path_contains: str | None = None) -> int:
        """How many logged requests match ``method`` and contain ``path_contains``."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in r.path)
        )

    def reset(self) -> None:
        self.creates.clear()
        self.faults.clear()
        self.requests.clear()


def _prefix(values: Iterable[int]) -> list[int]:
    out = [0]
    for v in values:
        out.append(out[-1] + v)
    return out


class Engine:
    """Provider-neutral state shared by all dialects of one emulator.

    Dialects call it with the engine lock held (the :class:`Emulator` takes
    :attr:`lock` around every request), so its methods do not lock themselves.
    """

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.stats = Stats(requests=deque(maxlen=config.request_log_size))
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, SimBatch] = {}
        self._ids = random.Random(config.seed) if config.seed is not None else random.Random()
        self._seed_text = "none" if config.seed is None else str(config.seed)
        #: Goes up with every change to files or batches (a state directory saves then).
        self.revision = 0

    def ids_state(self) -> object:
        """The id generator's state (saved with the rest, so ids never repeat)."""
        return self._ids.getstate()

    def restore_ids(self, state: Any) -> None:
        self._ids.setstate(state)

    # -- time and ids -------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Move the clock forward (``ManualClock``; a ``ScaledClock`` adds an offset)."""
        self.clock.advance(seconds)

    def random_hex(self, length: int) -> str:
        return "".join(f"{self._ids.getrandbits(4):x}" for _ in range(length))

    def random_token(self, length: int) -> str:
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        return "".join(alphabet[self._ids.randrange(62)] for _ in range(length))

    def random_uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    # -- files ----------------------------------------------------------------------

    def add_file(
        self,
        file_id: str,
        data: bytes,
        *,
        purpose: str,
        filename: str,
        dialect: str,
        created_at: float | None = None,
        expires_at: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> StoredFile:
        stored = StoredFile(
            id=file_id,
            data=data,
            purpose=purpose,
            filename=filename,
            created_at=self.now() if created_at is None else created_at,
            dialect=dialect,
            expires_at=expires_at,
            extra=dict(extra or {}),
        )
        self.files[file_id] = stored
        self.revision += 1
        return stored

    def get_file(self, file_id: str, dialect: str | None = None) -> StoredFile | None:
        stored = self.files.get(file_id)
        if stored is None or (dialect is not None and stored.dialect != dialect):
            return None
        return stored

    def delete_file(self, file_id: str) -> bool:
        self.revision += 1
        return self.files.pop(file_id, None) is not None

    def list_files(self, dialect: str) -> list[StoredFile]:
        """The dialect's files, oldest first."""
        return [f for f in self.files.values() if f.dialect == dialect]

    # -- batches ------------------------------------------------------------------------

    def create_batch(
        self,
        batch_id: str,
        *,
        dialect: str,
        endpoint: str,
        requests: list[SimRequest],
        window: float,
        validation_errors: Iterable[ValidationIssue] = (),
        model: str | None = None,
        input_file_ids: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SimBatch:
        """Register a batch (counted in ``stats.creates``); requests are numbered,
        their failures and token counts decided, and their processing order drawn."""
        issues = list(validation_errors)
        if not issues:
            for req in requests:
                self._decide(endpoint, req)
        batch = SimBatch(
            id=batch_id,
            dialect=dialect,
            endpoint=endpoint,
            created_at=self.now(),
            window=window,
            requests=requests,
            validation_errors=issues,
            model=model,
            input_file_ids=list(input_file_ids),
            metadata=metadata,
            extra=dict(extra or {}),
        )
        order = list(range(len(requests)))
        if self.config.shuffle_output and len(order) > 1:
            random.Random(f"order:{batch_id}").shuffle(order)
            if order == sorted(order):
                order = order[1:] + order[:1]
        batch.order = order
        processed = [requests[i] for i in order]
        batch.fail_prefix = _prefix(1 if r.failure else 0 for r in processed)
        batch.prompt_prefix = _prefix(0 if r.failure else r.prompt_tokens for r in processed)
        batch.completion_prefix = _prefix(
            0 if r.failure else r.completion_tokens for r in processed
        )
        self.batches[batch_id] = batch
        self.revision += 1
        self.stats.creates[dialect] += 1
        return batch

    def _decide(self, endpoint: str, req: SimRequest) -> None:
        if ERROR_MARKER in req.raw:
            req.failure = 400
        elif self.config.request_error_rate > 0 and (
            stable_unit("request-error", self._seed_text, req.raw) < self.config.request_error_rate
        ):
            req.failure = 500
        else:
            answer = answer_for(endpoint, req.body)
            if answer.kind == "unsupported":
                req.failure = 400
            req.prompt_tokens = answer.prompt_tokens
            req.completion_tokens = answer.completion_tokens

    def get_batch(self, batch_id: str, dialect: str | None = None) -> SimBatch | None:
        batch = self.batches.get(batch_id)
        if batch is None or (dialect is not None and batch.dialect != dialect):
            return None
        return batch

    def list_batches(self, dialect: str) -> list[SimBatch]:
        """The dialect's batches, oldest first."""
        return [b for b in self.batches.values() if b.dialect == dialect]

    def delete_batch(self, batch_id: str) -> bool:
        self.revision += 1
        return self.batches.pop(batch_id, None) is not None

    def _require(self, batch_id: str) -> SimBatch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise KeyError(f"no batch {batch_id!r} in the emulator")
        return batch

    # -- the state machine ------------------------------------------------------------

    def snapshot(self, batch: SimBatch, now: float | None = None) -> Snapshot:
        """The batch's state at ``now`` (default: the clock's current time)."""
        t = self.now() if now is None else now
        cfg = self.config
        n = batch.total
        rate = cfg.requests_per_second
        t0 = batch.created_at
        fc = batch.forced_complete_at
        tv = t0 + cfg.validating_seconds
        if fc is not None and fc < tv:
            tv = fc
        expires_at = t0 + batch.window
        te = (
            expires_at
            if batch.forced_expire_at is None
            else min(expires_at, batch.forced_expire_at)
        )
        tc = batch.cancel_at

        def counts(phase: Phase, done: int, **times: float | None) -> Snapshot:
            return Snapshot(
                phase=phase,
                total=n,
                done=done,
                failed=batch.fail_prefix[done],
                prompt_tokens=batch.prompt_prefix[done],
                completion_tokens=batch.completion_prefix[done],
                created_at=t0,
                expires_at=expires_at,
                **times,
            )

        def cancel_end(start: float) -> float:
            end = start + cfg.cancelling_seconds
            return min(end, fc) if fc is not None and fc >= start else end

        # Cancelled (or expired) while still validating.
        if tc is not None and tc < tv and tc < te:
            if t < tc:
                return counts(Phase.VALIDATING, 0)
            tcd = cancel_end(tc)
            if t < tcd:
                return counts(Phase.CANCELLING, 0, cancelling_at=tc)
            return counts(Phase.CANCELLED, 0, cancelling_at=tc, cancelled_at=tcd)
        if te < tv:
            if t < te:
                return counts(Phase.VALIDATING, 0)
            return counts(Phase.EXPIRED, 0, expired_at=te)
        if batch.validation_errors:
            if t < tv:
                return counts(Phase.VALIDATING, 0)
            return counts(Phase.FAILED, 0, failed_at=tv)

        tdone = tv + n / rate
        tend = tdone + cfg.finalizing_seconds
        if fc is not None and fc >= tv:
            if fc < tdone:
                tdone = tend = fc
            elif fc < tend:
                tend = fc

        def done_at(when: float) -> int:
            if when >= tdone:
                return n
            if when < tv:
                return 0
            # Absorb float rounding: Unix-time floats near 1.7e9 have ~2.4e-7 s resolution.
            return min(n, math.floor((when - tv) * rate + 1e-6 * (1.0 + rate)))

        if tc is not None and tc < tdone and tc <= te:
            if t < tc:
                return counts(Phase.RUNNING, done_at(t), started_at=tv)
            frozen = done_at(tc)
            tcd = cancel_end(tc)
            if t < tcd:
                return counts(Phase.CANCELLING, frozen, started_at=tv, cancelling_at=tc)
            return counts(
                Phase.CANCELLED, frozen, started_at=tv, cancelling_at=tc, cancelled_at=tcd
            )
        if te < tdone:
            if t < tv:
                return counts(Phase.VALIDATING, 0)
            if t < te:
                return counts(Phase.RUNNING, done_at(t), started_at=tv)
            return counts(Phase.EXPIRED, done_at(te), started_at=tv, expired_at=te)
        if t < tv:
            return counts(Phase.VALIDATING, 0)
        if t < tdone:
            return counts(Phase.RUNNING, done_at(t), started_at=tv)
        if t < tend:
            return counts(Phase.FINALIZING, n, started_at=tv, finalizing_at=tdone)
        return counts(Phase.COMPLETED, n, started_at=tv, finalizing_at=tdone, completed_at=tend)

    def processed_at(self, batch: SimBatch, position: int, snap: Snapshot) -> float:
        """When the ``position``-th processed request (0-based) finished."""
        start = snap.started_at if snap.started_at is not None else snap.created_at
        when = start + (position + 1) / self.config.requests_per_second
        end = snap.finalizing_at or snap.ended_at
        return min(when, end) if end is not None else when

    def processed(self, batch: SimBatch, snap: Snapshot) -> list[SimRequest]:
        """Requests processed by ``snap``'s time, in processing order."""
        return [batch.requests[i] for i in batch.order[: snap.done]]

    def unprocessed(self, batch: SimBatch, snap: Snapshot) -> list[SimRequest]:
        """Requests not processed by ``snap``'s time, in processing order."""
        return [batch.requests[i] for i in batch.order[snap.done :]]

    def request_cancel(self, batch: SimBatch) -> Snapshot:
        """Ask for cancellation now. Idempotent while cancelling; raises
        :class:`BatchStateConflict` once the batch is finalizing or terminal."""
        now = self.now()
        snap = self.snapshot(batch, now)
        if snap.phase is Phase.CANCELLING:
            return snap
        if snap.phase not in (Phase.VALIDATING, Phase.RUNNING):
            raise BatchStateConflict(
                snap.phase, f"cannot cancel a batch that is {snap.phase.value}"
            )
        batch.cancel_at = now
        self.revision += 1
        return self.snapshot(batch, now)

    # -- test controls ----------------------------------------------------------------

    def complete(self, batch_id: str) -> Snapshot:
        """Finish the batch now: every request is processed and the batch is completed
        (or failed if its input was invalid, or cancelled if it was cancelling)."""
        with self.lock:
            batch = self._require(batch_id)
            now = self.now()
            if not self.snapshot(batch, now).terminal:
                batch.forced_complete_at = now
                self.revision += 1
            return self.snapshot(batch, now)

    def expire(self, batch_id: str) -> Snapshot:
        """Make the batch's completion window run out now (it must be validating or
        running): requests processed so far are kept, the others expire."""
        with self.lock:
            batch = self._require(batch_id)
            now = self.now()
            snap = self.snapshot(batch, now)
            if snap.phase not in (Phase.VALIDATING, Phase.RUNNING):
                raise BatchStateConflict(
                    snap.phase, f"cannot expire a batch that is {snap.phase.value}"
                )
            batch.forced_expire_at = now
            self.revision += 1
            return self.snapshot(batch, now)

    def ensure_results(
        self, batch: SimBatch, snap: Snapshot, build: Callable[[SimBatch, Snapshot], None]
    ) -> None:
        """Run ``build`` once, when the batch is first seen terminal (it writes the
        result files and sets ``output_file_id`` / ``error_file_id``)."""
        if snap.terminal and not batch.materialized:
            build(batch, snap)
            batch.materialized = True
            self.revision += 1
