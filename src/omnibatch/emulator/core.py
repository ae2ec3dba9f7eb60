"""The :class:`Emulator`: routes requests to dialects and applies faults."""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from omnibatch.emulator.clock import Clock, ScaledClock
from omnibatch.emulator.config import EmulatorConfig
from omnibatch.emulator.dialect import Dialect, HTTPErrorResponse
from omnibatch.emulator.engine import Engine, RequestRecord, Snapshot, Stats
from omnibatch.emulator.faults import FaultDecision, FaultPlan
from omnibatch.emulator.state import StateDir

__all__ = ["DialectSpec", "Emulator", "Outcome", "default_dialect_classes"]

#: What ``Emulator(dialects=...)`` accepts.
DialectSpec = Mapping[str, type[Dialect]] | Iterable[type[Dialect] | Dialect]

_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})
_SECRET_QUERY = frozenset({"key", "api_key", "api-key"})
_HTTP_FAULTS = {"429": 429, "500": 500, "502": 502, "503": 503}
#: Body cap of a request no dialect is mounted for (it is answered 404 anyway).
_UNROUTED_BODY_LIMIT = 64 * 1024


def default_dialect_classes() -> dict[str, type[Dialect]]:
    """The dialects installed plugins registered (the built-in providers register theirs
    through the same ``omnibatch`` entry points as third-party plugins)."""
    from omnibatch._plugins import emulator_dialects

    return dict(emulator_dialects())


@dataclass
class Outcome:
    """What :meth:`Emulator.dispatch` decided for one request.

    ``response`` is ``None`` when nothing must be sent (a ``reset``, or a ``slow`` fault
    before processing); ``processed`` tells whether the dialect ran (state may have
    changed); ``fault`` is the injected fault, if any.
    """

    response: httpx.Response | None
    fault: FaultDecision | None = None
    processed: bool = True


def _redact_query(query: str, dialect: Dialect | None) -> str:
    """``query`` with the values of credential parameters (``?key=`` ...) replaced."""
    secret = _SECRET_QUERY
    if dialect is not None and dialect.secret_query_params:
        secret = secret | {p.lower() for p in dialect.secret_query_params}
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in secret for name, _ in pairs):
        return query
    return urlencode(
        [(name, "<redacted>" if name.lower() in secret else value) for name, value in pairs],
        safe="<>",
    )


