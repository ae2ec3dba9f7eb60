"""Serve an :class:`Emulator` over real HTTP/1.1 (standard library only).

Socket-level faults are real here: ``reset`` closes the connection with ``SO_LINGER 0``
(the client sees a TCP RST), ``truncate`` announces the full ``Content-Length`` and then
closes the connection early, ``slow`` holds the answer back for ``slow_delay`` seconds.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

import httpx

from omnibatch.emulator.clock import Clock
from omnibatch.emulator.config import EmulatorConfig
from omnibatch.emulator.core import DialectSpec, Emulator
from omnibatch.emulator.faults import FaultPlan

__all__ = ["EmulatorServer", "UnsafeBindError", "run_server", "serve"]

#: A body refused before it was read is still read and dropped up to this size.
_DRAIN_LIMIT = 256 * 1024
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


class UnsafeBindError(ValueError):
    """Binding a non-loopback address without an API key was refused."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], emulator: Emulator, family: int) -> None:
        self.address_family = family
        self.emulator = emulator
        self.closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), which can hang
        # without DNS; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def drop_connections(self) -> None:
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "omnibatch-emulator"
    sys_version = ""
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # A connection idle this long (between requests or inside one) times out and is
        # closed, which frees its thread.
        self.connection.settimeout(self.server.emulator.config.idle_timeout)
        # Answers are written in one piece; without TCP_NODELAY a small answer can wait
        # for the client's delayed ACK (~40 ms per request).
        with suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler looks up ``do_<METHOD>`` and sends an HTML 501 page when it
        # is missing; every method goes to the emulator, which answers in the dialect's shape.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _declared_length(self) -> int | None:
        """The declared ``Content-Length`` (``None`` for a chunked body); raises
        ``ValueError`` when it is not a non-negative integer."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        raw = (self.headers.get("Content-Length") or "0").strip()
        if not raw.isdigit():
            raise ValueError(f"invalid Content-Length {raw!r}")
        return int(raw)

    def _read_body(self, limit: int) -> bytes | None:
        """The body, or ``None`` when it turns out larger than ``limit`` bytes (a chunked
        body is read chunk by chunk and refused once it passes the limit). Raises
        ``ValueError`` on malformed framing."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(1025)
                if not size_line.endswith(b"\n"):
                    raise ValueError("chunk size line missing or too long")
                digits = size_line.split(b";", 1)[0].strip() or b"0"
                if len(digits) > 16:
                    return None  # a chunk of 2**64 bytes or more
                size = int(digits, 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > limit:
                    return None
                chunks.append(self._read_exact(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = self._declared_length() or 0
        if length > limit:
            return None
        return self._read_exact(length) if length > 0 else b""

    def _answer_unread(self, response: httpx.Response, length: int | None) -> None:
        """Answer before the body was read. A small body is then read and dropped, so the
        connection stays usable (and closing on unread bytes, which sends a TCP RST, cannot
        destroy the answer before the client reads it); a large or chunked one is left
        unread and the connection closed."""
        if length is None or length > _DRAIN_LIMIT:
            self.close_connection = True
        try:
            self._write(response)
            if not self.close_connection and length:
                self._read_exact(length)
        except (ValueError, OSError):
            self.close_connection = True

    def _read_exact(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise ValueError("connection closed before the whole body arrived")
        return data

    def _serve(self) -> None:
        emulator = self.server.emulator
        host = self.headers.get("Host") or f"{self.server.server_name}:{self.server.server_port}"
        try:
            head = httpx.Request(
                self.command, f"http://{host}{self.path}", headers=list(self.headers.items())
            )
            length = self._declared_length()
        except Exception:
            self.close_connection = True
            self._write(httpx.Response(400, content=b"bad request"))
            return
        # Credentials and the declared size are checked before a byte of the body is read.
        early = emulator.preflight(head, length)
        if early is not None:
            self._answer_unread(early, length)
            return
        try:
            body = self._read_body(emulator.body_limit(head))
        except (ValueError, OSError):
            self.close_connection = True
            return
        if body is None:
            self.close_connection = True
            self._write(emulator.too_large(head))
            return
        try:
            request = httpx.Request(
                self.command,
                f"http://{host}{self.path}",
                headers=list(self.headers.items()),
                content=body,
            )
        except Exception:
            self._write(httpx.Response(400, content=b"bad request"))
            return
        outcome = emulator.dispatch(request)
        fault = outcome.fault
        plan = emulator.faults
        try:
            if fault is not None and fault.kind == "reset":
                self._reset()
                return
            if fault is not None and fault.kind == "slow":
                self.server.closing.wait(plan.slow_delay if plan is not None else 2.0)
                if outcome.response is None:
                    self.close_connection = True
                    return
            if outcome.response is None:  # pragma: no cover - only faults produce no response
                self._reset()
                return
            if fault is not None and fault.kind == "truncate":
                fraction = plan.truncate_fraction if plan is not None else 0.5
                self._write(outcome.response, truncate=fraction)
                return
            self._write(outcome.response)
        except OSError:
            self.close_connection = True

    def _write(self, response: httpx.Response, truncate: float | None = None) -> None:
        """Send the status line, headers and body in a single write."""
        body = response.content
        reason = self.responses.get(response.status_code, ("",))[0]
        head = [
            f"{self.protocol_version} {response.status_code} {reason}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
        ]
        for key, value in response.headers.multi_items():
            if key.lower() not in _HOP_BY_HOP:
                head.append(f"{key}: {value}")
        head.append(f"Content-Length: {len(body)}")
        if truncate is not None or self.close_connection:
            head.append("Connection: close")
            self.close_connection = True
        if truncate is not None:
            cut = min(len(body) - 1, int(len(body) * truncate)) if body else 0
            body = body[: max(0, cut)]
        if self.command == "HEAD":
            body = b""  # the headers of the GET answer, without its body
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        self.wfile.write(data)
        self.wfile.flush()

    def _reset(self) -> None:
        """Abort the connection: with SO_LINGER 0, close() sends a TCP RST."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # drop the makefile() reference so close() is real
            self.connection.close()
        except OSError:
            pass


class EmulatorServer:
    """A running emulator server; stop it with :meth:`close` (or use ``with``)."""

    def __init__(self, httpd: _HTTPServer, emulator: Emulator, host: str) -> None:
        self._httpd = httpd
        self.emulator = emulator
        self.host = host
        self.port: int = httpd.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{self.port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"omnibatch-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    @property
    def urls(self) -> dict[str, str]:
        """The base URL each dialect's SDK needs, by dialect name."""
        return self.emulator.base_urls(self.base_url)

    def url(self, dialect: str) -> str:
        """The base URL ``dialect``'s SDK needs (e.g. ``.../openai/v1``)."""
        return self.emulator.base_url(self.base_url, dialect)

    def close(self) -> None:
        """Stop serving and drop open connections."""
        if self._closed:
            return
        self._closed = True
        self._httpd.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.drop_connections()
        self._thread.join(timeout=5)
        self.emulator.save()  # the latest simulated time, for a state directory

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmulatorServer({self.base_url!r})"


def _fault_plan(
    fault_rate: float, seed: int | None, fault_config: str | Path | None
) -> FaultPlan | None:
    if fault_config is None:
        return FaultPlan(rate=fault_rate, seed=seed) if fault_rate > 0 else None
    plan = FaultPlan.from_toml(fault_config)
    if fault_rate > 0 or seed is not None:
        plan = FaultPlan(
            rate=fault_rate if fault_rate > 0 else plan.rate,
            seed=seed if seed is not None else plan.seed,
            kinds=plan.kinds,
            rules=plan.rules,
            retry_after=plan.retry_after,
            slow_delay=plan.slow_delay,
            truncate_fraction=plan.truncate_fraction,
        )
    return plan


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    speed: float = 1.0,
    fault_rate: float = 0.0,
    seed: int | None = None,
    api_key: str | None = None,
    *,
    fault_config: str | Path | None = None,
    faults: FaultPlan | None = None,
    config: EmulatorConfig | None = None,
    clock: Clock | None = None,
    dialects: DialectSpec | None = None,
    emulator: Emulator | None = None,
    state_dir: str | Path | None = None,
) -> EmulatorServer:
    """Start an emulator HTTP server in a background thread and return its handle.

    ``port=0`` picks a free port (see ``.port`` / ``.base_url``). ``speed`` scales all
    simulated durations. ``fault_rate``/``seed``/``fault_config`` (a TOML file) build the
    fault plan unless ``faults`` is given. A host other than loopback is refused unless an
    ``api_key`` is set. Pass ``emulator`` to serve an existing instance (its own config,
    clock and faults are kept). ``state_dir`` keeps files, batches and the clock on disk
    (see :class:`Emulator`).
    """
    if emulator is None:
        if config is None:
            config = EmulatorConfig(speed=speed, seed=seed, api_key=api_key)
        emulator = Emulator(dialects=dialects, config=config, clock=clock, state_dir=state_dir)
        plan = faults if faults is not None else _fault_plan(fault_rate, seed, fault_config)
        if plan is not None:
            emulator.faults = plan
    else:
        if state_dir is not None:
            raise ValueError("pass state_dir to the Emulator you serve, not to serve()")
        if faults is not None:
            emulator.faults = faults
    key = api_key if api_key is not None else emulator.config.api_key
    if not is_loopback(host) and not key:
        raise UnsafeBindError(
            f"refusing to serve the emulator on non-loopback address {host!r} without an API "
            "key: anyone who can reach it could use it. Bind 127.0.0.1, or set an API key "
            "(--api-key / api_key=...)."
        )
    if api_key is not None and emulator.config.api_key is None:
        emulator.config.api_key = api_key
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    httpd = _HTTPServer((host.strip("[]"), port), emulator, family)
    return EmulatorServer(httpd, emulator, host.strip("[]"))


@contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_server(
    host: str = "127.0.0.1",
    port: int = 8080,
    speed: float = 1.0,
    fault_rate: float = 0.0,
    seed: int | None = None,
    api_key: str | None = None,
    fault_config: str | Path | None = None,
    *,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
    state_dir: str | Path | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (or until ``stop`` is set); the CLI's
    ``omnibatch emulator serve``. Prints ``<dialect> <base URL>`` per dialect once
    listening. ``state_dir`` keeps the state on disk across restarts. Returns the exit
    code (0)."""
    server = serve(
        host, port, speed, fault_rate, seed, api_key, fault_config=fault_config, state_dir=state_dir
    )
    stream = out if out is not None else sys.stdout
    stop = stop if stop is not None else threading.Event()
    with server, _signals(stop):
        width = max(len(name) for name in server.urls) if server.urls else 0
        for name, url in server.urls.items():
            print(f"{name.ljust(width)}   {url}", file=stream, flush=True)
        while not stop.wait(0.2):
            pass
    return 0
