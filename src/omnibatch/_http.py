"""All HTTP in one place: retries, error mapping, and the sync/async senders over httpx.

Retries are written once, as a flow (:func:`call`), so both clients share them. They apply to
requests that are safe to repeat (GET/DELETE, or marked ``idempotent``), and to 429 answers for
any request, since a rate-limited request was refused before it was processed. Creating a batch
is never blindly retried: the client reconciles first (see ``omnibatch._lifecycle``).
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import time
from collections.abc import Generator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from omnibatch._exceptions import (
    AuthenticationError,
    BatchError,
    ConflictError,
    NotFoundError,
    ProviderConnectionError,
    ProviderServerError,
    ProviderStatusError,
    ProviderTimeoutError,
    RateLimitError,
)
from omnibatch.adapter import ProviderAdapter
from omnibatch.flows import Effect, Flow, HttpRequest, HttpResponse, Sleep

__all__ = ["AsyncSender", "RetryPolicy", "SyncSender", "call", "status_error", "with_http"]

log = logging.getLogger("omnibatch.http")
T = TypeVar("T")

_USER_AGENT = "omnibatch/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring ``Retry-After``."""

    max_attempts: int = 6
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    max_retry_after: float = 120.0
    retry_statuses: frozenset[int] = field(
        default_factory=lambda: frozenset({408, 429, 500, 502, 503, 504})
    )

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        # Jitter between half and all of the ceiling spreads clients that failed together.
        return ceiling * (0.5 + rng.random() / 2)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


