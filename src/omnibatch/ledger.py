"""The job ledger: a SQLite file that remembers every job, so a crashed run resumes and never
resubmits.

One record per logical job (input hash, provider, options, phase, output) and one per provider
batch (a *part* of the job: its uploaded file, the intent row written before each create with its
idempotency key, the batch id after, the last status), plus the files a job uploaded and a status
history. The database lives in ``$OMNIBATCH_HOME`` (default: the platform's user data directory)
and is opened in WAL mode; every read-modify-write runs in an ``IMMEDIATE`` transaction, so
concurrent runs on one home never lose an update. API keys are never written here: a job records
where its key came from (``$OPENAI_API_KEY``), not the key.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from omnibatch._exceptions import (
    BatchError,
    JobBusyError,
    JobNotFoundError,
    LedgerError,
    StorageError,
)

__all__ = [
    "HOME_ENV",
    "Event",
    "FileRecord",
    "JobBusyError",
    "JobNotFoundError",
    "JobRecord",
    "Ledger",
    "LedgerError",
    "PartRecord",
    "damage_error",
    "default_home",
    "safe_url",
    "writing",
]

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}

HOME_ENV = "OMNIBATCH_HOME"
DB_NAME = "ledger.sqlite3"
SCHEMA_VERSION = 2

# Job phases, in order. "abandoned" marks jobs that can never be resumed (the embedded emulator
# they ran on is gone).
PHASES = ("preparing", "submitting", "running", "collecting", "done", "abandoned")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    job_key     TEXT NOT NULL,
    provider    TEXT NOT NULL,
    base_url    TEXT,
    key_source  TEXT,
    embedded    INTEGER NOT NULL DEFAULT 0,
    input_path  TEXT NOT NULL,
    input_hash  TEXT NOT NULL,
    options     TEXT NOT NULL,
    phase       TEXT NOT NULL,
    total       INTEGER,
    output_path TEXT,
    summary     TEXT,
    workdir     TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    key_salt    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (job_key, created_at);
CREATE TABLE IF NOT EXISTS parts (
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    part            INTEGER NOT NULL,
    requests        INTEGER NOT NULL,
    part_path       TEXT NOT NULL,
    ids_path        TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    model           TEXT,
    upload_name     TEXT,
    file_id         TEXT,
    idempotency_key TEXT,
    intent_at       REAL,
    batch_id        TEXT,
    status          TEXT,
    provider_status TEXT,
    counts          TEXT,
    output_file_ids TEXT,
    error_file_ids  TEXT,
    results         TEXT,
    updated_at      REAL NOT NULL,
    PRIMARY KEY (job_id, part)
);
CREATE INDEX IF NOT EXISTS parts_by_batch ON parts (batch_id);
CREATE TABLE IF NOT EXISTS files (
    job_id     TEXT NOT NULL REFERENCES jobs (id),
    part       INTEGER NOT NULL,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    file_id    TEXT,
    state      TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (job_id, part, role, name)
);
CREATE TABLE IF NOT EXISTS events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    part            INTEGER,
    at              REAL NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT,
    provider_status TEXT,
    detail          TEXT
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, id);
"""

# One job per identity has no salt: the first. Its parts' idempotency keys derive from the
# identity alone, so a run that lost its ledger finds its batches at the provider.
_IDENTITY_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS jobs_identity ON jobs (job_key, key_salt)"


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Name ``path`` in the error when writing under it fails for want of space."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _FULL and not exc.filename:
            exc.filename = str(path)
        raise


def damage_error(exc: BaseException, ledger: Path | None) -> BatchError | None:
    """The one-line error for local damage (a full disk, a corrupted ledger), or None when
    ``exc`` is something else. Nothing recorded is lost in either case."""
    where = ledger or "the ledger"
    if isinstance(exc, sqlite3.DatabaseError):
        text = str(exc)
        if "full" in text or "disk I/O" in text:
            return StorageError(
                f"cannot write the ledger {where}: {text}; free some space (check the disk) and "
                "run the same command again (nothing recorded was lost)"
            )
        if any(w in text for w in ("malformed", "not a database", "corrupt")):
            return LedgerError(
                f"the ledger {where} is damaged ({text}); restore it from a backup, or move it "
                "aside and run again with --new: runs then find their batches at the provider "
                "by their keys"
            )
        return LedgerError(f"the ledger {where} failed: {text}")
    if isinstance(exc, OSError) and exc.errno in _FULL:
        name = exc.filename or "a file"
        return StorageError(
            f"cannot write {name}: {exc.strerror}; free some space (or point $OMNIBATCH_HOME / "
            "-o elsewhere) and run the same command again (nothing recorded was lost)"
        )
    return None


