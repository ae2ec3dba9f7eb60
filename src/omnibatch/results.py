"""Reading result files: parse every line, join to custom ids, report what is missing.

Output and error files (or a provider's single results stream, or inline records) are read
lazily from disk, one line at a time. Requests that no source mentions come back as
``errored`` results with code ``missing_result``, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from omnibatch._exceptions import ProviderResponseError
from omnibatch._lifecycle import FetchedSource
from omnibatch.adapter import ProviderAdapter
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

MISSING_CODE = "missing_result"


def missing_result(custom_id: str, batch_id: str | None) -> BatchResult:
    return BatchResult(
        custom_id=custom_id,
        status=ResultStatus.ERRORED,
        error=ResultError(
            code=MISSING_CODE,
            message="the provider returned no result for this request",
        ),
        batch_id=batch_id,
    )


def read_ids(path: Path) -> Iterator[str]:
    with open(path, "rb") as fh:
        for line in fh:
            stripped = line.rstrip(b"\n")
            if stripped:
                yield stripped.decode()


def _records(adapter: ProviderAdapter, fetched: FetchedSource) -> Iterator[BatchResult]:
    source = fetched.source
    if fetched.path is None:
        for index, record in enumerate(source.records or (), start=1):
            try:
                yield adapter.parse_result_line(record, source)
            except (KeyError, TypeError, ValueError) as exc:
                raise ProviderResponseError(
                    f"inline result {index} of {source.name or source.kind} is malformed: {exc!r}",
                    provider=adapter.name,
                ) from exc
        return
    with open(fetched.path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                if not isinstance(record, dict):
                    raise TypeError("a result line must be a JSON object")
                yield adapter.parse_result_line(record, source)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                name = source.name or source.kind
                raise ProviderResponseError(
                    f"{name} ({fetched.path}) line {number}: cannot parse result: {exc}",
                    provider=adapter.name,
                ) from exc


def iter_batch_results(
    adapter: ProviderAdapter,
    fetched: Iterable[FetchedSource],
    *,
    batch_id: str,
    expected_ids: Iterable[str] | None = None,
) -> Iterator[BatchResult]:
    """Every result of one batch, each custom id once; with ``expected_ids``, the ids no source
    mentioned follow as ``missing_result`` errors."""
    seen: set[str] = set()
    for item in fetched:
        for result in _records(adapter, item):
            if result.custom_id in seen:
                continue
            seen.add(result.custom_id)
            yield result if result.batch_id else result.model_copy(update={"batch_id": batch_id})
    if expected_ids is not None:
        for custom_id in expected_ids:
            if custom_id not in seen:
                seen.add(custom_id)
                yield missing_result(custom_id, batch_id)


@dataclass(frozen=True)
class PartResults:
    """The results of one part of a job: its expected ids (in input order) and fetched sources."""

    adapter: ProviderAdapter
    batch_id: str
    ids_path: Path
    fetched: Sequence[FetchedSource]


@dataclass
class OutputSummary:
    """What :func:`write_output` wrote, by outcome."""

    total: int = 0
    succeeded: int = 0
    errored: int = 0
    expired: int = 0
    cancelled: int = 0
    missing: int = 0

    def count(self, result: BatchResult) -> None:
        self.total += 1
        setattr(self, result.status.value, getattr(self, result.status.value) + 1)
        if result.error is not None and result.error.code == MISSING_CODE:
            self.missing += 1


def write_output(parts: Sequence[PartResults], out_path: Path) -> OutputSummary:
    """Write one line per input custom id, in input order, across all parts of a job."""
    summary = OutputSummary()
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "wb") as out:
        for part in parts:
            by_id = {
                r.custom_id: r
                for r in iter_batch_results(part.adapter, part.fetched, batch_id=part.batch_id)
            }
            for custom_id in read_ids(part.ids_path):
                result = by_id.pop(custom_id, None) or missing_result(custom_id, part.batch_id)
                summary.count(result)
                out.write(orjson.dumps(result.to_output_line()) + b"\n")
    tmp.replace(out_path)
    return summary
