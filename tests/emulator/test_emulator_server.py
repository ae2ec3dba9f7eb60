"""The emulator over a real socket: lifecycle, keep-alive, socket-level faults, binding
rules, run_server and its signals, the pytest plugin."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnibatch.emulator import (
    Emulator,
    EmulatorServer,
    FaultPlan,
    FaultRule,
    UnsafeBindError,
    run_server,
    serve,
)
from omnibatch_mistral.dialect import MistralDialect
from omnibatch_openai.dialect import OpenAIDialect

from ._support import AUTH, chat_line, jsonl, read_jsonl

DIALECTS = [OpenAIDialect, MistralDialect]
REPO = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(
    [str(REPO / "src"), str(REPO / "providers" / "openai"), str(REPO / "providers" / "mistral")]
    + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
)


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url("openai"), headers=AUTH, timeout=5) as client:
        yield client


def _create(client: httpx.Client, n: int = 10) -> dict[str, Any]:
    data = jsonl([chat_line(f"r{i}") for i in range(n)])
    file_id = client.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", data)}
    ).json()["id"]
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    response = client.post("/batches", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_urls_of_the_server(server: EmulatorServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert server.port > 0
    assert server.urls == {
        "openai": f"{server.base_url}/openai/v1",
        "mistral": f"{server.base_url}/mistral",
    }


def test_openai_lifecycle_over_a_socket(http: httpx.Client, emulator: Emulator) -> None:
    batch = _create(http, 50)
    emulator.advance(0.55)
    running = http.get(f"/batches/{batch['id']}").json()
    assert running["status"] == "in_progress" and running["request_counts"]["completed"] == 20
    emulator.advance(1)
    done = http.get(f"/batches/{batch['id']}").json()
    assert done["status"] == "completed"
    lines = read_jsonl(http.get(f"/files/{done['output_file_id']}/content").content)
    assert len(lines) == 50


def test_mistral_lifecycle_over_a_socket(server: EmulatorServer, emulator: Emulator) -> None:
    with httpx.Client(base_url=server.url("mistral") + "/v1", headers=AUTH) as client:
        body = {
            "endpoint": "/v1/chat/completions",
            "model": "m",
            "requests": [{"custom_id": "0", "body": {"messages": []}}],
        }
        job = client.post("/batch/jobs", json=body).json()
        emulator.complete(job["id"])
        done = client.get(f"/batch/jobs/{job['id']}").json()
        assert done["status"] == "SUCCESS"
        download = client.get(f"/files/{done['output_file']}/content")
        assert download.headers["content-type"] == "application/octet-stream"
        assert read_jsonl(download.content)[0]["custom_id"] == "0"


def test_keep_alive_serves_several_requests_on_one_connection(server: EmulatorServer) -> None:
    request = (
        f"GET /openai/v1/batches HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Authorization: Bearer k\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(request)
            status = reader.readline()
            assert status.startswith(b"HTTP/1.1 200")
            length = 0
            while (header := reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode().partition(":")
                assert name.lower() != "connection" or value.strip().lower() != "close"
                if name.lower() == "content-length":
                    length = int(value)
            assert b'"object":"list"' in reader.read(length)
        reader.close()


def test_chunked_request_bodies_are_accepted(http: httpx.Client) -> None:
    data = jsonl([chat_line("a")])
    boundary = "xyz"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    response = http.post(
        "/files",
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["bytes"] == len(data)


@pytest.mark.parametrize(("when", "created"), [("before", 0), ("after", 1)])
def test_reset_is_a_real_connection_reset(
    when: str, created: int, http: httpx.Client, emulator: Emulator
) -> None:
    data = jsonl([chat_line("a")])
    file_id = http.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", data)}
    ).json()["id"]
    emulator.faults = FaultPlan(rules=[FaultRule("POST */v1/batches", "reset", when=when, times=1)])
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    with pytest.raises(httpx.ReadError, match="reset"):
        http.post("/batches", json=body)
    assert emulator.stats.creates["openai"] == created
    assert len(http.get("/batches").json()["data"]) == created


@pytest.mark.parametrize(("when", "created"), [("before", 0), ("after", 1)])
def test_slow_answers_time_the_client_out(
    when: str, created: int, server: EmulatorServer, emulator: Emulator
) -> None:
    emulator.faults = FaultPlan(
        rules=[FaultRule("POST */v1/batches", "slow", when=when, times=1)], slow_delay=0.6
    )
    with httpx.Client(base_url=server.url("openai"), headers=AUTH, timeout=0.2) as client:
        data = jsonl([chat_line("a")])
        file_id = client.post(
            "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", data)}
        ).json()["id"]
        body = {
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.post("/batches", json=body)
        assert time.monotonic() - started < 0.55
        assert len(client.get("/batches").json()["data"]) == created


def test_slow_answer_arrives_late_for_a_patient_client(
    server: EmulatorServer, emulator: Emulator
) -> None:
    emulator.faults = FaultPlan(
        rules=[FaultRule("GET *", "slow", when="after", times=1)], slow_delay=0.3
    )
    with httpx.Client(base_url=server.url("openai"), headers=AUTH, timeout=5) as client:
        started = time.monotonic()
        assert client.get("/batches").status_code == 200
        assert time.monotonic() - started >= 0.3


def test_truncated_download_over_a_socket_then_resume(
    http: httpx.Client, emulator: Emulator
) -> None:
    data = b"".join(b'{"line": %d}\n' % i for i in range(500))
    file_id = http.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", data)}
    ).json()["id"]
    emulator.faults = FaultPlan(
        rules=[FaultRule("*/content", "truncate", times=1)], truncate_fraction=0.3
    )
    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("GET", f"/files/{file_id}/content") as response,
    ):
        assert response.headers["content-length"] == str(len(data))
        for chunk in response.iter_raw():
            received += chunk
    assert len(received) == int(len(data) * 0.3)
    rest = http.get(f"/files/{file_id}/content", headers={"Range": f"bytes={len(received)}-"})
    assert rest.status_code == 206
    assert bytes(received) + rest.content == data


@pytest.mark.parametrize("kind", ["429", "500", "502", "503"])
def test_http_faults_over_a_socket(kind: str, http: httpx.Client, emulator: Emulator) -> None:
    emulator.faults = FaultPlan(rules=[FaultRule("GET */v1/batches", kind, times=1)])
    response = http.get("/batches")
    assert response.status_code == int(kind)
    if kind == "429":
        assert response.headers["retry-after"] == "1"
    assert http.get("/batches").status_code == 200


def test_fault_config_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(
        '[[rules]]\nroute = "GET */v1/batches"\nkind = "503"\ntimes = 1\n', encoding="utf-8"
    )
    with serve(dialects=DIALECTS, fault_config=path, fault_rate=0.0, seed=3) as srv:
        assert srv.emulator.faults is not None and srv.emulator.faults.seed == 3
        with httpx.Client(base_url=srv.url("openai"), headers=AUTH) as client:
            assert client.get("/batches").status_code == 503
            assert client.get("/batches").status_code == 200
    with serve(dialects=DIALECTS, fault_config=path, fault_rate=0.5) as srv:
        plan = srv.emulator.faults
        assert plan is not None and plan.rate == 0.5 and plan.seed is None
        assert [(r.route, r.kind, r.times) for r in plan.rules] == [("GET */v1/batches", "503", 1)]


def test_same_seed_same_faults_on_two_servers() -> None:
    def run(seed: int) -> list[str]:
        out = []
        with serve(dialects=DIALECTS, fault_rate=0.5, seed=seed) as srv:
            assert srv.emulator.faults is not None
            # No "slow" here: a timeout-based outcome would depend on the machine's load.
            srv.emulator.faults.kinds = ("429", "500", "502", "503", "reset")
            with httpx.Client(base_url=srv.url("openai"), headers=AUTH, timeout=5) as client:
                for _ in range(30):
                    try:
                        out.append(str(client.get("/batches").status_code))
                    except httpx.TransportError as exc:
                        out.append(type(exc).__name__)
        return out

    first = run(11)
    assert first == run(11)
    assert first != run(12)
    assert "200" in first and len(set(first)) >= 3


def test_non_loopback_host_needs_an_api_key() -> None:
    with pytest.raises(UnsafeBindError, match="non-loopback"):
        serve(host="0.0.0.0", dialects=DIALECTS)
    with serve(host="0.0.0.0", api_key="secret", dialects=DIALECTS) as srv:
        assert srv.emulator.config.api_key == "secret"
        with httpx.Client(base_url=f"http://127.0.0.1:{srv.port}/openai/v1") as client:
            assert (
                client.get("/batches", headers={"Authorization": "Bearer nope"}).status_code == 401
            )
            assert (
                client.get("/batches", headers={"Authorization": "Bearer secret"}).status_code
                == 200
            )


def test_localhost_names_are_loopback() -> None:
    with serve(host="localhost", dialects=DIALECTS) as srv:
        assert srv.base_url.startswith("http://localhost:")


def test_speed_scales_the_lifecycle() -> None:
    with (
        serve(dialects=DIALECTS, speed=200) as srv,
        httpx.Client(base_url=srv.url("openai"), headers=AUTH) as client,
    ):
        batch = _create(client, 100)
        deadline = time.monotonic() + 5
        status = batch["status"]
        while status != "completed" and time.monotonic() < deadline:
            time.sleep(0.005)
            status = client.get(f"/batches/{batch['id']}").json()["status"]
        assert status == "completed"
        assert time.monotonic() < deadline


def test_many_concurrent_batches_polled_by_threads() -> None:
    with (
        serve(dialects=DIALECTS, speed=50) as srv,
        httpx.Client(
            base_url=srv.url("openai"), headers=AUTH, limits=httpx.Limits(max_connections=16)
        ) as client,
    ):
        file_id = client.post(
            "/files",
            data={"purpose": "batch"},
            files={"file": ("a.jsonl", jsonl([chat_line(f"r{i}") for i in range(20)]))},
        ).json()["id"]
        body = {
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }

        def run(_: int) -> str:
            batch_id = client.post("/batches", json=body).json()["id"]
            for _ in range(500):
                status = str(client.get(f"/batches/{batch_id}").json()["status"])
                if status == "completed":
                    return status
                time.sleep(0.01)
            return status

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(run, range(100)))
        assert statuses == ["completed"] * 100
        assert srv.emulator.stats.creates["openai"] == 100
        page = client.get("/batches", params={"limit": 100}).json()
        assert len(page["data"]) == 100 and page["has_more"] is False


def test_run_server_prints_urls_and_stops(tmp_path: Path) -> None:
    out = io.StringIO()
    stop = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(run_server(port=0, out=out, stop=stop)))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not re.search(r"(?m)^mistral +http", out.getvalue()) or not re.search(
            r"(?m)^openai +http", out.getvalue()
        ):
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.01)
        lines = out.getvalue().splitlines()
        urls = dict(line.split() for line in lines)
        assert all(url.startswith("http://127.0.0.1:") for url in urls.values())
        assert set(urls) >= {"openai", "mistral"}
        assert urls["openai"].endswith("/openai/v1") and urls["mistral"].endswith("/mistral")
        with httpx.Client(headers=AUTH) as client:
            assert client.get(urls["openai"] + "/batches").status_code == 200
    finally:
        stop.set()
        thread.join(5)
    assert codes == [0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_server_exits_cleanly_on_signals(sig: signal.Signals) -> None:
    code = "from omnibatch.emulator import run_server; raise SystemExit(run_server(port=0))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        text=True,
    )
    try:
        assert proc.stdout is not None
        names: set[str] = set()
        while not {"openai", "mistral"} <= names:
            line = proc.stdout.readline()
            assert line, "run_server stopped before printing its URLs"
            name, url = line.split()
            assert url.startswith("http://127.0.0.1:")
            names.add(name)
        proc.send_signal(sig)
        assert proc.wait(10) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_the_pytest_plugin_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_uses_fixtures.py").write_text(
        textwrap.dedent(
            """
            import httpx
            import pytest
            from omnibatch.emulator import EmulatorConfig, ManualClock
            from omnibatch_openai.dialect import OpenAIDialect

            AUTH = {"Authorization": "Bearer k"}
            LINE = (b'{"custom_id":"a","method":"POST",'
                    b'"url":"/v1/chat/completions","body":{"model":"m"}}')

            @pytest.fixture
            def omnibatch_emulator_config():
                return EmulatorConfig(seed=1, validating_seconds=10)

            @pytest.fixture
            def omnibatch_emulator_dialects():
                return [OpenAIDialect]

            def test_in_process(omnibatch_emulator):
                assert isinstance(omnibatch_emulator.clock, ManualClock)
                assert list(omnibatch_emulator.dialects) == ["openai"]
                with httpx.Client(transport=omnibatch_emulator.transport(),
                                  base_url="http://e/openai/v1", headers=AUTH) as c:
                    fid = c.post("/files", data={"purpose": "batch"},
                                 files={"file": ("a.jsonl", LINE)}).json()["id"]
                    b = c.post("/batches", json={"input_file_id": fid, "completion_window": "24h",
                               "endpoint": "/v1/chat/completions"}).json()
                    omnibatch_emulator.advance(9)
                    assert c.get(f"/batches/{b['id']}").json()["status"] == "validating"
                    omnibatch_emulator.advance(1.001)
                    assert c.get(f"/batches/{b['id']}").json()["status"] == "in_progress"

            def test_server(omnibatch_emulator_server):
                server = omnibatch_emulator_server
                assert server.base_url.startswith("http://127.0.0.1:")
                r = httpx.get(server.base_url + "/openai/v1/batches", headers=AUTH)
                assert r.status_code == 200
                assert server.emulator.stats.count("GET") == 1
            """
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "omnibatch.testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_emulator_is_not_imported_by_omnibatch_and_needs_no_pydantic() -> None:
    code = (
        "import sys\n"
        "import omnibatch\n"
        "assert 'omnibatch.emulator' not in sys.modules, 'import omnibatch loaded the emulator'\n"
        "before = set(sys.modules)\n"
        "import omnibatch.emulator\n"
        "new = set(sys.modules) - before\n"
        "heavy = ('pydantic', 'openai', 'mistralai', 'omnibatch_openai', 'omnibatch_mistral')\n"
        "print(','.join(sorted(m for m in new if m.split('.')[0] in heavy)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
