"""Fault plans: matching, seeding, configuration files, and in-process injection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnibatch.emulator import (
    FAULT_KINDS,
    Dialect,
    Emulator,
    EmulatorConfig,
    Engine,
    FaultPlan,
    FaultRule,
    HTTPErrorResponse,
    ManualClock,
    ScaledClock,
)
from omnibatch_mistral.dialect import MistralDialect
from omnibatch_openai.dialect import OpenAIDialect

from ._support import AUTH, chat_line, jsonl

MakeBatch = Callable[..., dict[str, Any]]


def create_body(oai: httpx.Client) -> dict[str, Any]:
    up = oai.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", jsonl([chat_line("a")]))}
    )
    assert up.status_code == 200
    return {
        "input_file_id": up.json()["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }


def batches_on_server(oai: httpx.Client) -> int:
    return len(oai.get("/batches").json()["data"])


# -- clocks -----------------------------------------------------------------------------------


def test_manual_clock_only_moves_when_told() -> None:
    clock = ManualClock(100.0)
    assert clock.now() == 100.0 and clock.speed == 1.0
    clock.advance(2.5)
    assert clock.now() == 102.5
    clock.set(200)
    assert clock.now() == 200
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(10)


def test_scaled_clock_runs_faster_than_wall_time() -> None:
    import time

    clock = ScaledClock(1000, start=0.0)
    before = clock.now()
    time.sleep(0.05)
    elapsed = clock.now() - before
    assert 40 <= elapsed <= 1000  # ~50 simulated seconds for 50 ms
    clock.advance(3600)
    assert clock.now() - before >= 3600
    with pytest.raises(ValueError):
        ScaledClock(0)


# -- plans --------------------------------------------------------------------------------------


def test_rule_route_matching() -> None:
    create = FaultRule("POST */v1/batches", "500")
    assert create.matches("POST", "/openai/v1/batches")
    assert create.matches("post", "/openai/v1/batches")
    assert not create.matches("GET", "/openai/v1/batches")
    assert not create.matches("POST", "/openai/v1/batches/b/cancel")
    download = FaultRule("*/content", "truncate")
    assert download.matches("GET", "/mistral/v1/files/x/content")
    assert not download.matches("GET", "/mistral/v1/files/x")
    regex = FaultRule(r"re:^(GET|DELETE) /openai/v1/files/file-\w+$", "503")
    assert regex.matches("DELETE", "/openai/v1/files/file-abc")
    assert not regex.matches("POST", "/openai/v1/files/file-abc")
    with pytest.raises(ValueError):
        FaultRule("*", "teapot")
    with pytest.raises(ValueError):
        FaultRule("*", "500", when="during")
    with pytest.raises(ValueError):
        FaultRule("*", "500", rate=2)


def test_rules_fire_a_limited_number_of_times_and_in_order() -> None:
    plan = FaultPlan(rules=[FaultRule("GET *", "503", times=2), FaultRule("GET *", "500")])
    kinds = [d.kind if (d := plan.decide("GET", "/x")) else None for _ in range(4)]
    assert kinds == ["503", "503", "500", "500"]
    assert plan.decide("POST", "/x") is None
    plan.reset()
    assert [d.kind for d in (plan.decide("GET", "/x"), plan.decide("GET", "/x")) if d] == [
        "503",
        "503",
    ]


def test_fixed_timings() -> None:
    plan = FaultPlan(
        rules=[FaultRule("*", "429", when="after"), FaultRule("*", "truncate", when="before")]
    )
    decision = plan.decide("GET", "/a")
    assert decision is not None and (decision.kind, decision.when) == ("429", "before")
    plan.rules[0].times = 0
    decision = plan.decide("GET", "/a/content")
    assert decision is not None and (decision.kind, decision.when) == ("truncate", "after")


def _sequence(plan: FaultPlan, n: int = 300) -> list[tuple[str, str] | None]:
    out: list[tuple[str, str] | None] = []
    for i in range(n):
        path = "/openai/v1/files/f/content" if i % 3 == 0 else "/openai/v1/batches"
        d = plan.decide("GET", path)
        out.append((d.kind, d.when) if d else None)
    return out


def test_random_mix_is_seeded_and_reproducible() -> None:
    first = _sequence(FaultPlan(rate=0.3, seed=42))
    assert first == _sequence(FaultPlan(rate=0.3, seed=42))
    assert first != _sequence(FaultPlan(rate=0.3, seed=43))
    hits = [x for x in first if x]
    assert 50 <= len(hits) <= 130  # ~30 % of 300
    assert {k for k, _ in hits} == set(FAULT_KINDS)
    assert {w for _, w in hits} == {"before", "after"}


def test_random_mix_truncates_only_downloads() -> None:
    plan = FaultPlan(rate=1.0, seed=1, kinds=["truncate"])
    assert plan.decide("GET", "/openai/v1/batches") is None
    decision = plan.decide("GET", "/openai/v1/files/x/content")
    assert decision is not None and decision.kind == "truncate"


def test_fault_plan_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(
        """
