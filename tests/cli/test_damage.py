"""Local damage (a full disk, a corrupted ledger) gets one line and exit 3, never a traceback,
and nothing recorded is lost."""

from __future__ import annotations

import resource
import signal
import subprocess
from pathlib import Path

from tests.cli.conftest import (
    OMNIBATCH,
    EmulatorProcess,
    clean_env,
    read_jsonl,
    run_cli,
    write_input,
)


def _small_disk() -> None:
    # Files may grow to 200 kB: past that, writes fail (EFBIG) as on a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_full_disk_while_preparing_is_one_line_then_resumes(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 3000)
    args = [*OMNIBATCH, "run", str(source), "-o", str(tmp_path / "out.jsonl")]
    full = subprocess.run(
        args,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_small_disk,
    )
    assert full.returncode == 3, full.stderr
    assert "Traceback" not in full.stderr
    (line,) = [x for x in full.stderr.splitlines() if x.startswith("error:")]
    assert "cannot write" in line and "run the same command again" in line, line
    assert str(home / "jobs") in line  # names where it was writing
    again = run_cli(*args[len(OMNIBATCH) :], env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 3000


def test_a_corrupted_ledger_is_one_line(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 4)
    submit = run_cli("run", str(source), "-o", "o.jsonl", "--no-wait", env=env, cwd=tmp_path)
    assert submit.returncode == 0, submit.stderr
    ledger = home / "ledger.sqlite3"
    with open(ledger, "r+b") as fh:  # damage the middle of the file, not its header
        fh.seek(4096)
        fh.write(b"\xa5" * 8192)
    for argv in (["jobs"], ["run", str(source), "-o", "o.jsonl"]):
        proc = run_cli(*argv, env=env, cwd=tmp_path)
        assert proc.returncode == 3, proc.stderr
        assert "Traceback" not in proc.stderr
        assert str(ledger) in proc.stderr and "backup" in proc.stderr, proc.stderr
