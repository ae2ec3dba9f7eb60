"""CLI tests run the real ``omnibatch`` in subprocesses, against ``omnibatch emulator serve``
started as a subprocess too, each test with its own $OMNIBATCH_HOME and working directory."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

OMNIBATCH = [sys.executable, "-m", "omnibatch.cli"]

# Settings that must not leak from the developer's shell into a test.
_STRIP_PREFIXES = ("OMNIBATCH_",)
_STRIP_SUFFIXES = ("_API_KEY", "_BASE_URL")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_STRIP_PREFIXES) and not k.endswith(_STRIP_SUFFIXES)
    }
    env["OMNIBATCH_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str, env: Mapping[str, str], cwd: Path, stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OMNIBATCH, *args],
        env=dict(env),
        cwd=cwd,
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class EmulatorProcess:
    """A running ``omnibatch emulator serve`` and a raw HTTP view of its OpenAI dialect."""

    def __init__(self, proc: subprocess.Popen[str], root: str, key: str = "x") -> None:
        self.proc = proc
        self.root = root
        self.http = httpx.Client(
            base_url=f"{root}/openai/v1", headers={"Authorization": f"Bearer {key}"}
        )

    def _all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            query = {**params, "limit": 100, **({"after": after} if after else {})}
            page = self.http.get(path, params=query).raise_for_status().json()
            items.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return items
            after = page["data"][-1]["id"]

    def batches(self, job_id: str) -> list[dict[str, Any]]:
        """The OpenAI batches created for a job (each carries the job id in its metadata)."""
        return [
            b
            for b in self._all("/batches")
            if (b.get("metadata") or {}).get("omnibatch_job") == job_id
        ]

    def input_files(self, job_id: str) -> list[dict[str, Any]]:
        return [f for f in self._all("/files", purpose="batch") if f["filename"].startswith(job_id)]

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_emulator(tmp: Path, *args: str) -> EmulatorProcess:
    env = clean_env(tmp / "emulator-home")
    proc = subprocess.Popen(
        [*OMNIBATCH, "emulator", "serve", "--port", "0", *args],
        env=env,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    root = None
    for line in proc.stdout:  # one "<dialect> <base URL>" line per dialect
        name, _, url = line.strip().partition(" ")
        if name == "openai":
            root = url.strip().removesuffix("/openai/v1")
            break
    if root is None:
        proc.kill()
        raise RuntimeError("omnibatch emulator serve did not print its URLs")
    key = args[args.index("--api-key") + 1] if "--api-key" in args else "x"
    return EmulatorProcess(proc, root, key)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """A fast emulator (50x real time) shared by a test module."""
    server = start_emulator(tmp_path_factory.mktemp("emulator"), "--speed", "50")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """A fifth of real time: a batch validates for ~2.5 s, long enough to cancel, interrupt or
    time out its wait deterministically."""
    server = start_emulator(tmp_path_factory.mktemp("slow"), "--speed", "0.2")
    yield server
    server.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def write_input(path: Path, count: int, *, prefix: str = "req") -> Path:
    """A fresh input: its questions carry a nonce, so two tests sharing an emulator never have
    the same job identity (a job whose ledger is new finds batches of the same identity)."""
    nonce = uuid.uuid4().hex[:8]
    with open(path, "wb") as fh:
        for i in range(count):
            fh.write(
                orjson.dumps(
                    {
                        "custom_id": f"{prefix}-{i}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {
                            "model": "gpt-4o-mini",
                            "max_tokens": 50,
                            "messages": [{"role": "user", "content": f"question {i} ({nonce})"}],
                        },
                    }
                )
                + b"\n"
            )
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def only_job_id(home: Path) -> str:
    from omnibatch.ledger import Ledger

    with Ledger(home) as ledger:
        (job,) = ledger.list_jobs()
        return job.id
