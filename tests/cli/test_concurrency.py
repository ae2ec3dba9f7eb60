"""Two processes, one job; a lost ledger: exactly one set of batches, whatever the timing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli.conftest import OMNIBATCH, EmulatorProcess, clean_env, run_cli, write_input

PARTS = 2


def _all_batches(emulator: EmulatorProcess) -> int:
    return len(emulator._all("/batches"))


def _args(source: Path, out: Path) -> list[str]:
    return ["run", str(source), "-o", str(out), "--max-requests-per-batch", "2"]


def test_two_simultaneous_first_runs_create_one_set_of_batches(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    for round_ in range(10):
        where = tmp_path / f"round-{round_}"
        where.mkdir()
        env = clean_env(where / "home", OMNIBATCH_EMULATOR_URL=emulator.root)
        source = write_input(where / "in.jsonl", 2 * PARTS)
        before = _all_batches(emulator)
        procs = [
            subprocess.Popen(
                [*OMNIBATCH, *_args(source, where / f"out-{i}.jsonl"), "--no-wait"],
                cwd=where,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
        for code, _out, err in results:
            assert code in (0, 6), err
            if code == 6:
                assert "is being run by omnibatch pid" in err, err
        assert _all_batches(emulator) - before == PARTS, (round_, results)


def test_an_emptied_ledger_is_refused_then_finds_its_batches(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 2 * PARTS)
    out = tmp_path / "out.jsonl"
    assert run_cli(*_args(source, out), "--no-wait", env=env, cwd=tmp_path).returncode == 0
    before = _all_batches(emulator)
    (home / "ledger.sqlite3").write_bytes(b"")  # the ledger is lost; the job folder stays
    refused = run_cli(*_args(source, out), env=env, cwd=tmp_path)
    assert refused.returncode == 3, refused.stderr
    assert "ledger.sqlite3 is empty" in refused.stderr and "--new" in refused.stderr
    assert "Traceback" not in refused.stderr
    again = run_cli(*_args(source, out), "--new", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _all_batches(emulator) == before  # found by their keys, not paid for again
    assert len(out.read_text().splitlines()) == 2 * PARTS
