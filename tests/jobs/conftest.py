"""Job-runner fixtures: an in-process emulator on a manual clock, a ledger in a temp home, and
runners wired to both (a new runner = a new process, for resume tests)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from omnibatch._http import RetryPolicy
from omnibatch._lifecycle import PollPolicy
from omnibatch.config import FileConfig, ProviderSettings
from omnibatch.emulator import Emulator, ManualClock
from omnibatch.jobs import JobRunner
from omnibatch.ledger import Ledger
from omnibatch.testing.crash import CrashPlan


def settings(provider: str, base_url: str, api_key: str | None, key_source: str | None = None):  # type: ignore[no-untyped-def]
    """Provider settings as the resolver would give them (``key_source`` says where from)."""
    sources = {"api_key": key_source} if key_source else {}
    return ProviderSettings(provider, base_url, api_key, sources=sources)


OPENAI = settings("openai", "http://emulator/openai/v1", "sk-test-runner", "$OPENAI_API_KEY")
MISTRAL = settings("mistral", "http://emulator/mistral", "sk-test-runner", "$MISTRAL_API_KEY")


class Crash(Exception):
    """Stands in for a killed process in in-process tests."""


class RaisingPlan(CrashPlan):
    """A crash plan that raises instead of killing the test process."""

    def hit(self, point: str) -> None:
        self.seen[point] += 1
        if point == self.point and self.seen[point] == self.nth:
            raise Crash(f"{point}:{self.nth}")


def write_input(path: Path, count: int, *, model: str = "gpt-4o-mini", prefix: str = "r") -> Path:
    with open(path, "wb") as fh:
        for i in range(count):
            line = {
                "custom_id": f"{prefix}{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": model, "messages": [{"role": "user", "content": f"q {i}"}]},
            }
            fh.write(orjson.dumps(line) + b"\n")
    return path


def read_output(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture
def emulator() -> Emulator:
    # Simulated time starts now, as a provider's clock would be (close to ours).
    return Emulator(clock=ManualClock(start=time.time()))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def make_runner(emulator: Emulator, home: Path) -> Iterator[Callable[..., JobRunner]]:
    made: list[tuple[Ledger, JobRunner]] = []
    clock = emulator.clock
    assert isinstance(clock, ManualClock)

    def make(**kwargs: Any) -> JobRunner:
        ledger = Ledger(home)
        crash = kwargs.pop("crash", None)
        transport = emulator.transport()
        if crash is not None:  # the HTTP checkpoints too
            transport = crash.transport(transport)
        runner = JobRunner(
            ledger,
            config=FileConfig(),
            transport=transport,
            checkpoint=crash,
            poll=PollPolicy(initial=1.0, multiplier=1.0, maximum=1.0, max_consecutive_errors=3),
            retry=RetryPolicy(initial_delay=0.0, max_delay=0.0),
            clock=clock.now,
            sleep=clock.advance,
            **kwargs,
        )
        made.append((ledger, runner))
        return runner

    yield make
    for ledger, runner in made:
        runner.close()
        ledger.close()
