"""Sets of custom ids that stay small in memory however many ids there are.

* :class:`DuplicateFinder` finds repeated ids in a stream (the input pipeline): exact in a dict
  up to ``memory_keys`` ids, then hash-partitioned on disk and checked bucket by bucket at the
  end, with the line of every repeat and of its first occurrence.
* :class:`SeenSet` answers "seen before?" at once, for any number of ids (results of one batch):
  a set in memory, then a temporary SQLite table.
* ``.ids`` files (one custom id per line, in input order) are written with :func:`ids_text`
  and read with :func:`iter_ids`: an id that contains a newline or starts with a quote is
  written as a JSON string, so any id survives the round trip.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from omnibatch._partition import BucketStore

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "MEMORY_KEYS",
    "DuplicateFinder",
    "DuplicateId",
    "SeenSet",
    "ids_text",
    "iter_id_chunks",
    "iter_ids",
]

MEMORY_KEYS = 100_000
"""Ids kept in memory before spilling to disk (about 10 MB of Python strings)."""

_SPILL_BUCKETS = 64
_CHUNK = 65_536  # ids partitioned at once
_FLUSH_KEYS = 131_072  # ids buffered before a write (about 10 MB)
_BUCKET_KEYS = 250_000  # a bucket bigger than this is split again with further hash bits


def ids_text(ids: Sequence[str]) -> bytes:
    """``ids`` as lines of an ``.ids`` file (newline after each)."""
    if not ids:
        return b""
    text = "\n".join(ids)
    # Plain ids (the norm) are written as they are; check in C before looking at each one.
    if text.count("\n") != len(ids) - 1 or text[0] == '"' or '\n"' in text:
        text = "\n".join(_quoted(i) for i in ids)
    return text.encode() + b"\n"


def _quoted(custom_id: str) -> str:
    if "\n" in custom_id or "\r" in custom_id or custom_id.startswith('"'):
        return orjson.dumps(custom_id).decode()
    return custom_id


def iter_ids(path: Path) -> Iterator[str]:
    """The ids of an ``.ids`` file, in order."""
    for chunk in iter_id_chunks(path):
        yield from chunk


def iter_id_chunks(path: Path, block_size: int = 1 << 20) -> Iterator[list[str]]:
    """The ids of an ``.ids`` file, in order, a list per block read."""
    with open(path, "rb") as fh:
        tail = b""
        while True:
            block = fh.read(block_size)
            if not block:
                break
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            yield _decode_ids(lines)
        if tail:
            yield _decode_ids([tail])


def _decode_ids(lines: list[bytes]) -> list[str]:
    text = b"\n".join(lines)
    if b'"' not in text:  # no quoted id in this block: decode it all at once in C
        return [i for i in text.decode().split("\n") if i]
    return [
        orjson.loads(line) if line.startswith(b'"') else line.decode() for line in lines if line
    ]


@dataclass(frozen=True)
class DuplicateId:
    """A custom id seen again on ``line``; it first appeared on ``first_line``."""

    custom_id: str
    line: int
    first_line: int


class DuplicateFinder:
    """Finds repeated keys in bounded memory (see the module docstring).

    Callers on a hot path use :attr:`memory` directly while :attr:`spilled` is false (a dict
    ``key -> first line``; call :meth:`spill` once it holds ``memory_keys``), then
    :meth:`add_spilled`. :meth:`add` does that dispatch for everyone else.
    """

    def __init__(self, directory: Path, *, memory_keys: int = MEMORY_KEYS) -> None:
        self.directory = directory
        self.memory_keys = memory_keys
        self.memory: dict[str, int] = {}
        self.spilled = False
        self._store: BucketStore | None = None
        self._pending: list[str] = []
        self._pending_lines: array[int] = array("q")
        self._buffered = 0

    def add(self, key: str, line: int) -> int | None:
        """Record ``key`` seen on ``line``; returns the first line if it is a known repeat
        (repeats past the memory limit are found by :meth:`finish`)."""
        if self.spilled:
            self.add_spilled(key, line)
            return None
        first = self.memory.get(key)
        if first is not None:
            return first
        self.memory[key] = line
        if len(self.memory) >= self.memory_keys:
            self.spill()
        return None

    def spill(self) -> None:
        """Move the in-memory ids to disk; later ids go there too."""
        self._store = BucketStore(self.directory / "ids-spill.bin", _SPILL_BUCKETS)
        self._pending.extend(self.memory)
        self._pending_lines.extend(self.memory.values())
        self.memory = {}
        self.spilled = True
        self._partition()

    def add_spilled(self, key: str, line: int) -> None:
        self._pending.append(key)
        self._pending_lines.append(line)
        if len(self._pending) >= _CHUNK:
            self._partition()

    def add_spilled_many(self, keys: list[str], lines: list[int]) -> None:
        """:meth:`add_spilled` for many keys at once (cheaper per key)."""
        self._pending.extend(keys)
        self._pending_lines.extend(lines)
        if len(self._pending) >= _CHUNK:
            self._partition()

    def _partition(self) -> None:
        store = self._store
        assert store is not None
        mask = store.buckets - 1
        keys_of = store.keys
        lines_of = store.numbers
        for key, line in zip(self._pending, self._pending_lines, strict=True):
            bucket = hash(key) & mask
            keys_of[bucket].append(key)
            lines_of[bucket].append(line)
        self._buffered += len(self._pending)
        self._pending = []
        self._pending_lines = array("q")
        if self._buffered >= _FLUSH_KEYS:
            store.flush()
            self._buffered = 0

    def finish(self, limit: int = 1000) -> list[DuplicateId]:
        """Repeats found on disk (none unless :meth:`spill` ran), by line, at most ``limit``."""
        if self._store is None:
            return []
        self._partition()
        found: list[DuplicateId] = []
        for bucket in range(self._store.buckets):
            keys, lines, _ = self._store.read(bucket)
            found.extend(_repeats(keys, lines, level=1, limit=limit))
        found.sort(key=lambda d: d.line)
        return found[:limit]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self.memory = {}


def _repeats(keys: list[str], lines: array[int], *, level: int, limit: int) -> list[DuplicateId]:
    """Repeats among ``keys`` (one bucket, insertion order), splitting a bucket that is too big
    for memory by the next bits of the hash."""
    if len(keys) > _BUCKET_KEYS and level < 10:
        shift = 6 * level
        groups: dict[int, tuple[list[str], array[int]]] = {}
        for key, line in zip(keys, lines, strict=True):
            group = groups.setdefault((hash(key) >> shift) & 63, ([], array("q")))
            group[0].append(key)
            group[1].append(line)
        out: list[DuplicateId] = []
        for sub_keys, sub_lines in groups.values():
            out.extend(_repeats(sub_keys, sub_lines, level=level + 1, limit=limit))
        return out
    if len(set(keys)) == len(keys):  # the usual answer, decided in C
        return []
    counts = Counter(keys)
    first: dict[str, int] = {}
    out = []
    for key, line in zip(keys, lines, strict=True):
        if counts[key] < 2:
            continue
        if key in first:
            if len(out) < limit:
                out.append(DuplicateId(key, line, first[key]))
        else:
            first[key] = line
    return out


class SeenSet:
    """An exact set of strings: in memory up to ``memory_keys``, then in SQLite on disk."""

    def __init__(self, directory: Path | None = None, *, memory_keys: int | None = None) -> None:
        self._directory = directory
        self._memory: set[str] = set()
        self._memory_keys = memory_keys or MEMORY_KEYS
        self._db: sqlite3.Connection | None = None
        self._tmp: Path | None = None

    def add(self, key: str) -> bool:
        """Add ``key``; True if it was not there before."""
        if self._db is None:
            if key in self._memory:
                return False
            self._memory.add(key)
            if len(self._memory) >= self._memory_keys:
                self._spill()
            return True
        cursor = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,))
        return cursor.rowcount == 1

    def __contains__(self, key: object) -> bool:
        if self._db is None:
            return key in self._memory
        row = self._db.execute("SELECT 1 FROM seen WHERE k = ?", (key,)).fetchone()
        return row is not None

    def _spill(self) -> None:
        handle, name = tempfile.mkstemp(
            prefix="omnibatch-seen-", suffix=".sqlite3", dir=self._directory
        )
        os.close(handle)
        import sqlite3  # only big batches get here; keeps the import off the common path

        self._tmp = Path(name)
        db = sqlite3.connect(name, isolation_level=None)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-8000")  # 8 MB of page cache, whatever the size
        db.execute("CREATE TABLE seen (k TEXT PRIMARY KEY) WITHOUT ROWID")
        db.execute("BEGIN")
        db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((k,) for k in self._memory))
        self._memory = set()
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
        self._memory = set()

    def __enter__(self) -> SeenSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
