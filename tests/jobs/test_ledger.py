"""The SQLite ledger: schema, WAL, intent rows, history, locks, concurrency, no secrets."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from omnibatch.ledger import (
    DB_NAME,
    JobBusyError,
    JobNotFoundError,
    Ledger,
    LedgerError,
    NewPart,
    default_home,
    safe_url,
)


def _job(ledger: Ledger, key: str = "k1", **kw: object) -> str:
    args: dict[str, object] = {
        "job_key": key,
        "provider": "openai",
        "base_url": "https://user:pw@api.example.com/v1?api-version=1",
        "key_source": "$OPENAI_API_KEY",
        "embedded": False,
        "input_path": "/in.jsonl",
        "input_hash": "abc",
        "options": {"model": None},
    }
    args.update(kw)
    return ledger.create_job(**args).id  # type: ignore[arg-type]


def _parts(ledger: Ledger, job_id: str, tmp_path: Path, n: int = 2) -> None:
    parts = [
        NewPart(
            i,
            3,
            tmp_path / f"p{i}.jsonl",
            tmp_path / f"p{i}.ids",
            "/v1/chat/completions",
            "gpt-4o-mini",
        )
        for i in range(n)
    ]
    ledger.add_parts(job_id, parts, total=3 * n)


def test_creates_a_wal_database_in_home(tmp_path: Path) -> None:
    with Ledger(tmp_path / "h") as ledger:
        _job(ledger)
    db = sqlite3.connect(tmp_path / "h" / DB_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "parts", "files", "events"} <= tables


def test_home_defaults_to_env_then_platform_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OMNIBATCH_HOME", str(tmp_path / "x"))
    assert default_home() == tmp_path / "x"
    monkeypatch.delenv("OMNIBATCH_HOME")
    assert default_home().name == "omnibatch"


def test_base_url_is_stored_without_credentials_or_query(tmp_path: Path) -> None:
    assert safe_url("https://u:p@h:8443/v1?key=s#f") == "https://h:8443/v1"
    with Ledger(tmp_path) as ledger:
        job = ledger.job(_job(ledger))
    assert job.base_url == "https://api.example.com/v1"
    assert b"pw@" not in (tmp_path / DB_NAME).read_bytes()


def test_find_job_by_unique_prefix(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        job_id = _job(ledger)
        assert ledger.find_job(job_id[:10]) is not None
        assert ledger.find_job("job-zzzzzz") is None
        with pytest.raises(JobNotFoundError, match="omnibatch jobs"):
            ledger.job("job-missing")


def test_latest_job_skips_abandoned(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        first = _job(ledger)
        second = _job(ledger)
        latest = ledger.latest_job("k1")
        assert latest is not None and latest.id == second
        ledger.set_phase(second, "abandoned")
        latest = ledger.latest_job("k1")
        assert latest is not None and latest.id == first
        assert ledger.latest_job("other") is None


def test_intent_row_is_written_once_and_kept(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        job_id = _job(ledger)
        _parts(ledger, job_id, tmp_path)
        first = ledger.begin_create(job_id, 0, "key-1")
        again = ledger.begin_create(job_id, 0, "key-2")
        assert first.idempotency_key == again.idempotency_key == "key-1"
        assert first.intent_at is not None and first.batch_id is None
        # Re-recording the parts (a second prepare) never drops an intent.
        _parts(ledger, job_id, tmp_path)
        assert ledger.part(job_id, 0).idempotency_key == "key-1"
        ledger.record_batch(
            job_id,
            0,
            batch_id="b1",
            status="validating",
            provider_status="validating",
            counts={"total": 3},
        )
        job, part = ledger.find_batch("b1")  # type: ignore[misc]
        assert (job.id, part.part) == (job_id, 0)


def test_status_history_records_changes_only(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        job_id = _job(ledger)
        _parts(ledger, job_id, tmp_path, n=1)
        args = {"status": "running", "provider_status": "in_progress", "counts": {"total": 3}}
        assert ledger.update_status(job_id, 0, **args) is True  # type: ignore[arg-type]
        assert ledger.update_status(job_id, 0, **args) is False  # type: ignore[arg-type]
        ledger.update_status(
            job_id,
            0,
            status="succeeded",
            provider_status="completed",
            counts={"total": 3, "succeeded": 3},
            output_file_ids=["f1"],
        )
        statuses = [e.status for e in ledger.events(job_id) if e.kind == "status"]
        assert statuses == ["running", "succeeded"]
        assert ledger.part(job_id, 0).output_file_ids == ("f1",)


def test_upload_tracking(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        job_id = _job(ledger)
        _parts(ledger, job_id, tmp_path, n=1)
        ledger.begin_upload(job_id, 0, "name-a")
        assert [(f.state, f.file_id) for f in ledger.files(job_id)] == [("uploading", None)]
        ledger.record_upload(job_id, 0, "name-a", "file-1")
        assert ledger.part(job_id, 0).file_id == "file-1"
        ledger.set_file_state(job_id, 0, "name-a", "deleted")
        assert [(f.state, f.file_id) for f in ledger.files(job_id)] == [("deleted", "file-1")]


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        job = ledger.job(_job(ledger))
        with ledger.lock(job):
            # Another process cannot take it.
            code = textwrap.dedent(f"""
                from omnibatch.ledger import Ledger, JobBusyError
                with Ledger({str(tmp_path)!r}) as ledger:
                    try:
                        with ledger.lock(ledger.job({job.id!r})):
                            print("locked")
                    except JobBusyError as exc:
                        print("busy", exc)
            """)
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
            assert out.startswith("busy") and "pid " in out
            with pytest.raises(JobBusyError), Ledger(tmp_path) as other, other.lock(job):
                pass
        with ledger.lock(job):
            pass


def test_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        job = ledger.job(_job(ledger))
    code = textwrap.dedent(f"""
        import os, signal
        from omnibatch.ledger import Ledger
        ledger = Ledger({str(tmp_path)!r})
        with ledger.lock(ledger.job({job.id!r})):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    with Ledger(tmp_path) as ledger, ledger.lock(job):
        pass


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        job_id = _job(ledger)
    code = textwrap.dedent(f"""
        import sys
        from omnibatch.ledger import Ledger
        with Ledger({str(tmp_path)!r}) as ledger:
            for i in range(100):
                ledger.note({job_id!r}, "tick", writer=sys.argv[1], i=i)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)]) for w in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    with Ledger(tmp_path) as ledger:
        ticks = [e for e in ledger.events(job_id) if e.kind == "tick"]
    assert len(ticks) == 400
    assert {(e.detail or {})["writer"] for e in ticks} == {"0", "1", "2", "3"}


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    Ledger(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="newer omnibatch"):
        Ledger(tmp_path)


def test_unwritable_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match="OMNIBATCH_HOME"):
        Ledger(blocker / "home")


def test_one_job_per_identity_has_no_salt_and_schema_1_migrates(tmp_path: Path) -> None:
    home = tmp_path / "h"
    with Ledger(home) as ledger:
        first, created = ledger.open_job(**_open_args("same"))
        again, created_again = ledger.open_job(**_open_args("same"))
        assert created and not created_again and again.id == first.id  # looked up, not added
        later, _ = ledger.open_job(**_open_args("same"), new=True)
        assert (first.key_salt, later.key_salt) == ("", later.id)
        assert first.identity != later.identity
    # A schema-1 ledger (no salt column) holding two jobs of one identity migrates on open.
    db = sqlite3.connect(home / DB_NAME)
    db.execute("DROP INDEX jobs_identity")
    db.execute("ALTER TABLE jobs DROP COLUMN key_salt")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Ledger(home) as ledger:
        salts = {j.id: j.key_salt for j in ledger.list_jobs()}
    assert salts == {first.id: "", later.id: later.id}


def _open_args(key: str) -> dict[str, object]:
    return {
        "job_key": key,
        "provider": "openai",
        "base_url": None,
        "key_source": None,
        "embedded": False,
        "input_path": "/in.jsonl",
        "input_hash": "abc",
        "options": {},
    }
