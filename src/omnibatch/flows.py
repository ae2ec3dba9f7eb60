"""Sans-I/O building blocks for provider adapters.

An adapter operation is a *flow*: a generator that yields effects and receives their results.

* ``yield HttpRequest(...)`` sends one HTTP request and receives an :class:`HttpResponse`
  (non-2xx answers are raised into the generator as :mod:`omnibatch` exceptions unless the
  request lists them in ``ok_statuses``; retries and backoff happen before the flow sees them);
* ``yield Sleep(seconds)`` pauses (``time.sleep`` or ``asyncio.sleep`` depending on the client).

The flow's ``return`` value is the operation's result. ``BatchClient`` and ``AsyncBatchClient``
drive the same flows, so an adapter never contains async code, never touches a socket and never
sees an API key (credentials are added by the client after the flow built the request).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

__all__ = [
    "Effect",
    "FilePart",
    "Flow",
    "HttpRequest",
    "HttpResponse",
    "Sleep",
    "no_io",
]

T = TypeVar("T")

QueryParams = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class FilePart:
    """One file field of a multipart form, read from ``path`` (streamed) or ``content``."""

    name: str
    filename: str
    path: Path | None = None
    content: bytes | None = None
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request built by an adapter.

    ``path`` is joined to the provider's base URL unless it is an absolute ``http(s)://`` URL.
    ``params`` keeps order and allows repeated keys. Exactly one of ``json``, ``content``,
    ``content_path`` (a file sent as the raw body, streamed, with its ``Content-Length``: a
    ``PUT`` to a pre-signed URL) and ``data``/``files`` is used as the body. ``idempotent`` says
    whether the client may resend it after an ambiguous failure (defaults: GET/HEAD/DELETE yes,
    others no). ``ok_statuses`` lists
    non-2xx statuses the flow wants to handle itself. ``stream`` asks the client to save the body
    to a file instead of memory (``HttpResponse.path``), resuming partial downloads with Range.
    """

    method: str
    path: str
    params: QueryParams = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    data: Mapping[str, str] | None = None
    files: Sequence[FilePart] = ()
    idempotent: bool | None = None
    ok_statuses: frozenset[int] = frozenset()
    stream: bool = False
    operation: str = ""
    content_path: Path | None = None

    @property
    def retry_safe(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in {"GET", "HEAD", "DELETE", "OPTIONS"}

    def describe(self) -> str:
        return self.operation or f"{self.method} {self.path}"


@dataclass(frozen=True)
class HttpResponse:
    """A provider's answer. ``headers`` keys are lower-case. ``path`` is set for streamed
    downloads, in which case ``content`` is empty."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes = b""
    path: Path | None = None
    url: str = ""

    def json(self) -> Any:
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError as exc:
            snippet = self.content[:200].decode("utf-8", "replace")
            raise ValueError(f"response is not JSON: {snippet!r}") from exc

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class Sleep:
    """Pause the flow for ``seconds`` (the client chooses time.sleep or asyncio.sleep)."""

    seconds: float


Effect = HttpRequest | Sleep
Flow = Generator[Effect, Any, T]


def no_io(value: T) -> Flow[T]:
    """A flow that performs no I/O and returns ``value`` (e.g. an inline provider's upload)."""
    yield from ()
    return value


def query(*pairs: tuple[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    """Build ordered query parameters, dropping ``None`` and lower-casing booleans."""
    out: list[tuple[str, str]] = []
    items: Iterable[tuple[str, Any]] = [*pairs, *kwargs.items()]
    for key, value in items:
        if value is None:
            continue
        if isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        elif isinstance(value, list | tuple):
            out.extend((key, str(v)) for v in value)
        else:
            out.append((key, str(value)))
    return out
