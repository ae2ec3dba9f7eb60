"""Reading result files: parse every line, join to custom ids, report what is missing.

Output and error files (or a provider's single results stream, or inline records) are read
lazily from disk, a block at a time. Requests that no source mentions come back as ``errored``
results with code ``missing_result`` (``cancelled`` / ``expired`` when the batch was stopped
before they ran), never silently dropped. A line that cannot be parsed raises
:class:`~omnibatch.ProviderResponseError` naming the file and the line.

:func:`write_output` joins a job's results to its inputs in input order with memory bounded by
constants, not by the number of requests: a part whose results fit in a few tens of megabytes
is joined in memory; a bigger one is joined on disk (a hash join over bucket files, then the
lines are put back in input order one range of positions at a time).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson

from omnibatch._exceptions import ProviderResponseError
from omnibatch._index import SeenSet, iter_id_chunks, iter_ids
from omnibatch._lifecycle import FetchedSource
from omnibatch._partition import BucketStore, bucket_count
from omnibatch._status import BatchStatus
from omnibatch.adapter import ProviderAdapter, ResultSource
from omnibatch.models import BatchResult, ResultError, ResultStatus

__all__ = [
    "MISSING_CODE",
    "OutputSummary",
    "PartResults",
    "iter_batch_results",
    "missing_result",
    "read_ids",
    "write_output",
]

log = logging.getLogger("omnibatch.results")

MISSING_CODE = "missing_result"

MEMORY_RESULT_BYTES = 40 * 1024 * 1024
"""A part whose result files are larger than this is joined on disk."""
MEMORY_IDS = 100_000
"""A part with more requests than this is joined on disk."""
_BUCKET_BYTES = 4 * 1024 * 1024
_BUCKET_ITEMS = 65_536
_IOV_MAX = 1024
_MIN_SPAN = 1024

# Some providers (Mistral) list only the requests that ran: in a batch that was stopped, a
# request without a line never ran, which is not an error.
_NEVER_RAN = {
    BatchStatus.CANCELLED: (ResultStatus.CANCELLED, "the batch was cancelled before it ran"),
    BatchStatus.EXPIRED: (ResultStatus.EXPIRED, "the batch expired before it ran"),
}
_NO_RESULT = (ResultStatus.ERRORED, "the provider returned no result for this request")

# Outcomes as small numbers, so bucket files can carry them beside each line.
_STATUSES = ("succeeded", "errored", "expired", "cancelled")
_CODE = {name: code for code, name in enumerate(_STATUSES)}
_MISSING_FLAG = 8


def missing_result(
    custom_id: str, batch_id: str | None, batch_status: BatchStatus | None = None
) -> BatchResult:
    status, message = _missing_outcome(batch_status)
    return BatchResult(
        custom_id=custom_id,
        status=status,
        error=ResultError(code=MISSING_CODE, message=message),
        batch_id=batch_id,
    )


def _missing_outcome(batch_status: BatchStatus | None) -> tuple[ResultStatus, str]:
    never_ran = _NEVER_RAN.get(batch_status) if batch_status is not None else None
    return never_ran or _NO_RESULT


def read_ids(path: Path) -> Iterator[str]:
    """The custom ids of a part's ``.ids`` file, in input order."""
    return iter_ids(path)


# --- reading result sources ---------------------------------------------------------------------


def _source_name(fetched: FetchedSource) -> str:
    source = fetched.source
    return source.name or source.kind


