"""Never pay twice when the ledger is lost, the clock is off or an upload's answer is lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from omnibatch._http import RetryPolicy
from omnibatch._lifecycle import PollPolicy
from omnibatch.config import FileConfig
from omnibatch.emulator import Emulator, FaultPlan, FaultRule, ManualClock
from omnibatch.jobs import JOB_METADATA_KEY, JobOptions, JobRunner
from omnibatch.ledger import Ledger
from tests.jobs.conftest import OPENAI, Crash, RaisingPlan, write_input

SPLIT = JobOptions(max_requests_per_batch=2)


def _creates(emulator: Emulator) -> int:
    return emulator.stats.creates["openai"]


def _uploads(emulator: Emulator) -> int:
    return emulator.stats.count("POST", "/files")


def _runner(emulator: Emulator, home: Path, **kwargs: object) -> JobRunner:
    clock = emulator.clock
    assert isinstance(clock, ManualClock)
    crash = kwargs.pop("crash", None)
    transport = emulator.transport()
    if isinstance(crash, RaisingPlan):
        transport = crash.transport(transport)
    return JobRunner(
        Ledger(home),
        config=FileConfig(),
        transport=transport,
        checkpoint=crash,  # type: ignore[arg-type]
        poll=PollPolicy(initial=1.0, multiplier=1.0, maximum=1.0),
        retry=RetryPolicy(initial_delay=0.0, max_delay=0.0),
        clock=clock.now,
        sleep=clock.advance,
    )


def test_a_lost_ledger_finds_the_batches_instead_of_paying_again(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 5)
    first = make_runner().run(source, None, OPENAI, SPLIT, wait=False)
    assert _creates(emulator) == 3
    uploads = _uploads(emulator)
    # The same job from a home whose ledger is gone: found at the provider, nothing re-sent.
    lost = _runner(emulator, tmp_path / "another-home")
    try:
        again = lost.run(source, tmp_path / "out.jsonl", OPENAI, SPLIT)
    finally:
        lost.close()
        lost.ledger.close()
    assert _creates(emulator) == 3 and _uploads(emulator) == uploads
    assert [p.batch_id for p in again.view.parts] == [p.batch_id for p in first.view.parts]
    assert again.succeeded and again.summary is not None and again.summary.succeeded == 5
    # --new asks for another job of the same identity: that one is paid for.
    make_runner().run(source, None, OPENAI, SPLIT, new=True, wait=False)
    assert _creates(emulator) == 6


def test_reconciliation_does_not_trust_the_local_clock(tmp_path: Path) -> None:
    # The provider's clock is 11 minutes behind ours (ours is ahead).
    emulator = Emulator(clock=ManualClock(start=time.time() - 11 * 60))
    source = write_input(tmp_path / "in.jsonl", 6)
    home = tmp_path / "home"
    crashing = _runner(emulator, home, crash=RaisingPlan("create-answered", 2))
    with pytest.raises(Crash):
        crashing.run(source, None, OPENAI, SPLIT)
    crashing.close()
    crashing.ledger.close()
    assert _creates(emulator) == 2  # part 2 exists at the provider; its answer was lost
    # Other work creates a batch after ours, before the rerun.
    emulator.advance(5)
    other = _runner(emulator, tmp_path / "other-home")
    other.run(
        write_input(tmp_path / "other.jsonl", 1, prefix="o"), None, OPENAI, JobOptions(), wait=False
    )
    other.close()
    other.ledger.close()
    rerun = _runner(emulator, home)
    try:
        result = rerun.run(source, tmp_path / "out.jsonl", OPENAI, SPLIT)
    finally:
        rerun.close()
        rerun.ledger.close()
    assert result.succeeded
    mine = [
        b
        for b in emulator.engine.batches.values()
        if (b.metadata or {}).get(JOB_METADATA_KEY) == result.view.id
    ]
    assert len(mine) == 3 and _creates(emulator) == 4  # 3 parts + the other job's batch


def test_an_upload_answered_500_after_storing_is_not_sent_twice(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    # Every part's first upload is stored, then answered 500.
    emulator.faults = FaultPlan(rules=[FaultRule("POST */v1/files", "500", times=3, when="after")])
    source = write_input(tmp_path / "in.jsonl", 6)
    result = make_runner().run(source, tmp_path / "out.jsonl", OPENAI, SPLIT)
    assert result.succeeded
    assert _uploads(emulator) == 3  # each found by its unique name, none sent again
    left = [f for f in emulator.engine.files.values() if f.filename.startswith(result.view.id)]
    assert left == []  # and deleted after the run: the provider keeps no input file of the job


def test_a_finished_job_run_again_rewrites_output_without_the_provider(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 5)
    # keep_data keeps the downloads (by default they go when the job ends).
    first = make_runner(keep_data=True).run(source, tmp_path / "out.jsonl", OPENAI, SPLIT)
    assert first.succeeded and not first.rewritten
    requests = len(emulator.stats.requests)
    again = make_runner(keep_data=True).run(source, tmp_path / "again.jsonl", OPENAI, SPLIT)
    assert again.rewritten and again.summary is not None and again.summary.total == 5
    assert len(emulator.stats.requests) == requests  # the provider was not called
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "out.jsonl").read_bytes()