rate = 0.25
seed = 9
kinds = ["500", "reset"]
retry_after = 3.0
slow_delay = 0.1

[[rules]]
route = "POST */v1/batches"
kind = "502"
when = "after"
times = 1

[[rules]]
route = "re:/content$"
kind = "truncate"
rate = 0.5
""",
        encoding="utf-8",
    )
    plan = FaultPlan.from_toml(path)
    assert (plan.rate, plan.seed, plan.kinds) == (0.25, 9, ("500", "reset"))
    assert (plan.retry_after, plan.slow_delay) == (3.0, 0.1)
    assert [(r.route, r.kind, r.when, r.times, r.rate) for r in plan.rules] == [
        ("POST */v1/batches", "502", "after", 1, 1.0),
        ("re:/content$", "truncate", "any", None, 0.5),
    ]
    first = plan.decide("POST", "/openai/v1/batches")
    assert first is not None and (first.kind, first.when) == ("502", "after")
    nested = FaultPlan.from_dict({"faults": {"rate": 0.5, "seed": 1}})
    assert (nested.rate, nested.seed) == (0.5, 1)
    with pytest.raises(ValueError, match="unknown fault configuration keys"):
        FaultPlan.from_dict({"rat": 0.1})
    with pytest.raises(ValueError, match="route and a kind"):
        FaultPlan.from_dict({"rules": [{"kind": "500"}]})


# -- in-process injection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "when", "error"),
    [
        ("reset", "before", httpx.ConnectError),
        ("reset", "after", httpx.ReadError),
        ("slow", "before", httpx.ReadTimeout),
        ("slow", "after", httpx.ReadTimeout),
    ],
)
def test_transport_faults_raise_httpx_errors_before_or_after_processing(
    kind: str, when: str, error: type[Exception], oai: httpx.Client, emulator: Emulator
) -> None:
    body = create_body(oai)
    emulator.faults = FaultPlan(rules=[FaultRule("POST */v1/batches", kind, when=when, times=1)])
    with pytest.raises(httpx.TransportError) as raised:
        oai.post("/batches", json=body)
    assert type(raised.value) is error
    expected = 1 if when == "after" else 0
    assert emulator.stats.creates["openai"] == expected
    assert batches_on_server(oai) == expected
    assert emulator.stats.faults[f"{kind}:{when}"] == 1
    assert oai.post("/batches", json=body).status_code == 200  # the rule fired once


@pytest.mark.parametrize(
    ("kind", "when"),
    [("500", "before"), ("500", "after"), ("503", "before"), ("503", "after"), ("502", "after")],
)
def test_http_faults_answer_in_the_dialect_shape(
    kind: str, when: str, oai: httpx.Client, emulator: Emulator
) -> None:
    body = create_body(oai)
    emulator.faults = FaultPlan(rules=[FaultRule("POST */v1/batches", kind, when=when, times=1)])
    response = oai.post("/batches", json=body)
    assert response.status_code == int(kind)
    if kind == "502":
        assert response.headers["content-type"] == "text/html"
        assert b"502 Bad Gateway" in response.content
    else:
        error = response.json()["error"]
        assert error["type"] == "server_error" and error["message"]
    assert batches_on_server(oai) == (1 if when == "after" else 0)


def test_429_carries_a_scaled_retry_after(
    oai: httpx.Client, mis: httpx.Client, emulator: Emulator
) -> None:
    emulator.faults = FaultPlan(rules=[FaultRule("GET *", "429", times=2)], retry_after=2.0)
    limited = oai.get("/batches")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2" and limited.headers["retry-after-ms"] == "2000"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    mistral = mis.get("/batch/jobs")
    assert mistral.status_code == 429 and mistral.json()["object"] == "error"

    fast = Emulator([OpenAIDialect], EmulatorConfig(), ScaledClock(100))
    fast.faults = FaultPlan(rules=[FaultRule("*", "429")], retry_after=30.0)
    with httpx.Client(transport=fast.transport(), base_url="http://e/openai/v1", headers=AUTH) as c:
        scaled = c.get("/batches")
    assert scaled.headers["retry-after"] == "0" and scaled.headers["retry-after-ms"] == "300"


def test_truncated_download_raises_midway_and_can_resume_with_range(
    oai: httpx.Client, emulator: Emulator
) -> None:
    data = b"".join(b"line %04d of the file\n" % i for i in range(200))
    file_id = oai.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", data)}
    ).json()["id"]
    emulator.faults = FaultPlan(
        rules=[FaultRule("*/content", "truncate", times=1)], truncate_fraction=0.4
    )
    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        oai.stream("GET", f"/files/{file_id}/content") as response,
    ):
        assert response.headers["content-length"] == str(len(data))
        for chunk in response.iter_raw():
            received += chunk
    assert 0 < len(received) < len(data)
    assert bytes(received) == data[: len(received)]
    rest = oai.get(f"/files/{file_id}/content", headers={"Range": f"bytes={len(received)}-"})
    assert rest.status_code == 206
    assert bytes(received) + rest.content == data


@pytest.mark.anyio
async def test_faults_reach_async_clients(emulator: Emulator) -> None:
    emulator.faults = FaultPlan(
        rules=[FaultRule("*", "reset", when="after", times=1), FaultRule("*/content", "truncate")]
    )
    async with httpx.AsyncClient(
        transport=emulator.transport(), base_url="http://e/openai/v1", headers=AUTH
    ) as client:
        with pytest.raises(httpx.ReadError):
            await client.get("/files")
        up = await client.post(
            "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", b"x" * 100)}
        )
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"/files/{up.json()['id']}/content")


def _run_mix(seed: int) -> list[str]:
    emu = Emulator([OpenAIDialect, MistralDialect], EmulatorConfig(seed=0), ManualClock())
    emu.faults = FaultPlan(rate=0.4, seed=seed)
    outcomes = []
    with httpx.Client(transport=emu.transport(), base_url="http://e", headers=AUTH) as c:
        for i in range(60):
            path = "/openai/v1/batches" if i % 2 else "/mistral/v1/batch/jobs"
            try:
                outcomes.append(str(c.get(path).status_code))
            except httpx.TransportError as exc:
                outcomes.append(type(exc).__name__)
    return outcomes


def test_seeded_fault_mix_gives_the_same_run_twice() -> None:
    first = _run_mix(5)
    assert first == _run_mix(5)
    assert first != _run_mix(6)
    assert "200" in first and len(set(first)) >= 4


# -- the emulator's routing and the Dialect base class -------------------------------------------


class EchoDialect(Dialect):
    name = "echo"
    prefix = "/echo"
    base_url_suffix = "/v9"

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        denied = self.check_auth(engine, request)
        if denied is not None:
            return denied
        if path == "/v9/ping":
            return self.json_response({"pong": engine.now()})
        if path == "/v9/teapot":
            raise HTTPErrorResponse(self.error_response(418, "short and stout", code="teapot"))
        if path == "/v9/crash":
            raise RuntimeError("boom")
        return self.not_found(request, path)


def test_a_third_party_dialect_is_routed_by_prefix(clock: ManualClock) -> None:
    emu = Emulator([EchoDialect, OpenAIDialect], EmulatorConfig(), clock)
    assert emu.base_urls("http://h") == {"echo": "http://h/echo/v9", "openai": "http://h/openai/v1"}
    with httpx.Client(transport=emu.transport(), base_url="http://h", headers=AUTH) as c:
        assert c.get("/echo/v9/ping").json() == {"pong": clock.now()}
        teapot = c.get("/echo/v9/teapot")
        assert teapot.status_code == 418 and teapot.json()["error"]["code"] == "teapot"
        crash = c.get("/echo/v9/crash")
        assert crash.status_code == 500 and "boom" in crash.json()["error"]["message"]
        assert c.get("/echo/v9/nothing").status_code == 404
        assert c.get("/echoes/v9/ping").status_code == 404  # prefixes match whole segments
        assert c.get("/", headers={}).json() == {
            "object": "omnibatch.emulator",
            "dialects": {"echo": "/echo/v9", "openai": "/openai/v1"},
        }
        assert c.get("/echo/v9/ping", headers={"Authorization": ""}).status_code == 401


def test_dialect_names_and_prefixes_must_be_unique(clock: ManualClock) -> None:
    class Shadow(EchoDialect):
        name = "shadow"

    with pytest.raises(ValueError, match="share the prefix"):
        Emulator([EchoDialect, Shadow], clock=clock)
    with pytest.raises(ValueError, match="named 'echo'"):
        Emulator([EchoDialect, EchoDialect()], clock=clock)


def test_default_dialects_come_from_the_plugin_registry() -> None:
    emu = Emulator(clock=ManualClock())
    assert {"openai", "mistral"} <= set(emu.dialects)
    assert isinstance(emu.dialects["openai"], OpenAIDialect)