def default_home() -> Path:
    """``$OMNIBATCH_HOME``, else the platform's user data directory for omnibatch."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs  # only needed when no home is given

    return Path(platformdirs.user_data_dir("omnibatch", appauthor=False))


def safe_url(url: str | None) -> str | None:
    """``url`` without user info, query or fragment: what the ledger may keep of a base URL."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _loads(text: str | None, default: Any) -> Any:
    return default if text is None else orjson.loads(text)


@dataclass(frozen=True)
class JobRecord:
    """One logical job: an input run through one provider with one set of options."""

    id: str
    job_key: str
    provider: str
    base_url: str | None
    key_source: str | None
    embedded: bool
    input_path: str
    input_hash: str
    options: Mapping[str, Any]
    phase: str
    total: int | None
    output_path: str | None
    summary: Mapping[str, Any] | None
    workdir: Path
    created_at: float
    updated_at: float
    key_salt: str = ""
    """Empty for the first job of its identity; the job id for later ones (``--new``)."""

    @property
    def identity(self) -> str:
        """What the parts' idempotency keys derive from: the job key, salted for a job that is
        not the first of its identity."""
        return f"{self.job_key}:{self.key_salt}" if self.key_salt else self.job_key


@dataclass(frozen=True)
class PartRecord:
    """One part of a job and the provider batch created for it (once it exists)."""

    job_id: str
    part: int
    requests: int
    part_path: Path
    ids_path: Path
    endpoint: str
    model: str | None
    upload_name: str | None
    file_id: str | None
    idempotency_key: str | None
    intent_at: float | None
    batch_id: str | None
    status: str | None
    provider_status: str | None
    counts: Mapping[str, int] = field(default_factory=dict)
    output_file_ids: tuple[str, ...] = ()
    error_file_ids: tuple[str, ...] = ()
    results: tuple[Mapping[str, Any], ...] = ()
    updated_at: float = 0.0


@dataclass(frozen=True)
class FileRecord:
    """A file a job stored at the provider: ``state`` is uploading, uploaded, deleted or lost."""

    job_id: str
    part: int
    role: str
    name: str
    file_id: str | None
    state: str
    updated_at: float