class _TruncatedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that stops after ``cut`` bytes with the error a real client would see."""

    def __init__(self, data: bytes, cut: int, request: httpx.Request) -> None:
        self._head = data[:cut]
        self._request = request

    def _error(self) -> httpx.RemoteProtocolError:
        return httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body (emulated truncation)",
            request=self._request,
        )

    def __iter__(self) -> Iterator[bytes]:
        if self._head:
            yield self._head
        raise self._error()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._head:
            yield self._head
        raise self._error()


class Emulator:
    """A local stand-in for the providers' batch APIs.

    ``dialects``: dialect classes or instances (a mapping by name, or an iterable);
    ``None`` loads the registered ones (:func:`default_dialect_classes`). ``config``:
    an :class:`EmulatorConfig`. ``clock``: a :class:`ManualClock` for tests, default
    ``ScaledClock(config.speed)``.

    ``state_dir``: a directory that keeps files, batches and the simulated time, saved
    after every change and loaded at start, so a restarted emulator continues its batches
    (without it, the state lives in memory and ends with the process).

    Use :meth:`transport` with ``httpx.Client``/``httpx.AsyncClient``, or
    :func:`omnibatch.emulator.serve` for a real HTTP server.
    """

    def __init__(
        self,
        dialects: DialectSpec | None = None,
        config: EmulatorConfig | None = None,
        clock: Clock | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.clock: Clock = clock if clock is not None else ScaledClock(self.config.speed)
        self.engine = Engine(self.config, self.clock)
        self.faults: FaultPlan | None = self.config.faults
        if dialects is None:
            dialects = default_dialect_classes()
            if not dialects:
                raise RuntimeError(
                    "no emulator dialects are registered: install omnibatch (pip install -e .) "
                    "so its provider plugins are found, check OMNIBATCH_DISABLE_PLUGINS, or "
                    "pass dialects=[...]"
                )
        items: Iterable[type[Dialect] | Dialect]
        items = dialects.values() if isinstance(dialects, Mapping) else dialects
        self.dialects: dict[str, Dialect] = {}
        for item in items:
            dialect = item() if isinstance(item, type) else item
            if not dialect.name or not dialect.prefix.startswith("/"):
                raise ValueError(f"{type(dialect).__name__} needs a name and a '/prefix'")
            if dialect.name in self.dialects:
                raise ValueError(f"two emulator dialects are named {dialect.name!r}")
            for other in self.dialects.values():
                if other.prefix.rstrip("/") == dialect.prefix.rstrip("/"):
                    raise ValueError(
                        f"emulator dialects {other.name!r} and {dialect.name!r} share the "
                        f"prefix {dialect.prefix!r}"
                    )
            self.dialects[dialect.name] = dialect
        self._routes = sorted(
            ((d.prefix.rstrip("/"), d) for d in self.dialects.values()),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )
        self.state: StateDir | None = None
        self._saved_revision = -1
        if state_dir is not None:
            self.state = StateDir(state_dir)
            self.state.load(self.engine)
            self.save()

    def save(self) -> None:
        """Write the state to the state directory now (a no-op without one)."""
        if self.state is None:
            return
        with self.engine.lock:
            self.state.save(self.engine)
            self._saved_revision = self.engine.revision

    def _persist(self, method: str) -> None:
        # Dialects may change a batch in place on any write; reads change state only
        # through the engine (results written on first sight), which bumps the revision.
        if self.state is not None and (
            method not in ("GET", "HEAD") or self.engine.revision != self._saved_revision
        ):
            self.save()

    def __repr__(self) -> str:
        return f"Emulator(dialects={list(self.dialects)!r}, clock={self.clock!r})"

    # -- test controls ------------------------------------------------------------------

    @property
    def stats(self) -> Stats:
        """Counters and the request log (``stats.creates["openai"]``, ``stats.requests``)."""
        return self.engine.stats

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by ``seconds``."""
        self.engine.advance(seconds)
        self.save()

    def complete(self, batch_id: str) -> Snapshot:
        """Finish ``batch_id`` now (see :meth:`Engine.complete`)."""
        snap = self.engine.complete(batch_id)
        self.save()
        return snap

    def expire(self, batch_id: str) -> Snapshot:
        """Expire ``batch_id`` now (see :meth:`Engine.expire`)."""
        snap = self.engine.expire(batch_id)
        self.save()
        return snap

    def snapshot(self, batch_id: str) -> Snapshot:
        """The current provider-neutral state of ``batch_id``."""
        with self.engine.lock:
            batch = self.engine.get_batch(batch_id)
            if batch is None:
                raise KeyError(f"no batch {batch_id!r} in the emulator")
            return self.engine.snapshot(batch)

    def base_url(self, root: str, dialect: str) -> str:
        """The base URL an SDK of ``dialect`` needs, for a server at ``root``."""
        d = self.dialects[dialect]
        return root.rstrip("/") + d.prefix.rstrip("/") + d.base_url_suffix

    def base_urls(self, root: str) -> dict[str, str]:
        """:meth:`base_url` for every dialect."""
        return {name: self.base_url(root, name) for name in self.dialects}

    # -- request handling ---------------------------------------------------------------

    def _route(self, path: str) -> tuple[Dialect, str] | None:
        for prefix, dialect in self._routes:
            if path == prefix or path.startswith(prefix + "/"):
                return dialect, path[len(prefix) :] or "/"
        return None

    def _fault_headers(self, status: int) -> dict[str, str]:
        if status != 429:
            return {}
        plan = self.faults
        simulated = plan.retry_after if plan is not None else 1.0
        wall = simulated / self.clock.speed
        return {
            "retry-after": str(max(0, math.floor(wall + 0.5))),
            "retry-after-ms": str(max(0, round(wall * 1000))),
        }

    def body_limit(self, request: httpx.Request) -> int:
        """The largest body, in bytes, accepted for ``request``: its dialect's
        :meth:`~Dialect.body_limit` for the route, lowered to ``config.max_body_bytes``."""
        routed = self._route(request.url.path)
        limit = (
            routed[0].body_limit(request.method, routed[1])
            if routed is not None
            else _UNROUTED_BODY_LIMIT
        )
        cap = self.config.max_body_bytes
        return limit if cap is None else min(limit, cap)

    def preflight(self, request: httpx.Request, length: int | None) -> httpx.Response | None:
        """The answer to ``request`` before its body is read (``None``: read the body, then
        :meth:`dispatch`). ``request`` carries the method, URL and headers only; ``length``
        is the declared ``Content-Length`` (``None`` when unknown, as with chunked bodies).
        A missing or wrong key is refused here, whatever the dialect (see
        :meth:`Dialect.preflight`), and so is a declared length over :meth:`body_limit`."""
        routed = self._route(request.url.path)
        early: httpx.Response | None
        if routed is None:
            if length is not None and length > _UNROUTED_BODY_LIMIT:
                early = Dialect.json_response(
                    {"error": {"message": f"No emulator dialect is mounted at {request.url.path}"}},
                    404,
                )
                self._record(request, None, early, None)
                return early
            return None
        dialect, sub_path = routed
        try:
            with self.engine.lock:
                early = dialect.preflight(self.engine, request, sub_path)
        except HTTPErrorResponse as exc:
            early = exc.response
        if early is None and length is not None:
            limit = self.body_limit(request)
            if length > limit:
                early = dialect.too_large(limit)
        if early is not None:
            self._record(request, dialect, early, None)
        return early

    def too_large(self, request: httpx.Request) -> httpx.Response:
        """The 413 answer, in the dialect's shape, to a body over :meth:`body_limit` found
        while reading it (a chunked body has no declared length)."""
        limit = self.body_limit(request)
        routed = self._route(request.url.path)
        dialect = routed[0] if routed is not None else None
        response = (
            dialect.too_large(limit)
            if dialect is not None
            else Dialect.json_response({"error": {"message": "Request body too large"}}, 413)
        )
        self._record(request, dialect, response, None)
        return response

    def dispatch(self, request: httpx.Request) -> Outcome:
        """Route ``request`` and apply the fault plan, without turning faults into
        exceptions (the HTTP server and :meth:`handle` do that, each their own way)."""
        path = request.url.path
        routed = self._route(path)
        if routed is None and path in ("", "/") and request.method == "GET":
            index = {
                "object": "omnibatch.emulator",
                "dialects": {
                    name: d.prefix.rstrip("/") + d.base_url_suffix
                    for name, d in self.dialects.items()
                },
            }
            listing = Dialect.json_response(index)
            self._record(request, None, listing, None)
            return Outcome(listing, processed=False)
        if routed is None:
            body = {"error": {"message": f"No emulator dialect is mounted at {path}"}}
            missing = Dialect.json_response(body, 404)
            self._record(request, None, missing, None)
            return Outcome(missing, processed=False)
        dialect, sub_path = routed
        limit = self.body_limit(request)
        if len(request.content) > limit:
            refused = dialect.too_large(limit)
            self._record(request, dialect, refused, None)
            return Outcome(refused, processed=False)
        plan = self.faults
        decision = plan.decide(request.method, path) if plan is not None else None
        if decision is not None and decision.when == "before":
            status = _HTTP_FAULTS.get(decision.kind)
            early = (
                dialect.fault_response(status, self._fault_headers(status))
                if status is not None
                else None
            )
            self._record(request, dialect, early, decision)
            return Outcome(early, decision, processed=False)
        response = self._process(dialect, request, sub_path)
        self._persist(request.method)
        if decision is not None:
            status = _HTTP_FAULTS.get(decision.kind)
            if status is not None:
                response = dialect.fault_response(status, self._fault_headers(status))
            elif decision.kind == "reset":
                self._record(request, dialect, None, decision)
                return Outcome(None, decision)
        self._record(request, dialect, response, decision)
        return Outcome(response, decision)

    def _process(self, dialect: Dialect, request: httpx.Request, sub_path: str) -> httpx.Response:
        try:
            with self.engine.lock:
                return dialect.handle(self.engine, request, sub_path)
        except HTTPErrorResponse as exc:
            return exc.response
        except Exception as exc:  # a bug in a dialect must not kill the server thread
            return dialect.error_response(
                500, f"emulator dialect {dialect.name!r} crashed: {exc!r}", type="server_error"
            )

    def _record(
        self,
        request: httpx.Request,
        dialect: Dialect | None,
        response: httpx.Response | None,
        decision: FaultDecision | None,
    ) -> None:
        secret = _SECRET_HEADERS
        if dialect is not None and dialect.secret_headers:
            secret = secret | {h.lower() for h in dialect.secret_headers}
        headers = {
            k: ("<redacted>" if k.lower() in secret else v) for k, v in request.headers.items()
        }
        fault = None if decision is None else f"{decision.kind}:{decision.when}"
        query = request.url.query.decode("ascii", errors="replace")
        if query:
            query = _redact_query(query, dialect)
        with self.engine.lock:
            if fault is not None:
                self.engine.stats.faults[fault] += 1
            self.engine.stats.requests.append(
                RequestRecord(
                    method=request.method,
                    path=request.url.path,
                    query=query,
                    headers=headers,
                    dialect=dialect.name if dialect is not None else None,
                    status=response.status_code if response is not None else None,
                    fault=fault,
                    at=self.clock.now(),
                )
            )

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Synchronous handler for :class:`httpx.MockTransport`. Faults become the httpx
        exceptions a real connection would raise: ``reset`` before processing is an
        ``httpx.ConnectError``, after it an ``httpx.ReadError``; ``slow`` is an
        ``httpx.ReadTimeout``; ``truncate`` is a body that raises
        ``httpx.RemoteProtocolError`` partway."""
        outcome = self.dispatch(request)
        decision = outcome.fault
        if decision is not None:
            if decision.kind == "reset":
                if decision.when == "before":
                    raise httpx.ConnectError("connection reset by peer (emulated)", request=request)
                raise httpx.ReadError("connection reset by peer (emulated)", request=request)
            if decision.kind == "slow":
                raise httpx.ReadTimeout("the read operation timed out (emulated)", request=request)
            if decision.kind == "truncate" and outcome.response is not None:
                return self._truncated(outcome.response, request)
        if outcome.response is None:  # pragma: no cover - only faults produce no response
            raise httpx.RemoteProtocolError("no response (emulated)", request=request)
        return outcome.response

    def _truncated(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
        data = response.content
        fraction = self.faults.truncate_fraction if self.faults is not None else 0.5
        cut = min(len(data) - 1, int(len(data) * fraction)) if data else 0
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        headers.append(("content-length", str(len(data))))
        return httpx.Response(
            response.status_code,
            headers=headers,
            stream=_TruncatedStream(data, max(0, cut), request),
        )

    def transport(self) -> httpx.MockTransport:
        """An ``httpx.MockTransport`` serving this emulator to sync and async clients."""
        return httpx.MockTransport(self.handle)

    def client(self, dialect: str, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` wired to this emulator with ``dialect``'s base URL."""
        kwargs.setdefault("base_url", self.base_url("http://emulator", dialect))
        return httpx.Client(transport=self.transport(), **kwargs)
