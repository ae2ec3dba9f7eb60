"""Crash injection for the job runner: kill the process at a named checkpoint (a test switch).

``OMNIBATCH_CRASH_AT=<checkpoint>[:N]`` kills the process with SIGKILL the N-th time the runner
reaches a checkpoint (see :data:`CHECKPOINTS`); the kill -9 tests set it on real ``omnibatch``
processes. A :class:`CrashPlan` plugs into :class:`~omnibatch.jobs.JobRunner` as its
``checkpoint`` callable, and :meth:`CrashPlan.transport` wraps the HTTP transport so the
``<operation>-sent`` / ``<operation>-answered`` points fire around every request.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from omnibatch._exceptions import ConfigurationError
from omnibatch.jobs.runner import OPERATION_EXTENSION

__all__ = ["CHECKPOINTS", "CRASH_ENV", "CheckpointTransport", "CrashPlan"]

log = logging.getLogger("omnibatch")

CRASH_ENV = "OMNIBATCH_CRASH_AT"

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


@dataclass
class CrashPlan:
    """Kill this process at the ``nth`` time ``point`` is reached. Call it (or :meth:`hit`)
    at every checkpoint."""

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

    def __call__(self, point: str) -> None:
        self.hit(point)

    def hit(self, point: str) -> None:
        self.seen[point] += 1
        if point == self.point and self.seen[point] == self.nth:
            log.debug("%s: killing the process at %s:%d", CRASH_ENV, point, self.nth)
            if sys.platform == "win32":  # no SIGKILL there; _exit skips cleanup just the same
                os._exit(137)
            os.kill(os.getpid(), signal.SIGKILL)

    def transport(self, inner: httpx.BaseTransport | None = None) -> CheckpointTransport:
        """``inner`` (default: the network) with this plan's HTTP checkpoints around it."""
        return CheckpointTransport(inner or httpx.HTTPTransport(), self)


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


class CheckpointTransport(httpx.BaseTransport):
    """Reaches ``<operation>-sent`` / ``<operation>-answered`` around each request, the
    operation being what the runner named in the request's extensions."""

    def __init__(self, inner: httpx.BaseTransport, plan: CrashPlan) -> None:
        self._inner = inner
        self._plan = plan

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        operation = request.extensions.get(OPERATION_EXTENSION, "request")
        self._plan.hit(f"{operation}-sent")
        response = self._inner.handle_request(request)
        self._plan.hit(f"{operation}-answered")
        if operation == "download" and isinstance(response.stream, httpx.SyncByteStream):
            response.stream = _HalfStream(response.stream, self._plan)
        return response

    def close(self) -> None:
        self._inner.close()
