"""API keys never reach stdout, stderr (logs included), --json output, the ledger or OUTPUT.

A distinctive key is used for real against an emulator that accepts only it, with -vv and
--json, then every byte the runs produced is searched for it. A fake provider that echoes the
key in its error message checks that errors are redacted too.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cli.conftest import clean_env, only_job_id, run_cli, start_emulator, write_input

SECRET = f"sk-test-SECRET-{uuid.uuid4().hex}"
EMULATOR_SECRET = f"emu-SECRET-{uuid.uuid4().hex}"


def test_key_is_used_but_never_written(tmp_path: Path) -> None:
    """On an emulator the emulator's own key is sent, never the provider's real one (the
    emulator here accepts only its own), and neither key is printed, logged or stored."""
    home = tmp_path / "home"
    server = start_emulator(tmp_path, "--api-key", EMULATOR_SECRET, "--speed", "50")
    try:
        env = clean_env(
            home,
            OPENAI_API_KEY=SECRET,
            OMNIBATCH_EMULATOR_API_KEY=EMULATOR_SECRET,
            OMNIBATCH_EMULATOR_URL=server.root,
        )
        source = write_input(tmp_path / "in.jsonl", 4)
        out = tmp_path / "out.jsonl"
        runs = [
            run_cli(
                "-vv",
                "--json",
                "run",
                str(source),
                "-o",
                str(out),
                "--provider",
                "openai",
                "--max-requests-per-batch",
                "2",
                "--poll-interval",
                "0.02",
                env=env,
                cwd=tmp_path,
            ),
            run_cli(
                "-vv",
                "run",
                str(source),
                "-o",
                str(out),
                "--provider",
                "openai",
                "--max-requests-per-batch",
                "2",
                env=env,
                cwd=tmp_path,
            ),
        ]
        job_id = only_job_id(home)
        for argv in (
            ["status", job_id],
            ["results", job_id, "-o", str(tmp_path / "r.jsonl")],
            ["list", "--provider", "openai"],
            ["jobs"],
            ["cancel", job_id],
            ["status", "batch_missing", "--provider", "openai"],
        ):
            runs += [
                run_cli("-vv", *argv, env=env, cwd=tmp_path),
                run_cli("-vv", "--json", *argv, env=env, cwd=tmp_path),
            ]
    finally:
        server.stop()
    # The emulator's key was sent: it accepts no other (the real key would have been refused).
    assert runs[0].returncode == 0, runs[0].stderr
    assert json.loads(runs[0].stdout)["status"] == "succeeded"
    assert "omnibatch.http INFO" in runs[0].stderr  # the request log was on
    assert runs[-1].returncode == 5  # an error path was exercised as well
    for proc in runs:
        for secret in (SECRET, EMULATOR_SECRET):
            assert secret not in proc.stdout and secret not in proc.stderr, proc.args
    files = [p for p in [*home.rglob("*"), out, tmp_path / "r.jsonl"] if p.is_file()]
    assert any(p.name.startswith("ledger.sqlite3") for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
        assert EMULATOR_SECRET.encode() not in path.read_bytes(), path


class _Echo(BaseHTTPRequestHandler):
    """A provider that puts the caller's key in its 401 message (some real ones do)."""

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps(
            {
                "error": {
                    "message": f"Incorrect API key provided: {token}",
                    "code": "invalid_api_key",
                }
            }
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("json_output", [False, True])
def test_a_key_echoed_by_the_provider_is_redacted(
    echo_server: str, json_output: bool, tmp_path: Path
) -> None:
    env = clean_env(tmp_path / "home", OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=echo_server)
    args = ["-vv", "list", "--provider", "openai", *(["--json"] if json_output else [])]
    proc = run_cli(*args, env=env, cwd=tmp_path)
    assert proc.returncode == 4
    text = proc.stdout if json_output else proc.stderr
    assert "Incorrect API key provided: ***" in text
    assert SECRET not in proc.stdout + proc.stderr


def test_reprs_hide_the_key() -> None:
    from omnibatch.config import ProviderSettings

    target = ProviderSettings("openai", "https://api.openai.com/v1", SECRET)
    assert SECRET not in repr(target) and SECRET not in str(target)


@pytest.mark.parametrize("json_output", [False, True])
def test_a_password_in_the_base_url_is_redacted(
    echo_server: str, tmp_path: Path, json_output: bool
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    url = echo_server.replace("http://", f"http://user:{password}@")
    env = clean_env(tmp_path / "home", OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=url)
    args = ["-vv", "list", "--provider", "openai", *(["--json"] if json_output else [])]
    proc = run_cli(*args, env=env, cwd=tmp_path)
    assert proc.returncode == 4
    assert "user:***@" in proc.stdout + proc.stderr  # the -vv log names the URL, redacted
    assert password not in proc.stdout + proc.stderr