@dataclass(frozen=True)
class Event:
    """One line of a job's history."""

    job_id: str
    part: int | None
    at: float
    kind: str
    status: str | None
    provider_status: str | None
    detail: Mapping[str, Any] | None


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"],
        job_key=row["job_key"],
        provider=row["provider"],
        base_url=row["base_url"],
        key_source=row["key_source"],
        embedded=bool(row["embedded"]),
        input_path=row["input_path"],
        input_hash=row["input_hash"],
        options=_loads(row["options"], {}),
        phase=row["phase"],
        total=row["total"],
        output_path=row["output_path"],
        summary=_loads(row["summary"], None),
        workdir=Path(row["workdir"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        key_salt=row["key_salt"],
    )


def _part(row: sqlite3.Row) -> PartRecord:
    return PartRecord(
        job_id=row["job_id"],
        part=row["part"],
        requests=row["requests"],
        part_path=Path(row["part_path"]),
        ids_path=Path(row["ids_path"]),
        endpoint=row["endpoint"],
        model=row["model"],
        upload_name=row["upload_name"],
        file_id=row["file_id"],
        idempotency_key=row["idempotency_key"],
        intent_at=row["intent_at"],
        batch_id=row["batch_id"],
        status=row["status"],
        provider_status=row["provider_status"],
        counts=_loads(row["counts"], {}),
        output_file_ids=tuple(_loads(row["output_file_ids"], [])),
        error_file_ids=tuple(_loads(row["error_file_ids"], [])),
        results=tuple(_loads(row["results"], [])),
        updated_at=row["updated_at"],
    )


@dataclass(frozen=True)
class NewPart:
    """What the ledger needs to know about a prepared part."""

    part: int
    requests: int
    part_path: Path
    ids_path: Path
    endpoint: str
    model: str | None


class Ledger:
    """The SQLite ledger in ``home`` (created on first use). Use it as a context manager."""

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 30.0,
        accept_empty: bool = False,
    ):
        self.home = Path(home).expanduser() if home is not None else default_home()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the omnibatch home {self.home}: {exc}; set ${HOME_ENV} to a "
                "writable directory"
            ) from exc
        self.path = self.home / DB_NAME
        if not accept_empty:
            self._refuse_lost()
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                self._db = self._connect(timeout)
                break
            except sqlite3.OperationalError as exc:
                # Two processes creating a fresh ledger at once: switching it to WAL takes a lock
                # SQLite's busy handler does not wait for. Wait here instead.
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except sqlite3.DatabaseError as exc:
                raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from exc

    def _refuse_lost(self) -> None:
        """An empty or missing ledger beside job folders was lost, not new: starting afresh would
        forget which batches are paid for. (Runs find their batches again by their keys, but
        only when asked to: ``accept_empty``, the CLI's ``--new``.)"""
        wal = self.path.with_name(self.path.name + "-wal")
        empty = (not self.path.exists() or self.path.stat().st_size == 0) and (
            not wal.exists() or wal.stat().st_size == 0
        )
        if not empty or not self.jobs_dir.is_dir():
            return
        jobs = [p.name for p in self.jobs_dir.iterdir() if p.is_dir()]
        if jobs:
            state = "empty" if self.path.exists() else "missing"
            raise LedgerError(
                f"the ledger {self.path} is {state} but {self.jobs_dir} holds {len(jobs)} "
                "job folder(s): it was lost or truncated. Restore it from a backup, or pass "
                "--new to start a new ledger (runs then find their batches at the provider "
                "by their keys instead of submitting again)"
            )

    def _connect(self, timeout: float) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            # FULL: an intent row must survive a power cut, not only a killed process.
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            self._db = db
            self._migrate()
        except BaseException:
            db.close()
            raise
        return db

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.home)!r})"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    def _migrate(self) -> None:
        with self.transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.path} was written by a newer omnibatch (schema {version}); upgrade "
                    f"omnibatch or point ${HOME_ENV} elsewhere"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "key_salt" not in columns:  # schema 1: the oldest job of each identity keeps it
                self._db.execute("ALTER TABLE jobs ADD COLUMN key_salt TEXT NOT NULL DEFAULT ''")
                self._db.execute(
                    "UPDATE jobs SET key_salt = id WHERE rowid NOT IN "
                    "(SELECT MIN(rowid) FROM jobs GROUP BY job_key)"
                )
            self._db.execute(_IDENTITY_INDEX)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: it takes the write lock up front, so two processes never
        both read a state and then both act on it."""
        if self._db.in_transaction:
            yield self._db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- jobs -----------------------------------------------------------------------------------

    def open_job(
        self,
        *,
        job_key: str,
        provider: str,
        base_url: str | None,
        key_source: str | None,
        embedded: bool,
        input_path: str,
        input_hash: str,
        options: Mapping[str, Any],
        output_path: str | None = None,
        new: bool = False,
    ) -> tuple[JobRecord, bool]:
        """The latest resumable job with this identity, or (``new``, or none) a new one: looked
        up and created in one transaction, so two processes starting the same job at once get
        the same record. Returns (job, created)."""
        now = time.time()
        with self.transaction() as db:
            if not new:
                found = self.latest_job(job_key)
                if found is not None:
                    return found, False
            job_id = "job-" + uuid.uuid4().hex[:12]
            first = db.execute(
                "SELECT 1 FROM jobs WHERE job_key = ? AND key_salt = ''", (job_key,)
            ).fetchone()
            workdir = self.jobs_dir / job_id
            db.execute(
                "INSERT INTO jobs (id, job_key, provider, base_url, key_source, embedded, "
                "input_path, input_hash, options, phase, output_path, workdir, created_at, "
                "updated_at, key_salt) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'preparing', ?, ?, ?, ?, ?)",
                (
                    job_id,
                    job_key,
                    provider,
                    safe_url(base_url),
                    key_source,
                    int(embedded),
                    input_path,
                    input_hash,
                    _dumps(dict(options)),
                    output_path,
                    str(workdir),
                    now,
                    now,
                    job_id if first else "",
                ),
            )
            self._event(job_id, None, "created", detail={"input": input_path})
        workdir.mkdir(parents=True, exist_ok=True)
        return self.job(job_id), True

    def create_job(self, **fields: Any) -> JobRecord:
        """Record a new job (see :meth:`open_job`)."""
        return self.open_job(**fields, new=True)[0]

    def find_job(self, job_id: str) -> JobRecord | None:
        """The job with this id, or with this unique id prefix (``job-3f2a``)."""
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None and job_id.startswith("job-") and len(job_id) >= 8:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                (job_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
            ).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return _job(row) if row is not None else None

    def job(self, job_id: str) -> JobRecord:
        found = self.find_job(job_id)
        if found is None:
            raise JobNotFoundError(
                f"no job {job_id!r} in the ledger {self.path} (`omnibatch jobs` lists them)"
            )
        return found

    def latest_job(self, job_key: str) -> JobRecord | None:
        """The newest job with this identity that can still be resumed (not abandoned)."""
        row = self._db.execute(
            "SELECT * FROM jobs WHERE job_key = ? AND phase != 'abandoned' "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (job_key,),
        ).fetchone()
        return _job(row) if row is not None else None

    def list_jobs(self, limit: int | None = None) -> list[JobRecord]:
        """Jobs, newest first."""
        sql = "SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [_job(row) for row in self._db.execute(sql, params)]

    def delete_job(self, job_id: str) -> None:
        """Forget a job: its rows (parts, files, history) and its working folder."""
        job = self.job(job_id)
        with self.transaction() as db:
            for table in ("events", "files", "parts", "jobs"):
                column = "id" if table == "jobs" else "job_id"
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (job_id,))
        shutil.rmtree(job.workdir, ignore_errors=True)

    def set_phase(self, job_id: str, phase: str, **fields: Any) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown job phase {phase!r}")
        allowed = {"total", "output_path", "summary"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} on a job")
        values = {
            k: (_dumps(v) if k == "summary" and v is not None else v) for k, v in fields.items()
        }
        assignments = "".join(f", {k} = ?" for k in values)
        with self.transaction() as db:
            old = db.execute("SELECT phase FROM jobs WHERE id = ?", (job_id,)).fetchone()
            db.execute(
                f"UPDATE jobs SET phase = ?, updated_at = ?{assignments} WHERE id = ?",
                (phase, time.time(), *values.values(), job_id),
            )
            if old is not None and old["phase"] != phase:
                self._event(job_id, None, "phase", status=phase)

    def note(self, job_id: str, kind: str, part: int | None = None, **detail: Any) -> None:
        """Add a line to the job's history."""
        with self.transaction():
            self._event(job_id, part, kind, detail=detail or None)

    # --- parts ----------------------------------------------------------------------------------

    def add_parts(self, job_id: str, parts: Sequence[NewPart], total: int) -> None:
        """Record the prepared parts (all at once) and move the job to ``submitting``. Parts
        already recorded are kept as they are: their intent rows must never be lost."""
        now = time.time()
        with self.transaction() as db:
            for p in parts:
                db.execute(
                    "INSERT OR IGNORE INTO parts (job_id, part, requests, part_path, ids_path, "
                    "endpoint, model, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        p.part,
                        p.requests,
                        str(p.part_path),
                        str(p.ids_path),
                        p.endpoint,
                        p.model,
                        now,
                    ),
                )
            db.execute(
                "UPDATE jobs SET phase = 'submitting', total = ?, updated_at = ? WHERE id = ?",
                (total, now, job_id),
            )
            self._event(job_id, None, "prepared", detail={"parts": len(parts), "total": total})

    def parts(self, job_id: str) -> list[PartRecord]:
        rows = self._db.execute(
            "SELECT * FROM parts WHERE job_id = ? ORDER BY part", (job_id,)
        ).fetchall()
        return [_part(row) for row in rows]

    def part(self, job_id: str, part: int) -> PartRecord:
        row = self._db.execute(
            "SELECT * FROM parts WHERE job_id = ? AND part = ?", (job_id, part)
        ).fetchone()
        if row is None:
            raise LedgerError(f"job {job_id} has no part {part}")
        return _part(row)

    def find_batch(self, batch_id: str) -> tuple[JobRecord, PartRecord] | None:
        """The job and part that created provider batch ``batch_id``, if this ledger knows it."""
        row = self._db.execute(
            "SELECT * FROM parts WHERE batch_id = ? ORDER BY updated_at DESC LIMIT 1",
            (batch_id,),
        ).fetchone()
        if row is None:
            return None
        part = _part(row)
        return self.job(part.job_id), part

    def begin_upload(self, job_id: str, part: int, name: str) -> None:
        """Record, before sending it, that an upload named ``name`` starts for ``part``."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO files (job_id, part, role, name, state, updated_at) "
                "VALUES (?, ?, 'input', ?, 'uploading', ?)",
                (job_id, part, name, now),
            )
            db.execute(
                "UPDATE parts SET upload_name = ?, updated_at = ? WHERE job_id = ? AND part = ?",
                (name, now, job_id, part),
            )

    def record_upload(self, job_id: str, part: int, name: str, file_id: str) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET file_id = ?, state = 'uploaded', updated_at = ? "
                "WHERE job_id = ? AND part = ? AND role = 'input' AND name = ?",
                (file_id, now, job_id, part, name),
            )
            db.execute(
                "UPDATE parts SET file_id = ?, updated_at = ? WHERE job_id = ? AND part = ?",
                (file_id, now, job_id, part),
            )
            self._event(job_id, part, "uploaded", detail={"file_id": file_id})

    def set_file_state(
        self, job_id: str, part: int, name: str, state: str, file_id: str | None = None
    ) -> None:
        """Move a recorded file to ``state`` (deleted, lost); ``file_id`` fills a missing id."""
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET state = ?, file_id = COALESCE(?, file_id), updated_at = ? "
                "WHERE job_id = ? AND part = ? AND name = ?",
                (state, file_id, time.time(), job_id, part, name),
            )
            self._event(job_id, part, f"file-{state}", detail={"name": name, "file_id": file_id})

    def add_file(self, job_id: str, part: int, role: str, file_id: str, state: str) -> None:
        """Record a file the provider made for the job (output and error files)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO files (job_id, part, role, name, file_id, state, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, part, role, name) DO UPDATE "
                "SET state = excluded.state, updated_at = excluded.updated_at",
                (job_id, part, role, file_id, file_id, state, time.time()),
            )

    def files(self, job_id: str) -> list[FileRecord]:
        rows = self._db.execute(
            "SELECT * FROM files WHERE job_id = ? ORDER BY part, role, updated_at", (job_id,)
        ).fetchall()
        return [
            FileRecord(
                row["job_id"],
                row["part"],
                row["role"],
                row["name"],
                row["file_id"],
                row["state"],
                row["updated_at"],
            )
            for row in rows
        ]

    def begin_create(self, job_id: str, part: int, key: str) -> PartRecord:
        """Write the intent row of a create: its idempotency key and when, *before* the create
        request is sent. An existing intent is kept (the same key is reused on resume)."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE parts SET idempotency_key = ?, intent_at = ?, updated_at = ? "
                "WHERE job_id = ? AND part = ? AND idempotency_key IS NULL",
                (key, now, now, job_id, part),
            )
            if cur.rowcount:
                self._event(job_id, part, "create-intent", detail={"idempotency_key": key})
        return self.part(job_id, part)

    def record_batch(
        self,
        job_id: str,
        part: int,
        *,
        batch_id: str,
        status: str,
        provider_status: str,
        counts: Mapping[str, int],
        reconciled: bool = False,
    ) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE parts SET batch_id = ?, status = ?, provider_status = ?, counts = ?, "
                "updated_at = ? WHERE job_id = ? AND part = ?",
                (batch_id, status, provider_status, _dumps(dict(counts)), now, job_id, part),
            )
            self._event(
                job_id,
                part,
                "reattached" if reconciled else "batch-created",
                status=status,
                provider_status=provider_status,
                detail={"batch_id": batch_id},
            )

    def update_status(
        self,
        job_id: str,
        part: int,
        *,
        status: str,
        provider_status: str,
        counts: Mapping[str, int],
        output_file_ids: Sequence[str] = (),
        error_file_ids: Sequence[str] = (),
    ) -> bool:
        """Store a batch's latest state; True (and a history line) when its status changed."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT status, provider_status FROM parts WHERE job_id = ? AND part = ?",
                (job_id, part),
            ).fetchone()
            changed = row is None or (row["status"], row["provider_status"]) != (
                status,
                provider_status,
            )
            db.execute(
                "UPDATE parts SET status = ?, provider_status = ?, counts = ?, "
                "output_file_ids = ?, error_file_ids = ?, updated_at = ? "
                "WHERE job_id = ? AND part = ?",
                (
                    status,
                    provider_status,
                    _dumps(dict(counts)),
                    _dumps(list(output_file_ids)),
                    _dumps(list(error_file_ids)),
                    time.time(),
                    job_id,
                    part,
                ),
            )
            if changed:
                self._event(job_id, part, "status", status=status, provider_status=provider_status)
        return changed

    def record_results(self, job_id: str, part: int, results: Sequence[Mapping[str, Any]]) -> None:
        """Where a part's results were downloaded to (kind, name, local path)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE parts SET results = ?, updated_at = ? WHERE job_id = ? AND part = ?",
                (_dumps([dict(r) for r in results]), time.time(), job_id, part),
            )

    # --- history ---------------------------------------------------------------------------------

    def _event(
        self,
        job_id: str,
        part: int | None,
        kind: str,
        *,
        status: str | None = None,
        provider_status: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self._db.execute(
            "INSERT INTO events (job_id, part, at, kind, status, provider_status, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                part,
                time.time(),
                kind,
                status,
                provider_status,
                _dumps(dict(detail)) if detail else None,
            ),
        )

    def events(self, job_id: str) -> list[Event]:
        rows = self._db.execute(
            "SELECT * FROM events WHERE job_id = ? ORDER BY id", (job_id,)
        ).fetchall()
        return [
            Event(
                row["job_id"],
                row["part"],
                row["at"],
                row["kind"],
                row["status"],
                row["provider_status"],
                _loads(row["detail"], None),
            )
            for row in rows
        ]

    # --- one process per job --------------------------------------------------------------------

    @contextmanager
    def lock(self, job: JobRecord) -> Iterator[None]:
        """Hold the job's lock file while working on it. The OS drops the lock when the process
        dies (even by SIGKILL), so a crashed run never blocks its own resume."""
        job.workdir.mkdir(parents=True, exist_ok=True)
        path = job.workdir / "lock"
        with open(path, "a+b") as fh:
            if not _try_lock(fh):
                holder = ""
                for _ in range(50):  # the holder writes its pid just after taking the lock
                    fh.seek(0)
                    holder = fh.read().decode(errors="replace").strip()
                    if holder:
                        break
                    time.sleep(0.02)
                holder = holder or "another process"
                raise JobBusyError(
                    f"job {job.id} is being run by {holder}; wait for it to finish, or follow "
                    f"it with `omnibatch wait {job.id}`"
                )
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(f"omnibatch pid {os.getpid()}".encode())
                fh.flush()
                yield
            finally:
                fh.seek(0)
                fh.truncate()
                _unlock(fh)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fh: IO[bytes]) -> bool:
        fh.seek(0)
        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fh: IO[bytes]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