_STATUS_ERRORS: dict[int, type[ProviderStatusError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}
#: Error codes that mean a rejected credential whatever the status (Gemini answers a wrong
#: key with a 400 whose reason is API_KEY_INVALID).
_AUTH_CODES = frozenset({"API_KEY_INVALID"})


def status_error(
    adapter: ProviderAdapter, request: HttpRequest, response: HttpResponse
) -> ProviderStatusError:
    """The exception for a non-2xx answer, carrying provider, status, body and request id."""
    info = adapter.error_info(response)
    cls = _STATUS_ERRORS.get(response.status_code)
    if info.code in _AUTH_CODES:
        cls = AuthenticationError
    if cls is None:
        cls = ProviderServerError if response.status_code >= 500 else ProviderStatusError
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:2000]
    return cls(
        f"{request.describe()} failed: {info.message}",
        provider=adapter.name,
        status_code=response.status_code,
        body=body,
        request_id=info.request_id,
        code=info.code,
        method=request.method,
        url=response.url or None,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def call(
    request: HttpRequest, adapter: ProviderAdapter, policy: RetryPolicy, rng: random.Random
) -> Generator[Effect, Any, HttpResponse]:
    """Send ``request`` with the retry policy; return the response or raise the mapped error."""
    attempt = 1
    while True:
        try:
            response: HttpResponse = yield request
        except ProviderConnectionError as exc:
            if not request.retry_safe or attempt >= policy.max_attempts:
                raise
            delay = policy.delay(attempt, rng)
            reason = f"{type(exc).__name__}: {exc}"
        else:
            if response.is_success or response.status_code in request.ok_statuses:
                return response
            error = status_error(adapter, request, response)
            retryable = response.status_code in policy.retry_statuses and (
                request.retry_safe or response.status_code == 429
            )
            if not retryable or attempt >= policy.max_attempts:
                raise error
            delay = policy.delay(attempt, rng, error.retry_after)
            reason = f"HTTP {response.status_code} {type(error).__name__}"
            if error.code:
                reason += f" ({error.code})"
            if error.retry_after is not None:
                reason += f", Retry-After {error.retry_after:g} s"
        # -vv: why each retry happens and how long it waits.
        log.debug(
            "retrying %s in %.2f s (attempt %d of %d) after %s",
            request.describe(),
            delay,
            attempt + 1,
            policy.max_attempts,
            reason,
        )
        yield Sleep(delay)
        attempt += 1


def with_http(
    flow: Flow[T], adapter: ProviderAdapter, policy: RetryPolicy, rng: random.Random
) -> Flow[T]:
    """Run an adapter flow with every HTTP request going through :func:`call`."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        if isinstance(effect, HttpRequest):
            try:
                value = yield from call(effect, adapter, policy, rng)
            except BatchError as exc:
                error = exc
        else:
            value = yield effect


# --- senders ----------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.netloc.decode("ascii")


def _same_origin(url: str, base_url: str) -> bool:
    # Scheme, host and port compared, never a prefix ("https://api.x.com.evil.example").
    return _origin(url) == _origin(base_url)


class _Prepared:
    """An httpx request built from an :class:`HttpRequest`, with the files it opened."""

    def __init__(
        self, client: httpx.Client | httpx.AsyncClient, adapter: ProviderAdapter, req: HttpRequest
    ) -> None:
        self.stack = ExitStack()
        url = (
            req.path
            if req.path.startswith(("http://", "https://"))
            else adapter.base_url + req.path
        )
        headers = {"User-Agent": _USER_AGENT, **adapter.default_headers(), **req.headers}
        if _same_origin(url, adapter.base_url):
            # A URL elsewhere (a pre-signed storage link) never receives the API key.
            headers.update(adapter.auth_headers())
        kwargs: dict[str, Any] = {"params": list(req.params) or None, "headers": headers}
        if req.json is not None:
            kwargs["content"] = orjson.dumps(req.json)
            headers.setdefault("Content-Type", "application/json")
        elif req.content is not None:
            kwargs["content"] = req.content
        elif req.files or req.data:
            kwargs["data"] = dict(req.data or {})
            files = []
            for part in req.files:
                body: Any = part.content
                if part.path is not None:
                    body = self.stack.enter_context(open(part.path, "rb"))  # noqa: SIM115
                files.append((part.name, (part.filename, body, part.content_type)))
            kwargs["files"] = files or None
        self.request = client.build_request(req.method, url, **kwargs)
        self.source = req

    def describe(self) -> str:
        url = self.request.url.copy_with(query=None)
        return f"{self.source.describe()} ({self.request.method} {url})"


def _logged(prepared: _Prepared, started: float, response: HttpResponse) -> HttpResponse:
    """``-v``: one line per request with its answer's status and time (never headers or
    bodies, so no key)."""
    log.info(
        "%s -> HTTP %d (%.2f s)",
        prepared.describe(),
        response.status_code,
        time.monotonic() - started,
    )
    return response


def _transport_error(exc: httpx.TransportError, prepared: _Prepared, provider: str) -> BatchError:
    cls = (
        ProviderTimeoutError if isinstance(exc, httpx.TimeoutException) else ProviderConnectionError
    )
    return cls(
        f"{prepared.describe()} failed: {type(exc).__name__}: {exc}",
        provider=provider,
        method=prepared.request.method,
        url=str(prepared.request.url.copy_with(query=None)),
    )


def _begin_download(workdir: Path, prepared: _Prepared) -> tuple[Path, Path, int]:
    """Where a download goes, its partial file, and how much of it is there already (asked
    for again from that offset with ``Range``)."""
    digest = hashlib.sha256(str(prepared.request.url).encode()).hexdigest()[:24]
    target = workdir / f"download-{digest}.bin"
    partial = target.with_suffix(".part")
    offset = partial.stat().st_size if partial.exists() else 0
    if offset:
        prepared.request.headers["Range"] = f"bytes={offset}-"
    return target, partial, offset


def _partial_mode(resp: httpx.Response, offset: int) -> tuple[str, int]:
    """A 206 continues the partial file from ``offset``; a 200 starts it over."""
    return ("ab", offset) if resp.status_code == 206 else ("wb", 0)


def _already_complete(
    resp: httpx.Response, partial: Path, target: Path, offset: int
) -> HttpResponse | None:
    """A 416 to ``Range: bytes=<offset>-`` where ``offset`` is the file's size: the partial file
    is the whole file (a crash came between its last write and its rename). Finish it."""
    if resp.status_code != 416 or not offset:
        return None
    total = resp.headers.get("content-range", "").rpartition("/")[2].strip()
    if total.isdigit() and int(total) != offset:
        partial.unlink(missing_ok=True)  # not this file's prefix: start over on the retry
        return None
    partial.replace(target)
    headers = {k.lower(): v for k, v in resp.headers.items()}
    return HttpResponse(200, headers, b"", target, str(resp.request.url))


def _response(resp: httpx.Response, content: bytes = b"", path: Path | None = None) -> HttpResponse:
    headers = {k.lower(): v for k, v in resp.headers.items()}
    return HttpResponse(resp.status_code, headers, content, path, str(resp.request.url))


def _check_length(resp: httpx.Response, received: int, offset: int) -> None:
    expected = resp.headers.get("content-length")
    if (
        expected is not None
        and "content-encoding" not in resp.headers
        and received != int(expected)
    ):
        raise httpx.RemoteProtocolError(
            f"download truncated: {received} of {expected} bytes after offset {offset}",
            request=resp.request,
        )


class SyncSender:
    """Sends flow requests over an ``httpx.Client``; streamed downloads resume with Range."""

    def __init__(self, client: httpx.Client, adapter: ProviderAdapter, workdir: Path) -> None:
        self.client = client
        self.adapter = adapter
        self.workdir = workdir

    def send(self, req: HttpRequest) -> HttpResponse:
        prepared = _Prepared(self.client, self.adapter, req)
        started = time.monotonic()
        try:
            with prepared.stack:
                if req.stream:
                    return _logged(prepared, started, self._download(prepared))
                resp = self.client.send(prepared.request)
                return _logged(prepared, started, _response(resp, resp.content))
        except httpx.TransportError as exc:
            log.info("%s -> %s", prepared.describe(), type(exc).__name__)
            raise _transport_error(exc, prepared, self.adapter.name) from exc

    def _download(self, prepared: _Prepared) -> HttpResponse:
        target, partial, offset = _begin_download(self.workdir, prepared)
        resp = self.client.send(prepared.request, stream=True)
        try:
            done = _already_complete(resp, partial, target, offset)
            if done is not None:
                return done
            if not resp.is_success:
                resp.read()
                return _response(resp, resp.content)
            mode, start = _partial_mode(resp, offset)
            received = 0
            with open(partial, mode) as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
                    received += len(chunk)
            _check_length(resp, received, start)
        finally:
            resp.close()
        partial.replace(target)
        return _response(resp, b"", target)


class AsyncSender:
    """The async twin of :class:`SyncSender` (same behaviour, awaited I/O)."""

    def __init__(self, client: httpx.AsyncClient, adapter: ProviderAdapter, workdir: Path) -> None:
        self.client = client
        self.adapter = adapter
        self.workdir = workdir

    async def send(self, req: HttpRequest) -> HttpResponse:
        prepared = _Prepared(self.client, self.adapter, req)
        started = time.monotonic()
        try:
            with prepared.stack:
                if req.stream:
                    return _logged(prepared, started, await self._download(prepared))
                resp = await self.client.send(prepared.request)
                return _logged(prepared, started, _response(resp, resp.content))
        except httpx.TransportError as exc:
            log.info("%s -> %s", prepared.describe(), type(exc).__name__)
            raise _transport_error(exc, prepared, self.adapter.name) from exc

    async def _download(self, prepared: _Prepared) -> HttpResponse:
        target, partial, offset = _begin_download(self.workdir, prepared)
        resp = await self.client.send(prepared.request, stream=True)
        try:
            done = _already_complete(resp, partial, target, offset)
            if done is not None:
                return done
            if not resp.is_success:
                await resp.aread()
                return _response(resp, resp.content)
            mode, start = _partial_mode(resp, offset)
            received = 0
            with open(partial, mode) as out:
                async for chunk in resp.aiter_bytes():
                    out.write(chunk)
                    received += len(chunk)
            _check_length(resp, received, start)
        finally:
            await resp.aclose()
        partial.replace(target)
        return _response(resp, b"", target)
