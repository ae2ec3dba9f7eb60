"""Reading result files: parse every line, join to custom ids, report what is missing.

Output and error files (or a provider's single results stream, or inline records) are read
lazily from disk, a block at a time. Requests that no source mentions come back as ``errored``
results with code ``missing_result`` (``cancelled`` / ``expired`` when the batch was stopped
before they ran), never silently dropped. A line that cannot be parsed raises
:class:`~omnibatch.ProviderResponseError` naming the file and the line.

:func:`write_output` joins a job's results to its inputs with memory bounded by constants, not
by the number of requests: a part whose results fit in a few tens of megabytes is joined in
memory and written in input order; a bigger one is written in the order of its result files,
then its missing lines in input order, and joined on disk by a hash join of custom ids alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import orjson

from omnibatch._answers import (
    OUTPUT_FORMATS,
    AnswerReader,
    error_fields,
    line_normalizer,
    normalize_line,
    openai_line,
)
from omnibatch._exceptions import ConfigurationError, ProviderResponseError
from omnibatch._index import SeenSet, iter_id_chunks, iter_ids
from omnibatch._lifecycle import FetchedSource
from omnibatch._partition import BucketStore, bucket_count
from omnibatch._prices import UsageTotals, job_cost, price_provider
from omnibatch._status import BatchStatus
from omnibatch.adapter import ProviderAdapter, ResultSource
from omnibatch.models import BatchResult, ResultError, ResultStatus, Usage

__all__ = [
    "MISSING_CODE",
    "OutputSummary",
    "PartResults",
    "complete_result",
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
    kind = error_fields(status.value, {"code": MISSING_CODE})["kind"]
    return BatchResult(
        custom_id=custom_id,
        status=status,
        error=ResultError(code=MISSING_CODE, message=message, kind=kind),
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


def complete_result(result: BatchResult, read: AnswerReader) -> BatchResult:
    """``result`` with the fields every provider's results carry (text or embedding, finish
    reason, tool calls, usage, model, the error's kind), read from its body by ``read``
    (the adapter's :meth:`~omnibatch.adapter.ProviderAdapter.read_answer`)."""
    error = result.error
    line = normalize_line(
        {
            "custom_id": result.custom_id,
            "status": result.status.value,
            "response": result.response,
            "error": error.model_dump() if error is not None else None,
        },
        read,
    )
    usage = line["usage"]
    if usage is not None:
        total = (usage["input_tokens"] or 0) + (usage["output_tokens"] or 0)
        usage = Usage(**usage, total_tokens=total)
    update: dict[str, Any] = {
        "text": line.get("text"),
        "embedding": line.get("embedding"),
        "finish_reason": line["finish_reason"],
        "provider_finish_reason": line["provider_finish_reason"],
        "tool_calls": line["tool_calls"],
        "usage": usage,
        "model": line["model"],
    }
    if line["error"] is not None:
        fields = line["error"]
        update["error"] = (
            error.model_copy(update={"kind": fields["kind"]})
            if error is not None
            else ResultError(message=fields["message"], kind=fields["kind"])
        )
    return result.model_copy(update=update)


def _records(adapter: ProviderAdapter, fetched: FetchedSource) -> Iterator[BatchResult]:
    source = fetched.source
    parse = adapter.parse_result_line
    read = adapter.read_answer
    for number, record in _raw_records(adapter, fetched):
        try:
            result = parse(record, source)
        except (KeyError, TypeError, ValueError) as exc:
            raise _parse_error(adapter, fetched, number, exc) from exc
        yield complete_result(result, read)


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
    cost_usd: float | None = None
    """What the job cost, counted once from the results' usage (None: see ``cost_reason``)."""
    cost_source: str | None = None
    """``genai-prices`` (its batch rates) or ``provider`` (the provider's own figure)."""
    cost_reason: str | None = "results not read"
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    """Token usage summed by model, as the provider answered."""
    format: str = "omnibatch"
    """The output format the lines were written in."""

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


def write_output(
    parts: Sequence[PartResults], out_path: Path, *, output_format: str = "omnibatch"
) -> OutputSummary:
    """Write one line per input custom id across all parts of a job, part after part: in input
    order for a part joined in memory (at most ``MEMORY_IDS`` requests and
    ``MEMORY_RESULT_BYTES`` of results); for a bigger one, in the order of its result files,
    then its ``missing_result`` lines in input order (see :func:`_join_on_disk`).

    The file is written beside ``out_path`` and renamed into place when complete; scratch files
    of big parts live in a temporary directory beside it and are removed afterwards.

    ``output_format``: ``omnibatch`` writes the normalized lines (the same keys on every
    provider), ``openai`` lines of OpenAI's batch output file (see
    :func:`omnibatch._answers.openai_line`)."""
    if output_format not in OUTPUT_FORMATS:
        raise ConfigurationError(
            f"unknown output format {output_format!r}: use one of {', '.join(OUTPUT_FORMATS)}"
        )
    summary = OutputSummary(format=output_format)
    tally = _Tally()
    tmp = out_path.with_name(out_path.name + ".tmp")
    scratch: Path | None = None
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                if _fits_in_memory(part):
                    _join_in_memory(part, out, summary, output_format, tally)
                else:
                    if scratch is None:
                        scratch = Path(
                            tempfile.mkdtemp(prefix=f".{out_path.name}.", dir=out_path.parent)
                        )
                    _join_on_disk(part, out, summary, scratch, output_format, tally)
        tmp.replace(out_path)
        if parts:
            tally.settle(parts[0].adapter, summary)
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


class _Tally:
    """The usage of a merge's lines, by model, and the provider's own cost where it reports
    one (OpenRouter's ``usage.cost``): what the job's cost is computed from."""

    def __init__(self) -> None:
        self.models: dict[str, UsageTotals] = {}
        self.reported = 0.0
        self.reporting = 0
        self.unpriced = 0
        self.succeeded = 0

    def add(self, line: Mapping[str, Any]) -> None:
        usage = line["usage"]
        if usage is None:
            if line["status"] == "succeeded":
                self.unpriced += 1
            return
        self.succeeded += 1
        model = line["model"] or ""
        totals = self.models.get(model)
        if totals is None:
            totals = self.models[model] = UsageTotals()
        totals.add(usage)
        body = line["response"]
        raw = body.get("usage") if body is not None else None
        if raw.__class__ is dict:
            cost = raw.get("cost")
            if cost.__class__ in (int, float):
                self.reported += cost
                self.reporting += 1

    def settle(self, adapter: ProviderAdapter, summary: OutputSummary) -> None:
        reported = self.reported if self.reporting and self.reporting == self.succeeded else None
        cost = job_cost(
            price_provider(adapter), self.models, reported=reported, unpriced=self.unpriced
        )
        summary.cost_usd, summary.cost_source, summary.cost_reason = (
            cost.usd,
            cost.source,
            cost.reason,
        )
        summary.usage = {model: t.as_dict() for model, t in sorted(self.models.items())}


class _Lines:
    """Turns result records into output lines (bytes with a newline) and outcome codes."""

    def __init__(
        self, part: PartResults, output_format: str = "omnibatch", tally: _Tally | None = None
    ) -> None:
        self.part = part
        self.tally = tally or _Tally()
        self.read: AnswerReader = part.adapter.read_answer
        self.normalize = line_normalizer(self.read)
        created = int(time.time())
        self.shape: Callable[[dict[str, Any]], dict[str, Any]] | None = (
            (lambda line: openai_line(line, created)) if output_format == "openai" else None
        )
        status, message = _missing_outcome(part.batch_status)
        self.missing_code = _CODE[status.value] | _MISSING_FLAG
        self._missing = normalize_line(
            {
                "custom_id": "",
                "status": status.value,
                "error": {"code": MISSING_CODE, "message": message},
            },
            self.read,
        )
        self._missing_tail = orjson.dumps(self._missing)[len(b'{"custom_id":"",') :]

    def missing(self, custom_id: str) -> bytes:
        if self.shape is not None:
            line = self.shape({**self._missing, "custom_id": custom_id})
            return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
        # orjson writes keys in insertion order: splice the id in front of the fixed tail.
        return b'{"custom_id":' + orjson.dumps(custom_id) + b"," + self._missing_tail + b"\n"

    def each(self) -> Iterator[tuple[str, int, bytes]]:
        """``(custom_id, outcome code, line)`` for every record of every source."""
        part = self.part
        adapter = part.adapter
        convert = adapter.output_line
        normalize = self.normalize
        count = self.tally.add
        shape = self.shape
        loads = orjson.loads
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        decode_error = orjson.JSONDecodeError
        codes = _CODE
        for fetched in part.fetched:
            source: ResultSource = fetched.source
            if fetched.path is None:
                for number, record in _raw_records(adapter, fetched):
                    try:
                        line = normalize(convert(record, source))
                        custom_id, code = line["custom_id"], codes[line["status"]]
                        count(line)
                        if shape is not None:
                            line = shape(line)
                        yield custom_id, code, dumps(line, option=newline)
                    except (KeyError, TypeError, ValueError) as exc:
                        raise _parse_error(adapter, fetched, number, exc) from exc
                continue
            # _raw_records inline: one generator less per line.
            with open(fetched.path, "rb", buffering=1 << 20) as fh:
                for number, raw in enumerate(fh, start=1):
                    try:
                        record = loads(raw)
                        if record.__class__ is not dict:
                            kind = type(record).__name__
                            raise TypeError(f"a result line must be a JSON object, got {kind}")
                        line = normalize(convert(record, source))
                        custom_id, code = line["custom_id"], codes[line["status"]]
                        count(line)
                        if shape is not None:
                            line = shape(line)
                        yield custom_id, code, dumps(line, option=newline)
                    except decode_error as exc:
                        if not raw.strip():
                            continue
                        raise _parse_error(adapter, fetched, number, exc) from exc
                    except (KeyError, TypeError, ValueError) as exc:
                        raise _parse_error(adapter, fetched, number, exc) from exc


def _join_in_memory(
    part: PartResults, out: IO[bytes], summary: OutputSummary, output_format: str, tally: _Tally
) -> None:
    ids = list(iter_ids(part.ids_path))
    position = dict(zip(ids, range(len(ids)), strict=True))
    if len(position) != len(ids):  # repeated ids in the input: the first one gets the result
        position = {}
        for index, custom_id in enumerate(ids):
            position.setdefault(custom_id, index)
    slots: list[bytes | None] = [None] * len(ids)
    counts = [0] * 16
    lines = _Lines(part, output_format, tally)
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


def _join_on_disk(
    part: PartResults,
    out: IO[bytes],
    summary: OutputSummary,
    scratch: Path,
    output_format: str,
    tally: _Tally,
) -> None:
    """Write a big part's lines in the order of its result files, then its missing lines.

    One pass converts each result and writes its line straight to ``out``, while its custom id
    (with the line's index) goes to a bucket file by hash; the input ids go to the same buckets
    with their positions. Each bucket is then joined in memory: that finds the results whose id
    is not in the part or repeats one (rare: their lines are then cut out of ``out``) and the
    input positions no result answered, whose ``missing_result`` lines follow in input order.
    The result lines are never written to scratch. Memory: buffers of ids and a byte per
    request."""
    out.flush()
    start = out.tell()
    total_ids = _count_ids(part.ids_path)
    buckets = bucket_count(0, total_ids, bucket_bytes=1, bucket_items=_BUCKET_ITEMS)
    lines = _Lines(part, output_format, tally)
    stores: list[BucketStore] = []
    try:
        id_store = BucketStore(scratch / "ids.bin", buckets)
        stores.append(id_store)
        total_ids = _spill_ids(part.ids_path, id_store)
        key_store = BucketStore(scratch / "keys.bin", buckets)
        stores.append(key_store)
        counts = _write_results(lines, out, key_store)
        unanswered = bytearray(total_ids)  # 1 at the input positions that get a missing line
        stray: list[int] = []  # results left out: not in the part, or a repeat
        for bucket in range(buckets):
            id_keys, id_positions, _ = id_store.read(bucket)
            first = dict(zip(id_keys, id_positions, strict=True))
            if len(first) != len(id_keys):  # an id repeated in the input: the first one counts
                first = {}
                for custom_id, at in zip(id_keys, id_positions, strict=True):
                    if first.setdefault(custom_id, at) != at:
                        unanswered[at] = 1
            keys, indexes, _ = key_store.read(bucket)
            answered = set(keys)
            if len(answered) != len(keys) or not answered <= first.keys():
                answered = set()
                for custom_id, index in zip(keys, indexes, strict=True):
                    if custom_id not in first:
                        summary.unexpected += 1
                        stray.append(index)
                    elif custom_id in answered:
                        summary.duplicates += 1  # in file order: the first one is kept
                        stray.append(index)
                    else:
                        answered.add(custom_id)
            if len(answered) != len(first):
                for custom_id in first.keys() - answered:
                    unanswered[first[custom_id]] = 1
        id_store.close()
        key_store.close()
        if stray:
            stray.sort()
            _cut_lines(out, start, stray, counts)
        missing_code = lines.missing_code
        missing: list[bytes] = []
        position = 0
        find = unanswered.find
        for chunk in iter_id_chunks(part.ids_path, block_size=1 << 18):
            end = position + len(chunk)
            at = find(1, position, end)
            while at >= 0:
                missing.append(lines.missing(chunk[at - position]))
                at = find(1, at + 1, end)
            position = end
            if len(missing) >= _IOV_MAX:
                counts[missing_code] += len(missing)
                _write_lines(out, missing)
                missing = []
        counts[missing_code] += len(missing)
        _write_lines(out, missing)
        summary._add_counts(counts)
    finally:
        for store in stores:
            store.close()


def _write_results(lines: _Lines, out: IO[bytes], store: BucketStore) -> list[int]:
    """Convert every result, write its line to ``out`` and put its custom id, with the line's
    index, in the bucket of its hash; returns the lines written by outcome code.

    :meth:`_Lines.each` with the writing and the bucketing in its loop (it is the merge's
    hottest loop: a generator and a tuple per line cost about 5 % of the merge)."""
    part = lines.part
    adapter = part.adapter
    convert = adapter.output_line
    normalize = lines.normalize
    count = lines.tally.add
    shape = lines.shape
    loads = orjson.loads
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    decode_error = orjson.JSONDecodeError
    codes = _CODE
    counts = [0] * 16
    write = out.write
    mask = store.buckets - 1
    keys_of = store.keys
    indexes_of = store.numbers
    index = 0
    for fetched in part.fetched:
        source: ResultSource = fetched.source
        assert fetched.path is not None  # inline records are joined in memory
        with open(fetched.path, "rb", buffering=1 << 20) as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    record = loads(raw)
                    if record.__class__ is not dict:
                        kind = type(record).__name__
                        raise TypeError(f"a result line must be a JSON object, got {kind}")
                    line = normalize(convert(record, source))
                    custom_id: str = line["custom_id"]
                    code = codes[line["status"]]
                    count(line)
                    if shape is not None:
                        line = shape(line)
                    data = dumps(line, option=newline)
                except decode_error as exc:
                    if not raw.strip():
                        continue
                    raise _parse_error(adapter, fetched, number, exc) from exc
                except (KeyError, TypeError, ValueError) as exc:
                    raise _parse_error(adapter, fetched, number, exc) from exc
                write(data)
                counts[code] += 1
                bucket = hash(custom_id) & mask
                keys_of[bucket].append(custom_id)
                indexes_of[bucket].append(index)
                index += 1
                if not index & 0xFFFF:
                    store.flush()
    return counts


def _cut_lines(out: IO[bytes], start: int, drop: Sequence[int], counts: list[int]) -> None:
    """Remove the lines numbered ``drop`` (sorted, from 0) of what was written to ``out``
    since offset ``start``, taking them off ``counts``: the kept lines move up in place and
    the file is truncated."""
    out.flush()
    end = out.tell()
    name = getattr(out, "name", None)
    assert isinstance(name, str), "write_output writes to a named file"
    with open(name, "rb", buffering=1 << 20) as fh:
        fh.seek(start)
        out.seek(start)
        write = out.write
        skip = iter(drop)
        next_drop = next(skip, -1)
        read = 0
        for index, line in enumerate(fh):
            read += len(line)
            if index == next_drop:
                next_drop = next(skip, -1)
                counts[_CODE[_line_status(orjson.loads(line))]] -= 1
            else:
                write(line)
            if start + read >= end:
                break
    out.truncate()
    out.flush()


def _line_status(line: Mapping[str, Any]) -> str:
    """The outcome of a written line, in either output format."""
    status = line.get("status")
    if isinstance(status, str):
        return status
    error = line.get("error")  # OpenAI's format
    if isinstance(error, Mapping):
        code = error.get("code")
        return {"batch_expired": "expired", "batch_cancelled": "cancelled"}.get(
            str(code), "errored"
        )
    response = line.get("response")
    failed = isinstance(response, Mapping) and (response.get("status_code") or 0) >= 400
    return "errored" if failed else "succeeded"


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
