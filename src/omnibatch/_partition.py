"""Bucketed spill files: the building block of the bounded-memory duplicate check and join.

A :class:`BucketStore` keeps items ``(key, number, line)`` in ``buckets`` buckets chosen by the
caller (a hash of the key, or a range of positions). Items are buffered in memory and written in
frames to one temporary file when :meth:`BucketStore.flush` is called (callers do so once
:attr:`BucketStore.pending_bytes` or the item count they track is large enough);
:meth:`BucketStore.read` returns one bucket's items in the order they were added. Memory is the
buffer plus one bucket being read.

Hot loops append to :attr:`keys`, :attr:`numbers` and :attr:`lines` directly (``flush`` empties
them in place, so references stay valid). Keys are any strings (a frame stores them as one JSON
array, so newlines and quotes are safe). Lines are byte strings that end with ``\\n`` and contain
no other ``\\n`` or ``\\r`` (JSON lines as orjson writes them): each bucket's lines are appended
to one ``bytearray``, which keeps the allocator from fragmenting over millions of small objects,
and split back in C when read.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from array import array
from collections.abc import Iterable
from pathlib import Path

import orjson

__all__ = ["BucketStore", "bucket_count"]

_HEADER = struct.Struct("<QQQ")  # items, keys bytes, lines bytes


def bucket_count(
    total_bytes: int, total_items: int, *, bucket_bytes: int, bucket_items: int
) -> int:
    """The power of two of buckets that keeps one bucket under both budgets."""
    need = max(1, -(-total_bytes // bucket_bytes), -(-total_items // bucket_items))
    return 1 << (need - 1).bit_length()


class BucketStore:
    """Append-only bucketed items on one temporary file (see the module docstring)."""

    def __init__(
        self, path: Path, buckets: int, *, with_keys: bool = True, with_lines: bool = False
    ) -> None:
        self.path = path
        self.buckets = buckets
        self.with_keys = with_keys
        self.with_lines = with_lines
        self.keys: list[list[str]] = [[] for _ in range(buckets)]
        self.numbers: list[array[int]] = [array("q") for _ in range(buckets)]
        self.lines: list[bytearray] = [bytearray() for _ in range(buckets)]
        self._frames: list[array[int]] = [array("q") for _ in range(buckets)]  # offset, size
        self._fh: io.BufferedRandom | None = open(path, "w+b")  # noqa: SIM115 - closed by close()
        self._end = 0
        self._buffer = bytearray()  # reused by read(): fresh 8 MB buffers cost page faults

    @property
    def pending_bytes(self) -> int:
        return sum(map(len, self.lines))

    def add(self, bucket: int, key: str, number: int, line: bytes = b"") -> None:
        """Add one item (hot loops append to the lists themselves)."""
        if self.with_keys:
            self.keys[bucket].append(key)
        self.numbers[bucket].append(number)
        if self.with_lines:
            self.lines[bucket] += line

    def extend(
        self, bucket: int, keys: Iterable[str], numbers: Iterable[int], lines: bytes = b""
    ) -> None:
        """Add many items to one bucket (``lines`` already joined)."""
        if self.with_keys:
            self.keys[bucket].extend(keys)
        self.numbers[bucket].extend(numbers)
        if self.with_lines:
            self.lines[bucket] += lines

    def flush(self) -> None:
        fh = self._require()
        fh.seek(self._end)
        for bucket in range(self.buckets):
            numbers = self.numbers[bucket]
            if not numbers:
                continue
            keys = orjson.dumps(self.keys[bucket]) if self.with_keys else b""
            lines = self.lines[bucket]
            header = _HEADER.pack(len(numbers), len(keys), len(lines))
            fh.write(header + keys + numbers.tobytes())
            fh.write(lines)
            size = _HEADER.size + len(keys) + 8 * len(numbers) + len(lines)
            self._frames[bucket].extend((self._end, size))
            self._end += size
            self.keys[bucket].clear()
            del numbers[:]
            lines.clear()

    def read(self, bucket: int) -> tuple[list[str], array[int], list[bytes]]:
        """One bucket's keys, numbers and lines (each with its newline), in insertion order."""
        self.flush()
        fh = self._require()
        keys: list[str] = []
        numbers: array[int] = array("q")
        lines: list[bytes] = []
        frames = self._frames[bucket]
        for i in range(0, len(frames), 2):
            size = frames[i + 1]
            if len(self._buffer) < size:
                self._buffer = bytearray(size)
            view = memoryview(self._buffer)[:size]
            fh.seek(frames[i])
            fh.readinto(view)
            count, keys_len, lines_len = _HEADER.unpack_from(view)
            at = _HEADER.size
            if keys_len:
                keys.extend(orjson.loads(view[at : at + keys_len]))
            at += keys_len
            numbers.frombytes(view[at : at + 8 * count])
            at += 8 * count
            if lines_len:
                lines.extend(bytes(view[at : at + lines_len]).splitlines(keepends=True))
            view.release()
        return keys, numbers, lines

    def _require(self) -> io.BufferedRandom:
        if self._fh is None:
            raise ValueError(f"bucket store {self.path} is closed")
        return self._fh

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
