"""Crash tests: ``kill -9`` of ``omnibatch run`` at 26 moments, each followed by the same
command again. Afterwards every input custom id is in OUTPUT exactly once, the emulator holds
exactly the batches the split needs (counted from the provider's listing: each batch carries its
job id), and no uploaded input file is left behind. Ctrl-C during wait exits cleanly with the
command that resumes."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import (
    OMNIBATCH,
    EmulatorProcess,
    clean_env,
    only_job_id,
    read_jsonl,
    write_input,
)

pytestmark = pytest.mark.slow

REQUESTS = 7
PER_BATCH = 3
PARTS = 3  # 3 + 3 + 1

# (checkpoint, occurrence, provider batches when killed, batches recorded in the ledger)
MOMENTS = [
    ("prepared", 1, 0, 0),
    ("before-upload", 1, 0, 0),
    ("upload-sent", 1, 0, 0),
    ("upload-answered", 1, 0, 0),  # the file is stored, its id unknown to the ledger
    ("after-upload", 1, 0, 0),
    ("uploaded", 1, 0, 0),
    ("before-create", 1, 0, 0),  # intent row written, nothing sent
    ("create-sent", 1, 0, 0),
    ("create-answered", 1, 1, 0),  # created at the provider, answer lost
    ("after-create", 1, 1, 0),  # batch id known, not yet in the ledger
    ("created", 1, 1, 1),
    ("upload-answered", 2, 1, 1),
    ("create-answered", 2, 2, 1),
    ("after-create", 3, 3, 2),
    ("created", 3, 3, 3),
    ("retrieve-answered", 1, 3, 3),
    ("poll", 1, 3, 3),
    ("poll", 3, 3, 3),
    ("before-download", 1, 3, 3),
    ("download-partial", 1, 3, 3),  # half a result file on disk
    ("downloaded", 1, 3, 3),
    ("download-partial", 3, 3, 3),
    ("before-output", 1, 3, 3),
    ("output-written", 1, 3, 3),
    ("delete-answered", 2, 3, 3),
    ("done", 1, 3, 3),
]


def _ledger_batches(home: Path) -> int:
    from omnibatch.ledger import Ledger

    with Ledger(home) as ledger:
        jobs = ledger.list_jobs()
        return sum(1 for job in jobs for p in ledger.parts(job.id) if p.batch_id)


def _args(source: Path, out: Path) -> list[str]:
    return [
        "run",
        str(source),
        "-o",
        str(out),
        "--provider",
        "openai",
        "--max-requests-per-batch",
        str(PER_BATCH),
        "--poll-interval",
        "0.02",
    ]


@pytest.mark.parametrize(
    ("point", "nth", "at_provider", "in_ledger"),
    MOMENTS,
    ids=[f"{p}:{n}" for p, n, _, _ in MOMENTS],
)
def test_kill_9_then_rerun(
    point: str,
    nth: int,
    at_provider: int,
    in_ledger: int,
    emulator: EmulatorProcess,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", REQUESTS)
    out = tmp_path / "out.jsonl"
    killed = subprocess.run(
        [*OMNIBATCH, *_args(source, out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "OMNIBATCH_CRASH_AT": f"{point}:{nth}"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    job_id = only_job_id(home)  # the job row is written before anything else
    assert len(emulator.batches(job_id)) == at_provider
    assert _ledger_batches(home) == in_ledger
    if point not in ("output-written", "delete-answered", "done"):
        assert not out.exists()  # OUTPUT appears whole or not at all

    rerun = subprocess.run(
        [*OMNIBATCH, *_args(source, out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert rerun.returncode == 0, rerun.stderr
    if point == "done":  # the job had finished: OUTPUT is written again from its downloads
        assert f"job {job_id} finished at" in rerun.stdout
    else:
        assert f"resuming job {job_id}" in rerun.stderr
    ids = [line["custom_id"] for line in read_jsonl(out)]
    assert ids == [f"req-{i}" for i in range(REQUESTS)]  # each once, in input order
    assert {line["status"] for line in read_jsonl(out)} == {"succeeded"}
    batches = emulator.batches(job_id)
    assert len(batches) == PARTS
    assert len({b["metadata"]["omnibatch_idempotency_key"] for b in batches}) == PARTS
    assert emulator.input_files(job_id) == []  # every uploaded input reused, then deleted
    if point in ("create-answered", "after-create"):
        assert "reattached batch" in rerun.stderr


def test_killed_again_during_recovery(emulator: EmulatorProcess, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", REQUESTS)
    out = tmp_path / "out.jsonl"
    # 1: part 2 created, answer lost; 2: killed while reconciling it; 3: part 2 reattached,
    # then killed once part 3's upload is stored (the first upload of that process).
    for crash in ("create-answered:2", "list-answered:1", "upload-answered:1"):
        proc = subprocess.run(
            [*OMNIBATCH, *_args(source, out)],
            cwd=tmp_path,
            timeout=60,
            env={**env, "OMNIBATCH_CRASH_AT": crash},
            capture_output=True,
        )
        assert proc.returncode == -signal.SIGKILL
    final = subprocess.run(
        [*OMNIBATCH, *_args(source, out)],
        cwd=tmp_path,
        timeout=60,
        env=env,
        capture_output=True,
        text=True,
    )
    assert final.returncode == 0, final.stderr
    job_id = only_job_id(home)
    assert len(emulator.batches(job_id)) == PARTS
    assert [line["custom_id"] for line in read_jsonl(out)] == [f"req-{i}" for i in range(REQUESTS)]
    assert emulator.input_files(job_id) == []


def _default_signals() -> None:
    # A suite run as a background job hands its children an ignored SIGINT: restore it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_during_wait_exits_cleanly_and_prints_the_resume_command(
    slow_emulator: EmulatorProcess, tmp_path: Path, sent: signal.Signals, code: int
) -> None:
    home = tmp_path / "home"
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=slow_emulator.root)
    source = write_input(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    args = [
        "run",
        str(source),
        "-o",
        str(out),
        "--provider",
        "openai",
        "--new",
        "--poll-interval",
        "0.05",
    ]
    proc = subprocess.Popen(
        [*OMNIBATCH, *args],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_signals,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("waiting for job-"):
            break
    proc.send_signal(sent)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    job_id = only_job_id(home)
    assert f"interrupted: job {job_id} is saved" in stderr
    resume = stderr.split("resume with: ", 1)[1].splitlines()[0]
    argv = shlex.split(resume)
    assert argv[0] == "omnibatch" and "--new" not in argv  # --new would start over
    again = subprocess.run(
        [*OMNIBATCH, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    assert f"resuming job {job_id}" in again.stderr
    assert len(slow_emulator.batches(job_id)) == 1
    assert [line["custom_id"] for line in read_jsonl(out)] == ["req-0", "req-1", "req-2"]


def test_python_is_the_interpreter_under_test() -> None:
    # The subprocesses must run this checkout's omnibatch, not another installed copy.
    code = "import omnibatch.jobs, sys; print(omnibatch.jobs.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert where.strip() == str(
        Path(__file__).resolve().parents[2] / "src/omnibatch/jobs/__init__.py"
    )


def test_provider_without_a_searchable_key_refuses_to_guess(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    # Anthropic batches carry no metadata: after a create whose answer was lost, a resume
    # cannot know whether the batch exists, and says so instead of risking a second one.
    env = clean_env(tmp_path / "home", OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 2)
    args = [
        *OMNIBATCH,
        "run",
        str(source),
        "-o",
        str(tmp_path / "o.jsonl"),
        "--provider",
        "anthropic",
        "--model",
        "claude-3-5-haiku-latest",
        "--poll-interval",
        "0.02",
    ]
    killed = subprocess.run(
        args,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        env={**env, "OMNIBATCH_CRASH_AT": "create-answered"},
    )
    assert killed.returncode == -signal.SIGKILL
    refused = subprocess.run(
        args, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env
    )
    assert refused.returncode == 1
    assert "may already exist at anthropic" in refused.stderr and "--new" in refused.stderr
    fresh = subprocess.run(
        [*args, "--new"], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env
    )
    assert fresh.returncode == 0, fresh.stderr
    assert [line["custom_id"] for line in read_jsonl(tmp_path / "o.jsonl")] == ["req-0", "req-1"]
