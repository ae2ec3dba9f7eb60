"""The served emulator holds up against abusive clients: it checks keys before reading a
body, caps bodies per route, refuses absurd lengths and chunk sizes, closes idle
connections, compares keys in constant time and keeps keys out of its request log; and
after each of these it still serves, with its memory bounded."""

from __future__ import annotations

import hmac
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer, ManualClock, serve
from omnibatch_anthropic.dialect import AnthropicDialect
from omnibatch_gemini.dialect import GeminiDialect
from omnibatch_mistral.dialect import MistralDialect
from omnibatch_openai.dialect import OpenAIDialect

KEY = "secret-key"
CAP = 1024 * 1024
ALL = (OpenAIDialect, MistralDialect, AnthropicDialect, GeminiDialect)


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no /proc/self/status on this system")


@pytest.fixture
def locked() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(api_key=KEY, max_body_bytes=CAP, idle_timeout=0.5)
    with serve(emulator=Emulator(ALL, config=config, clock=ManualClock())) as server:
        yield server


def _exchange(port: int, head: bytes, body: bytes = b"", *, timeout: float = 10) -> bytes:
    """Send ``head`` (and ``body``), return what the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        return received


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _still_serving(server: EmulatorServer) -> None:
    with httpx.Client(base_url=server.url("openai"), timeout=10) as client:
        answer = client.get("/batches", headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200 and answer.json()["object"] == "list"


def _upload_head(length: str, auth: bool = True, path: str = "/openai/v1/files") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: multipart/form-data; boundary=b"]
    if auth:
        lines.append(f"Authorization: Bearer {KEY}")
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_abusive_requests_are_refused_unread_and_the_server_keeps_serving(
    locked: EmulatorServer,
) -> None:
    before = _rss()
    big = str(200 * 1024 * 1024)
    # No key: refused before the 200 MB body is read (only the headers were sent).
    answer = _exchange(locked.port, _upload_head(big, auth=False))
    assert _status(answer) == 401 and b"invalid_api_key" in answer
    _still_serving(locked)
    # A wrong key is the same, for every dialect's way of sending it.
    wrong = _upload_head(big, auth=False).replace(b"Host: x", b"Host: x\r\nx-api-key: nope")
    wrong = wrong.replace(b"/openai/v1/files", b"/anthropic/v1/messages/batches")
    assert _status(_exchange(locked.port, wrong)) == 401
    # Gemini's upload bytes carry no key: an unknown upload session is refused unread.
    session = _upload_head(big, auth=False, path="/gemini/upload/v1beta/files?upload_id=nope")
    assert _status(_exchange(locked.port, session)) == 404
    # With the key, over the route's cap: 413 in the dialect's shape, unread.
    answer = _exchange(locked.port, _upload_head(big))
    assert _status(answer) == 413 and b"request_too_large" in answer
    # An absurd Content-Length is a 413, not a MemoryError.
    assert _status(_exchange(locked.port, _upload_head(str(10**30)))) == 413
    # A Content-Length that is no number is a 400.
    assert _status(_exchange(locked.port, _upload_head("12abc"))) == 400
    _still_serving(locked)

    chunked = (
        "POST /openai/v1/batches HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    # A chunk size of 2**80 bytes, and chunks that add up past the cap.
    assert _status(_exchange(locked.port, chunked, b"100000000000000000000\r\n")) == 413
    piece = b"x" * 65536
    many = b"".join(b"10000\r\n" + piece + b"\r\n" for _ in range(CAP // len(piece) + 2))
    assert _status(_exchange(locked.port, chunked, many + b"0\r\n\r\n")) == 413
    # A body under the cap is still read and answered.
    small = b'{"input_file_id": "file-nope", "endpoint": "/v1/chat/completions"}'
    ok = b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)
    closing = chunked.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    answer = _exchange(locked.port, closing, ok)
    assert _status(answer) == 400 and b"completion_window" in answer  # the body was parsed
    _still_serving(locked)
    assert _rss() - before < 64 * 1024 * 1024


def test_route_caps_follow_the_providers() -> None:
    emulator = Emulator(ALL, clock=ManualClock())

    def limit(method: str, url: str) -> int:
        return emulator.body_limit(httpx.Request(method, f"http://e{url}"))

    mib = 1024 * 1024
    assert limit("POST", "/openai/v1/files") == 512 * mib
    assert limit("POST", "/openai/v1/batches") == 64 * mib
    assert limit("POST", "/mistral/v1/files") == 512 * mib
    assert limit("POST", "/anthropic/v1/messages/batches") == 256 * mib
    assert limit("POST", "/gemini/upload/v1beta/files") == 2048 * mib
    assert limit("POST", "/gemini/v1beta/models/m:batchGenerateContent") == 40 * mib
    assert limit("POST", "/nowhere") == 64 * 1024
    # The configured ceiling lowers every route's cap.
    capped = Emulator(ALL, config=EmulatorConfig(max_body_bytes=10), clock=ManualClock())
    assert capped.body_limit(httpx.Request("POST", "http://e/openai/v1/files")) == 10
    # In process too: a body over the cap is a 413 before the dialect sees it.
    with capped.client("openai", headers={"Authorization": "Bearer k"}) as client:
        answer = client.post("/batches", content=b"x" * 11)
    assert answer.status_code == 413
    assert capped.stats.creates["openai"] == 0


def test_idle_connections_are_closed_and_free_their_threads(locked: EmulatorServer) -> None:
    baseline = threading.active_count()
    sockets = [socket.create_connection(("127.0.0.1", locked.port)) for _ in range(60)]
    try:
        # A half-sent request is idle too.
        sockets[0].sendall(b"GET /openai/v1/batches HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + 10
        while threading.active_count() < baseline + 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        for sock in sockets:
            sock.settimeout(10)
            assert sock.recv(1) == b""  # the server closed it
        deadline = time.monotonic() + 10
        while threading.active_count() > baseline + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= baseline + 2
    finally:
        for sock in sockets:
            sock.close()
    _still_serving(locked)


def test_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    emulator = Emulator(ALL, config=EmulatorConfig(api_key=KEY), clock=ManualClock())
    with httpx.Client(transport=emulator.transport(), base_url="http://e") as client:
        assert client.get("/openai/v1/batches", headers={"Authorization": "Bearer no"}).status_code
        assert client.get("/gemini/v1beta/batches", params={"key": KEY}).status_code == 200
    assert (b"no", KEY.encode()) in calls and (KEY.encode(), KEY.encode()) in calls


def test_the_request_log_redacts_keys_in_the_query() -> None:
    emulator = Emulator(ALL, clock=ManualClock())
    with httpx.Client(transport=emulator.transport(), base_url="http://e") as client:
        client.get("/gemini/v1beta/batches", params={"key": "AIza-very-secret", "pageSize": 2})
    (record,) = emulator.stats.requests
    assert "AIza-very-secret" not in record.query
    assert "key=<redacted>" in record.query and "pageSize=2" in record.query


def test_a_small_refused_body_keeps_the_connection_usable(locked: EmulatorServer) -> None:
    head = (
        b"POST /openai/v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    follow = f"GET /openai/v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
    follow += "Connection: close\r\n\r\n"
    # Both requests on one connection: the refused one's body is dropped, the next is served.
    answer = _exchange(locked.port, head, follow.encode())
    assert answer.count(b"HTTP/1.1 ") == 2
    assert answer.startswith(b"HTTP/1.1 401") and b"HTTP/1.1 200" in answer
