"""The ``Dialect`` base class: one provider's HTTP API in front of the shared engine.

A dialect is mounted at a path prefix (``/openai``) and receives every request below
it. To add a provider, subclass :class:`Dialect`, set ``name`` and ``prefix``, implement
:meth:`Dialect.handle`, and register the class through the
``register_emulator_dialects`` plugin hook::

    class EchoDialect(Dialect):
        name = "echo"
        prefix = "/echo"

        def handle(self, engine, request, path):
            if (denied := self.check_auth(engine, request)) is not None:
                return denied
            if request.method == "GET" and path == "/v1/ping":
                return self.json_response({"pong": engine.now()})
            return self.error_response(404, f"no route {request.method} {path}")

The emulator calls ``handle`` with the engine lock held, one request at a time, and
handles transport faults itself. Raising :class:`HTTPErrorResponse` from anywhere inside
``handle`` returns its response.
"""

from __future__ import annotations

import hmac
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import orjson

if TYPE_CHECKING:
    from omnibatch.emulator.engine import Engine

__all__ = [
    "Dialect",
    "FormPart",
    "HTTPErrorResponse",
    "bearer_token",
    "content_response",
    "parse_multipart",
    "read_json",
]


class HTTPErrorResponse(Exception):
    """Raise this inside :meth:`Dialect.handle` to answer with ``response``."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class Dialect(ABC):
    """One provider's wire API. Subclasses set :attr:`name` and :attr:`prefix` and
    implement :meth:`handle`; the helpers below build responses."""

    #: Short name, e.g. ``"openai"``; it also tags the files and batches it creates.
    name: ClassVar[str] = ""
    #: Path prefix the dialect is mounted at, e.g. ``"/openai"``.
    prefix: ClassVar[str] = ""
    #: What to append to ``root + prefix`` to get the base URL an SDK expects (``"/v1"``).
    base_url_suffix: ClassVar[str] = ""
    #: Request headers that carry credentials, beyond the usual ones (``Authorization``,
    #: ``X-Api-Key``, ``Api-Key``, ``X-Goog-Api-Key``): the request log redacts them.
    secret_headers: ClassVar[frozenset[str]] = frozenset()
    #: Query parameters that carry credentials, beyond ``key`` and ``api_key``: the request
    #: log redacts their values.
    secret_query_params: ClassVar[frozenset[str]] = frozenset()
    #: Largest upload body (``POST .../files``) accepted, in bytes.
    max_upload_bytes: ClassVar[int] = 512 * 1024 * 1024
    #: Largest body of any other request, in bytes.
    max_request_bytes: ClassVar[int] = 64 * 1024 * 1024

    @abstractmethod
    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        """Answer ``request``; ``path`` is the URL path below :attr:`prefix`
        (e.g. ``"/v1/batches"``), without the query string."""

    # -- responses --------------------------------------------------------------------

    @staticmethod
    def json_response(
        data: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """A JSON response (``Content-Type: application/json``)."""
        all_headers = {"content-type": "application/json"}
        if headers:
            all_headers.update(headers)
        return httpx.Response(status_code, headers=all_headers, content=orjson.dumps(data))

    def error_body(
        self,
        status_code: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> Any:
        """The body of an error in this dialect's shape. The default is OpenAI's
        ``{"error": {"message", "type", "param", "code"}}``; override it."""
        if type is None:
            type = "server_error" if status_code >= 500 else "invalid_request_error"
        return {"error": {"message": message, "type": type, "param": param, "code": code}}

    def error_response(
        self,
        status_code: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """An error response in this dialect's shape (see :meth:`error_body`)."""
        body = self.error_body(status_code, message, type=type, code=code, param=param)
        return self.json_response(body, status_code, headers)

    def unauthorized(self, request: httpx.Request, token: str | None) -> httpx.Response:
        """The 401 answer to a missing or wrong API key."""
        if token is None:
            message = "You didn't provide an API key."
        else:
            message = "Incorrect API key provided."
        return self.error_response(401, message, code="invalid_api_key")

    def check_auth(self, engine: Engine, request: httpx.Request) -> httpx.Response | None:
        """``None`` if the request carries an acceptable ``Authorization: Bearer`` token,
        otherwise the 401 response. With ``config.api_key`` unset any token is accepted."""
        return check_key(self, engine, request, bearer_token(request))

    def preflight(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response | None:
        """The answer to give before the request's body is read, or ``None`` to read it and
        call :meth:`handle`. ``request`` has the method, URL and headers but no body yet.
        The default refuses a missing or wrong key (:meth:`check_auth`), so no unauthenticated
        client can make the server read a large body: a dialect that reads its key from
        elsewhere than ``Authorization: Bearer`` overrides :meth:`check_auth`, and one with
        routes whose credential is something else (an upload session URL) overrides this."""
        return self.check_auth(engine, request)

    def body_limit(self, method: str, path: str) -> int:
        """The largest body, in bytes, accepted for ``method`` on ``path`` (below the prefix):
        :attr:`max_upload_bytes` for file uploads, :attr:`max_request_bytes` otherwise.
        Larger bodies are refused with a 413 before they are read."""
        if method == "POST" and path.rstrip("/").endswith("/files"):
            return self.max_upload_bytes
        return self.max_request_bytes

    def too_large(self, limit: int) -> httpx.Response:
        """The 413 answer to a body over :meth:`body_limit`."""
        return self.error_response(
            413,
            f"Request body too large: the limit for this route is {limit} bytes.",
            code="request_too_large",
        )

    def fault_response(self, status_code: int, headers: Mapping[str, str]) -> httpx.Response:
        """The answer of an injected ``429``/``500``/``502``/``503`` fault. ``502`` is an
        HTML page, as load balancers send; the others use :meth:`error_response`."""
        if status_code == 502:
            html = (
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
            )
            return httpx.Response(
                502, headers={"content-type": "text/html", **headers}, content=html.encode()
            )
        messages = {
            429: ("Rate limit reached (emulated). Please try again later.", "rate_limit_exceeded"),
            500: ("The server had an error while processing your request (emulated).", None),
            503: ("The server is overloaded or not ready yet (emulated).", None),
        }
        message, code = messages.get(status_code, (f"HTTP {status_code} (emulated)", None))
        kind = "requests" if status_code == 429 else None
        return self.error_response(status_code, message, type=kind, code=code, headers=headers)

    def not_found(self, request: httpx.Request, path: str) -> httpx.Response:
        """The answer to a path (or method) this dialect does not serve; ``path`` is the
        provider's own path, without the emulator's mount prefix."""
        return self.error_response(404, f"Invalid URL ({request.method} {path})")


# -- request helpers -----------------------------------------------------------------


def bearer_token(request: httpx.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    value: str | None = request.headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_key(
    dialect: Dialect, engine: Engine, request: httpx.Request, key: str | None
) -> httpx.Response | None:
    """``None`` if ``key``, the API key a request carries however its dialect sends it, is
    acceptable (any key when ``config.api_key`` is unset), otherwise the dialect's 401."""
    expected = engine.config.api_key
    if key is None or (expected is not None and not keys_match(key, expected)):
        return dialect.unauthorized(request, key)
    return None


def keys_match(given: str, expected: str) -> bool:
    """Compare two keys in constant time, so response timing reveals nothing of the key."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def read_json(request: httpx.Request) -> Any:
    """The request body parsed as JSON; raises ``ValueError`` if it is not JSON."""
    try:
        return orjson.loads(request.content)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None


@dataclass(frozen=True, slots=True)
class FormPart:
    """One part of a ``multipart/form-data`` body."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _header_params(value: str) -> dict[str, str]:
    params = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"'):
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[key.lower()] = raw
    return params


def parse_multipart(request: httpx.Request) -> list[FormPart]:
    """The parts of a ``multipart/form-data`` request, in order; raises ``ValueError``
    if the body is not multipart."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ValueError("expected a multipart/form-data body")
    boundary = _header_params(content_type).get("boundary")
    if not boundary:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    body = request.content
    parts: list[FormPart] = []
    chunks = body.split(delimiter)
    # chunks[0] is the preamble; the last chunk starts with "--" (the epilogue).
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("malformed multipart part")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip():
                headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        params = _header_params(disposition)
        if "name" not in params:
            raise ValueError("multipart part without a name")
        parts.append(
            FormPart(
                name=params["name"],
                data=data,
                filename=params.get("filename"),
                content_type=headers.get("content-type"),
            )
        )
    return parts


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def content_response(
    request: httpx.Request,
    data: bytes,
    content_type: str = "application/octet-stream",
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A download of ``data`` honouring a single ``Range: bytes=...`` request header
    (``N-``, ``N-M`` or ``-K``): 206 with ``Content-Range``, or 416 when unsatisfiable."""
    base = {"content-type": content_type, "accept-ranges": "bytes"}
    if headers:
        base.update(headers)
    size = len(data)
    spec = request.headers.get("range")
    if not spec:
        return httpx.Response(200, headers=base, content=data)
    unsatisfiable = {**base, "content-range": f"bytes */{size}"}
    match = _RANGE.match(spec)
    if match is None or (not match.group(1) and not match.group(2)):
        # Unsupported syntax (e.g. several ranges): ignore it, as RFC 9110 allows.
        return httpx.Response(200, headers=base, content=data)
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start >= size or (last and int(last) < start):
            return httpx.Response(416, headers=unsatisfiable, content=b"")
    else:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return httpx.Response(416, headers=unsatisfiable, content=b"")
        start, end = max(0, size - suffix), size - 1
    return httpx.Response(
        206,
        headers={**base, "content-range": f"bytes {start}-{end}/{size}"},
        content=data[start : end + 1],
    )
