"""The HTTP layer: retries with backoff and Retry-After, error mapping, secrets kept out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from omnibatch import (
    AuthenticationError,
    BatchClient,
    NotFoundError,
    ProviderConnectionError,
    ProviderServerError,
    RateLimitError,
    RetryPolicy,
)
from omnibatch._lifecycle import IDEMPOTENCY_KEY

KEY = "sk-test-NEVER-SHOW-ME-123"

BATCH = {
    "id": "batch_1",
    "object": "batch",
    "endpoint": "/v1/chat/completions",
    "input_file_id": "file-1",
    "completion_window": "24h",
    "status": "in_progress",
    "created_at": 1_700_000_000,
    "request_counts": {"total": 2, "completed": 1, "failed": 0},
}


class Script:
    """A MockTransport handler answering from a list of steps, recording every request."""

    def __init__(self, steps: list[Callable[[httpx.Request], httpx.Response]]) -> None:
        self.steps = steps
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        return step(request)


def reply(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(
        status, json=body if body is not None else {}, headers=headers
    )


def reset(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset by peer", request=request)


def client(script: Script, sleeps: list[float], **kwargs: Any) -> BatchClient:
    return BatchClient(
        "openai",
        api_key=KEY,
        base_url="https://api.test/v1",
        transport=httpx.MockTransport(script),
        sleep=sleeps.append,
        seed=1,
        **kwargs,
    )


def test_get_retries_5xx_and_resets_with_backoff() -> None:
    sleeps: list[float] = []
    script = Script([reply(503), reset, reply(500), reply(200, BATCH)])
    with client(script, sleeps) as c:
        batch = c.retrieve("batch_1")
    assert batch.id == "batch_1"
    assert len(script.requests) == 4
    assert len(sleeps) == 3
    # exponential with jitter: each delay within [ceiling/2, ceiling]
    for attempt, delay in enumerate(sleeps, start=1):
        ceiling = 0.5 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling


def test_retry_after_is_honoured() -> None:
    sleeps: list[float] = []
    script = Script(
        [reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"}), reply(200, BATCH)]
    )
    with client(script, sleeps) as c:
        c.retrieve("batch_1")
    assert sleeps == [7.0]


def test_gives_up_after_max_attempts_with_the_mapped_error() -> None:
    sleeps: list[float] = []
    script = Script([reply(502, {"error": {"message": "bad gateway"}}, {"x-request-id": "req_9"})])
    with (
        client(script, sleeps, retry=RetryPolicy(max_attempts=3)) as c,
        pytest.raises(ProviderServerError) as info,
    ):
        c.retrieve("batch_1")
    assert len(script.requests) == 3 and len(sleeps) == 2
    err = info.value
    assert err.status_code == 502 and err.request_id == "req_9" and err.provider == "openai"
    assert "bad gateway" in str(err)


@pytest.mark.parametrize(("status", "exc"), [(401, AuthenticationError), (404, NotFoundError)])
def test_client_errors_are_not_retried(status: int, exc: type[Exception]) -> None:
    sleeps: list[float] = []
    body = {"error": {"message": "nope", "code": "invalid_api_key"}}
    script = Script([reply(status, body)])
    with client(script, sleeps) as c, pytest.raises(exc) as info:
        c.retrieve("batch_1")
    assert len(script.requests) == 1 and sleeps == []
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in repr(info.value.__dict__)


def test_409_is_not_retried() -> None:
    sleeps: list[float] = []
    script = Script([reply(409, {"error": {"message": "conflict"}})])
    with client(script, sleeps) as c, pytest.raises(Exception, match="conflict"):
        c.cancel("batch_1")
    assert len(script.requests) == 1


def test_rate_limit_error_carries_retry_after_when_exhausted() -> None:
    sleeps: list[float] = []
    script = Script([reply(429, {"error": {"message": "quota"}}, {"Retry-After": "2"})])
    with (
        client(script, sleeps, retry=RetryPolicy(max_attempts=2)) as c,
        pytest.raises(RateLimitError) as info,
    ):
        c.retrieve("batch_1")
    assert info.value.retry_after == 2.0


def test_key_is_sent_but_never_shown() -> None:
    sleeps: list[float] = []
    script = Script([reset])
    with client(script, sleeps, retry=RetryPolicy(max_attempts=1)) as c:
        assert KEY not in repr(c) and KEY not in repr(c.adapter)
        with pytest.raises(ProviderConnectionError) as info:
            c.retrieve("batch_1")
    assert script.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(info.value) and KEY not in repr(info.value.__dict__)


def test_create_is_not_resent_blindly_after_a_lost_response() -> None:
    """The create reached the provider but its answer was lost: the client finds the batch by
    its idempotency key instead of creating a second one."""
    created: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/files"):
            return httpx.Response(200, json={"id": "file-1", "object": "file"})
        if request.method == "POST" and request.url.path.endswith("/batches"):
            body = json.loads(request.content)
            created.append({**BATCH, "metadata": body["metadata"], "status": "validating"})
            raise httpx.ReadError("connection reset", request=request)
        if request.method == "GET" and request.url.path.endswith("/batches"):
            return httpx.Response(200, json={"object": "list", "data": created, "has_more": False})
        raise AssertionError(f"unexpected {request.method} {request.url}")

    sleeps: list[float] = []
    with BatchClient(
        "openai",
        api_key=KEY,
        base_url="https://api.test/v1",
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
    ) as c:
        batch = c.submit(
            [{"custom_id": "a", "body": {"model": "m", "messages": []}}], metadata={"team": "eval"}
        )
    assert len(created) == 1
    assert batch.metadata["team"] == "eval"
    assert batch.metadata[IDEMPOTENCY_KEY] == created[0]["metadata"][IDEMPOTENCY_KEY]


def test_create_retried_when_reconcile_finds_nothing() -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/files"):
            return httpx.Response(200, json={"id": "file-1"})
        if request.method == "POST":
            attempts.append(1)
            if len(attempts) == 1:
                return httpx.Response(500, json={"error": {"message": "boom"}})
            body = json.loads(request.content)
            return httpx.Response(200, json={**BATCH, "metadata": body["metadata"]})
        return httpx.Response(200, json={"object": "list", "data": [], "has_more": False})

    with BatchClient(
        "openai",
        api_key=KEY,
        base_url="https://api.test/v1",
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
    ) as c:
        batch = c.submit([{"custom_id": "a", "body": {"model": "m", "messages": []}}])
    assert len(attempts) == 2 and batch.id == "batch_1"


def test_the_api_key_goes_only_to_the_provider_s_own_origin() -> None:
    """A pre-signed link on another host (Cohere's dataset parts) gets no credentials."""
    from omnibatch import BatchClient
    from omnibatch.flows import HttpRequest

    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[str(request.url)] = request.headers.get("authorization")
        return httpx.Response(200, content=b"{}")

    def flow() -> Any:
        yield HttpRequest("GET", "/batches")
        yield HttpRequest("GET", "https://api.openai.com/v1/files/x/content")
        yield HttpRequest("GET", "https://storage.example.com/part-0.avro?sig=abc")
        yield HttpRequest("GET", "http://api.openai.com/v1/batches")  # another scheme
        yield HttpRequest("GET", "https://api.openai.com.evil.example/v1/batches")
        return None

    with BatchClient(
        "openai", api_key="sk-origin-test", transport=httpx.MockTransport(handler)
    ) as client:
        client.run(flow())
    assert seen == {
        "https://api.openai.com/v1/batches": "Bearer sk-origin-test",
        "https://api.openai.com/v1/files/x/content": "Bearer sk-origin-test",
        "https://storage.example.com/part-0.avro?sig=abc": None,
        "http://api.openai.com/v1/batches": None,
        "https://api.openai.com.evil.example/v1/batches": None,
    }


def test_request_lines_at_info_and_retry_reasons_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    sleeps: list[float] = []
    script = Script(
        [
            reply(429, {"error": {"message": "slow", "code": "rate_limit"}}, {"Retry-After": "3"}),
            reset,
            reply(200, BATCH),
        ]
    )
    with caplog.at_level(logging.DEBUG, logger="omnibatch"), client(script, sleeps) as c:
        c.retrieve("batch_1")
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("GET https://api.test/v1/batches/batch_1" in m and "-> HTTP 429" in m for m in info)
    assert any("-> ReadError" in m for m in info)
    assert any("-> HTTP 200 (" in m for m in info)
    retry_429, retry_reset = (m for m in debug if m.startswith("retrying"))
    assert "in 3.00 s (attempt 2 of" in retry_429
    assert "HTTP 429 RateLimitError (rate_limit), Retry-After 3 s" in retry_429
    assert "(attempt 3 of" in retry_reset and "ProviderConnectionError" in retry_reset
    assert all(KEY not in r.getMessage() for r in caplog.records)
