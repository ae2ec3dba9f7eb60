"""The data folder stays bounded: a job keeps only what a resume needs and nothing bulky once it
ends (``--keep-data`` keeps it), an input that does not validate leaves no job, and
``jobs rm`` / ``jobs prune`` remove old jobs."""

from __future__ import annotations

import gc
import json
import sqlite3
import time
from pathlib import Path

from omnibatch import BatchClient

from .conftest import EmulatorProcess, clean_env, run_cli, write_input


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "lock")


def _jobs(env: dict[str, str], cwd: Path, *args: str) -> list[dict[str, object]]:
    proc = run_cli("--json", "jobs", *args, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    jobs: list[dict[str, object]] = json.loads(proc.stdout)["jobs"]
    return jobs


def test_finished_job_keeps_only_its_ids(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 6)
    args = ("run", str(source), "-p", "openai", "--max-requests-per-batch", "2")
    assert run_cli(*args, "-o", "out.jsonl", env=env, cwd=tmp_path).returncode == 0
    (job,) = _jobs(env, tmp_path)
    left = _files(home / "jobs" / str(job["job"]))
    # The input's translated copy and the downloaded results are gone; three small id lists
    # stay, so `omnibatch results` can rebuild OUTPUT from the provider's files.
    assert [p.suffix for p in left] == [".ids"] * 3
    written = (tmp_path / "out.jsonl").read_bytes()
    (tmp_path / "out.jsonl").unlink()  # no copy left on disk: the provider's files are read
    again = run_cli("results", str(job["job"]), "-o", "again.jsonl", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.jsonl").read_bytes() == written
    assert [p.suffix for p in _files(home / "jobs" / str(job["job"]))] == [".ids"] * 3
    kept = run_cli(*args, "-o", "kept.jsonl", "--new", "--keep-data", env=env, cwd=tmp_path)
    assert kept.returncode == 0
    newest = _jobs(env, tmp_path)[0]["job"]
    assert any(p.suffix == ".bin" for p in _files(home / "jobs" / str(newest)))  # downloads


def test_embedded_job_leaves_nothing_and_bad_input_leaves_no_job(
    tmp_path: Path, home: Path
) -> None:
    env = clean_env(home)
    source = write_input(tmp_path / "in.jsonl", 3)
    assert run_cli("run", str(source), "-o", "out.jsonl", env=env, cwd=tmp_path).returncode == 0
    (job,) = _jobs(env, tmp_path)
    assert _files(home / "jobs" / str(job["job"])) == []
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n", encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    for path in (bad, empty):
        proc = run_cli("run", str(path), "-o", "x.jsonl", env=env, cwd=tmp_path)
        assert proc.returncode == 1
    assert [j["job"] for j in _jobs(env, tmp_path)] == [job["job"]]  # no `preparing 0/0` job
    assert sorted(p.name for p in (home / "jobs").iterdir()) == [job["job"]]


def test_jobs_rm_and_prune(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    ids = []
    for index in range(3):
        source = write_input(tmp_path / f"in{index}.jsonl", 1, prefix=f"r{index}")
        assert (
            run_cli("run", str(source), "-o", f"o{index}.jsonl", env=env, cwd=tmp_path).returncode
            == 0
        )
        ids.append(_jobs(env, tmp_path)[0]["job"])
    # Age the first two by 40 days.
    with sqlite3.connect(home / "ledger.sqlite3") as db:
        for job_id in ids[:2]:
            db.execute(
                "UPDATE jobs SET created_at = ? WHERE id = ?", (time.time() - 40 * 86400, job_id)
            )
    dry = json.loads(run_cli("--json", "jobs", "prune", "--dry-run", env=env, cwd=tmp_path).stdout)
    assert sorted(dry["would_remove"]) == sorted(ids[:2]) and dry["removed"] == []
    assert len(_jobs(env, tmp_path)) == 3
    none = run_cli("jobs", "prune", "--status", "failed", env=env, cwd=tmp_path)
    assert none.returncode == 0 and len(_jobs(env, tmp_path)) == 3
    pruned = run_cli("jobs", "prune", "--older-than", "30d", env=env, cwd=tmp_path)
    assert pruned.returncode == 0 and pruned.stdout.count("removed ") == 2
    assert [j["job"] for j in _jobs(env, tmp_path)] == [ids[2]]
    assert not (home / "jobs" / str(ids[0])).exists()
    removed = run_cli("jobs", "rm", str(ids[2]), env=env, cwd=tmp_path)
    assert removed.returncode == 0 and f"removed {ids[2]}" in removed.stdout
    assert _jobs(env, tmp_path) == []
    missing = run_cli("jobs", "rm", "job-nope", env=env, cwd=tmp_path)
    assert missing.returncode == 5
    bad_age = run_cli("jobs", "prune", "--older-than", "soon", env=env, cwd=tmp_path)
    assert bad_age.returncode == 2 and "not a duration" in bad_age.stderr


def test_jobs_rm_keeps_a_running_job_without_force(
    slow_emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=slow_emulator.root)
    source = write_input(tmp_path / "in.jsonl", 2)
    assert run_cli("submit", str(source), env=env, cwd=tmp_path).returncode == 0
    (job,) = _jobs(env, tmp_path)
    refused = run_cli("jobs", "rm", str(job["job"]), env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert len(_jobs(env, tmp_path)) == 1
    forced = run_cli("jobs", "rm", "--force", str(job["job"]), env=env, cwd=tmp_path)
    assert forced.returncode == 0 and _jobs(env, tmp_path) == []


def test_unclosed_client_removes_its_temporary_folder(tmp_path: Path) -> None:
    client = BatchClient("openai", api_key="sk-test-finalizer", base_url="http://127.0.0.1:9/v1")
    folder = client.workdir
    client.prepare([{"custom_id": "a", "body": {"model": "m", "messages": []}}])
    assert folder.is_dir() and any(folder.rglob("*.jsonl"))
    del client
    gc.collect()
    assert not folder.exists()