def _raw_records(
    adapter: ProviderAdapter, fetched: FetchedSource
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(line or index, record)`` of one source; malformed JSON raises with file and line."""
    source = fetched.source
    if fetched.path is None:
        yield from enumerate(source.records or (), start=1)
        return
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    with open(fetched.path, "rb", buffering=1 << 20) as fh:
        for number, line in enumerate(fh, start=1):
            try:
                record = loads(line)
            except decode_error as exc:
                if not line.strip():
                    continue
                raise _parse_error(adapter, fetched, number, exc) from exc
            if record.__class__ is not dict:
                kind = type(record).__name__
                error = TypeError(f"a result line must be a JSON object, got {kind}")
                raise _parse_error(adapter, fetched, number, error)
            yield number, record


def _parse_error(
    adapter: ProviderAdapter, fetched: FetchedSource, number: int, exc: BaseException
) -> ProviderResponseError:
    if fetched.path is None:
        where = f"inline result {number} of {_source_name(fetched)}"
    else:
        where = f"{_source_name(fetched)} ({fetched.path}) line {number}"
    detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    what = f"missing field {detail!r}" if isinstance(exc, KeyError) else str(detail)
    return ProviderResponseError(f"{where}: cannot parse result: {what}", provider=adapter.name)


def _records(adapter: ProviderAdapter, fetched: FetchedSource) -> Iterator[BatchResult]:
    source = fetched.source
    parse = adapter.parse_result_line
    for number, record in _raw_records(adapter, fetched):
        try:
            yield parse(record, source)
        except (KeyError, TypeError, ValueError) as exc:
            raise _parse_error(adapter, fetched, number, exc) from exc


def iter_batch_results(
    adapter: ProviderAdapter,
    fetched: Iterable[FetchedSource],
    *,
    batch_id: str,
    expected_ids: Iterable[str] | None = None,
    batch_status: BatchStatus | None = None,
) -> Iterator[BatchResult]:
    """Every result of one batch, each custom id once; with ``expected_ids``, the ids no source
    mentioned follow as ``missing_result`` errors (``cancelled`` / ``expired`` when
    ``batch_status`` says the batch was stopped before they ran). The ids seen so far are kept
    in memory up to a limit, then in a temporary SQLite file."""
    with SeenSet() as seen:
        for item in fetched:
            for result in _records(adapter, item):
                if not seen.add(result.custom_id):
                    continue
                yield (
                    result if result.batch_id else result.model_copy(update={"batch_id": batch_id})
                )
        if expected_ids is not None:
            for custom_id in expected_ids:
                if seen.add(custom_id):
                    yield missing_result(custom_id, batch_id, batch_status)


# --- writing a job's output ---------------------------------------------------------------------


@dataclass(frozen=True)
class PartResults:
    """The results of one part of a job: its expected ids (in input order) and fetched sources."""

    adapter: ProviderAdapter
    batch_id: str
    ids_path: Path
    fetched: Sequence[FetchedSource]
    batch_status: BatchStatus | None = None


@dataclass
class OutputSummary:
    """What :func:`write_output` wrote, by outcome. ``missing`` counts lines written for
    requests no result mentioned (also counted in their outcome); ``unexpected`` counts results
    whose custom id is not among the part's requests and ``duplicates`` repeated results for one
    custom id (the first is kept): neither is written."""

    total: int = 0
    succeeded: int = 0
    errored: int = 0
    expired: int = 0
    cancelled: int = 0
    missing: int = 0
    unexpected: int = 0
    duplicates: int = 0

    def count(self, result: BatchResult) -> None:
        self._add(
            result.status.value, result.error is not None and result.error.code == MISSING_CODE
        )

    def _add(self, status: str, missing: bool = False) -> None:
        self.total += 1
        setattr(self, status, getattr(self, status) + 1)
        if missing:
            self.missing += 1

    def _add_counts(self, counts: Sequence[int]) -> None:
        for code, count in enumerate(counts):
            if count:
                status = _STATUSES[code & 7]
                setattr(self, status, getattr(self, status) + count)
                self.total += count
                if code & _MISSING_FLAG:
                    self.missing += count


def write_output(parts: Sequence[PartResults], out_path: Path) -> OutputSummary:
    """Write one line per input custom id, in input order, across all parts of a job.

    The file is written beside ``out_path`` and renamed into place when complete; scratch files
    of big parts live in a temporary directory beside it and are removed afterwards."""
    summary = OutputSummary()
    tmp = out_path.with_name(out_path.name + ".tmp")
    scratch: Path | None = None
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                if _fits_in_memory(part):
                    _join_in_memory(part, out, summary)
                else:
                    if scratch is None:
                        scratch = Path(
                            tempfile.mkdtemp(prefix=f".{out_path.name}.", dir=out_path.parent)
                        )
                    _join_on_disk(part, out, summary, scratch)
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if summary.unexpected or summary.duplicates:
        log.warning(
            "%d result(s) named a custom id that is not in the input and %d repeated a custom "
            "id; they were left out of %s",
            summary.unexpected,
            summary.duplicates,
            out_path,
        )
    return summary


def _result_bytes(part: PartResults) -> int:
    return sum(f.path.stat().st_size for f in part.fetched if f.path is not None)


def _count_ids(path: Path) -> int:
    count = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _fits_in_memory(part: PartResults) -> bool:
    if any(f.path is None for f in part.fetched):
        return True  # inline records are in memory already
    return _result_bytes(part) <= MEMORY_RESULT_BYTES and _count_ids(part.ids_path) <= MEMORY_IDS


class _Lines:
    """Turns result records into output lines (bytes with a newline) and outcome codes."""

    def __init__(self, part: PartResults) -> None:
        self.part = part
        status, message = _missing_outcome(part.batch_status)
        self.missing_code = _CODE[status.value] | _MISSING_FLAG
        self._missing_tail = orjson.dumps(
            {"status": status.value, "error": {"code": MISSING_CODE, "message": message}}
        )

    def missing(self, custom_id: str) -> bytes:
        # orjson writes keys in insertion order: splice the id in front of the fixed tail.
        return b'{"custom_id":' + orjson.dumps(custom_id) + b"," + self._missing_tail[1:] + b"\n"

    def each(self) -> Iterator[tuple[str, int, bytes]]:
        """``(custom_id, outcome code, line)`` for every record of every source."""
        part = self.part
        adapter = part.adapter
        convert = adapter.output_line
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        codes = _CODE
        for fetched in part.fetched:
            source: ResultSource = fetched.source
            for number, record in _raw_records(adapter, fetched):
                try:
                    line = convert(record, source)
                    yield line["custom_id"], codes[line["status"]], dumps(line, option=newline)
                except (KeyError, TypeError, ValueError) as exc:
                    raise _parse_error(adapter, fetched, number, exc) from exc


def _join_in_memory(part: PartResults, out: IO[bytes], summary: OutputSummary) -> None:
    ids = list(iter_ids(part.ids_path))
    position = dict(zip(ids, range(len(ids)), strict=True))
    if len(position) != len(ids):  # repeated ids in the input: the first one gets the result
        position = {}
        for index, custom_id in enumerate(ids):
            position.setdefault(custom_id, index)
    slots: list[bytes | None] = [None] * len(ids)
    counts = [0] * 16
    lines = _Lines(part)
    for custom_id, code, data in lines.each():
        at = position.get(custom_id)
        if at is None:
            summary.unexpected += 1
        elif slots[at] is not None:
            summary.duplicates += 1
        else:
            # A copy: each bytes object orjson returns keeps a whole allocation (about 4 KB)
            # alive, which for 50,000 kept lines would be 200 MB.
            slots[at] = bytes(memoryview(data))
            counts[code] += 1
    missing_code = lines.missing_code
    for index, slot in enumerate(slots):
        if slot is None:
            slots[index] = lines.missing(ids[index])
            counts[missing_code] += 1
    summary._add_counts(counts)
    _write_lines(out, cast("list[bytes]", slots))


def _join_on_disk(part: PartResults, out: IO[bytes], summary: OutputSummary, scratch: Path) -> None:
    """A grace hash join: ids and results go to bucket files by hash of the custom id; each
    bucket pair is joined in memory and its lines go to range files by input position; each
    range is then put in order and written. Memory: a few buffers of ``_BUCKET_BYTES``."""
    total_ids = _count_ids(part.ids_path)
    result_bytes = _result_bytes(part)
    buckets = bucket_count(
        result_bytes, total_ids, bucket_bytes=_BUCKET_BYTES, bucket_items=_BUCKET_ITEMS
    )
    per_line = max(result_bytes // max(total_ids, 1), 64)
    span = max(_BUCKET_BYTES // per_line, _MIN_SPAN)  # input positions per range file
    stores: list[BucketStore] = []
    try:
        id_store = BucketStore(scratch / "ids.bin", buckets)
        stores.append(id_store)
        total_ids = _spill_ids(part.ids_path, id_store)
        result_store = BucketStore(scratch / "results.bin", buckets, with_lines=True)
        stores.append(result_store)
        lines = _Lines(part)
        _spill_results(lines, result_store)
        ranges = -(-total_ids // span)
        range_store = BucketStore(
            scratch / "ranges.bin", max(ranges, 1), with_keys=False, with_lines=True
        )
        stores.append(range_store)
        counts: Counter[int] = Counter()
        for bucket in range(buckets):
            _join_bucket(bucket, id_store, result_store, range_store, span, lines, counts, summary)
        id_store.close()
        result_store.close()
        for index in range(ranges):
            _, positions, range_lines = range_store.read(index)
            expected = min(span, total_ids - index * span)
            # Every position got exactly one line (a result or a missing_result).
            assert len(positions) == expected, (index, len(positions), expected)
            position_of: Callable[[int], int] = positions.__getitem__
            order = sorted(range(expected), key=position_of)
            _write_lines(out, list(map(range_lines.__getitem__, order)))
        summary._add_counts([counts[code] for code in range(16)])
    finally:
        for store in stores:
            store.close()


def _write_lines(out: IO[bytes], lines: Sequence[bytes | memoryview]) -> None:
    """Write many lines without joining them first (a join would allocate, and fault in, a
    fresh buffer the size of them all)."""
    writev = getattr(os, "writev", None)
    if writev is None:
        out.write(b"".join(lines))
        return
    out.flush()
    fd = out.fileno()
    for start in range(0, len(lines), _IOV_MAX):
        chunk = lines[start : start + _IOV_MAX]
        expected = sum(map(len, chunk))
        written = writev(fd, chunk)
        if written != expected:  # a short write: finish it the slow way
            out.write(b"".join(chunk)[written:])
            out.flush()


def _spill_ids(path: Path, store: BucketStore) -> int:
    """Put every id of ``path`` with its position in the bucket of its hash; returns the count."""
    mask = store.buckets - 1
    keys_of = store.keys
    positions_of = store.numbers
    position = 0
    for chunk in iter_id_chunks(path, block_size=1 << 18):  # about 20,000 ids at a time
        for custom_id in chunk:
            bucket = hash(custom_id) & mask
            keys_of[bucket].append(custom_id)
            positions_of[bucket].append(position)
            position += 1
        store.flush()
    return position


def _spill_results(lines: _Lines, store: BucketStore) -> None:
    """Convert every result and put it in the bucket of its custom id's hash."""
    mask = store.buckets - 1
    keys_of = store.keys
    codes_of = store.numbers
    lines_of = store.lines
    pending = 0
    for custom_id, code, data in lines.each():
        bucket = hash(custom_id) & mask
        keys_of[bucket].append(custom_id)
        codes_of[bucket].append(code)
        lines_of[bucket] += data
        pending += len(data)
        if pending >= _BUCKET_BYTES:
            store.flush()
            pending = 0


def _join_bucket(
    bucket: int,
    id_store: BucketStore,
    result_store: BucketStore,
    range_store: BucketStore,
    span: int,
    lines: _Lines,
    counts: Counter[int],
    summary: OutputSummary,
) -> None:
    """Join one bucket's ids and results; send the lines to range files by position."""
    id_keys, id_positions, _ = id_store.read(bucket)
    where = dict(zip(id_keys, id_positions, strict=True))
    repeated: list[tuple[str, int]] = []
    if len(where) != len(id_keys):  # an id repeated in the input: the first one gets the result
        where = {}
        for custom_id, at in zip(id_keys, id_positions, strict=True):
            if where.setdefault(custom_id, at) != at:
                repeated.append((custom_id, at))
    keys, codes, data = result_store.read(bucket)
    found = list(map(where.get, keys))
    positions: list[int]
    if None in found or len(set(keys)) != len(keys):
        keys, codes, data, positions = _keep_first_known(keys, codes, data, found, summary)
    else:
        positions = cast("list[int]", found)
    counts.update(codes)
    missing = [(custom_id, at) for custom_id, at in where.items()] if len(keys) < len(where) else []
    if missing:
        answered = set(keys)
        missing = [(custom_id, at) for custom_id, at in missing if custom_id not in answered]
    for custom_id, at in [*missing, *repeated]:
        positions.append(at)
        data.append(lines.missing(custom_id))
        counts[lines.missing_code] += 1
    position_of: Callable[[int], int] = positions.__getitem__
    ordered = sorted(range(len(positions)), key=position_of)
    sorted_positions = list(map(position_of, ordered))
    sorted_data = list(map(data.__getitem__, ordered))
    start = 0
    while start < len(sorted_positions):
        index = sorted_positions[start] // span
        end = bisect_left(sorted_positions, (index + 1) * span, start)
        range_store.extend(index, (), sorted_positions[start:end], b"".join(sorted_data[start:end]))
        start = end
    if range_store.pending_bytes >= _BUCKET_BYTES:
        range_store.flush()


def _keep_first_known(
    keys: list[str],
    codes: array[int],
    data: list[bytes],
    positions: list[int | None],
    summary: OutputSummary,
) -> tuple[list[str], array[int], list[bytes], list[int]]:
    """Drop results for ids not in the input and repeats of an id (the first is kept)."""
    kept_keys: list[str] = []
    kept_codes: array[int] = array("q")
    kept_data: list[bytes] = []
    kept_positions: list[int] = []
    seen: set[str] = set()
    for custom_id, code, line, at in zip(keys, codes, data, positions, strict=True):
        if at is None:
            summary.unexpected += 1
        elif custom_id in seen:
            summary.duplicates += 1
        else:
            seen.add(custom_id)
            kept_keys.append(custom_id)
            kept_codes.append(code)
            kept_data.append(line)
            kept_positions.append(at)
    return kept_keys, kept_codes, kept_data, kept_positions
