"""The streaming input pipeline: read, validate, translate and split a batch input.

One pass over the input (a JSONL file, ``-`` for stdin, or an iterable of ``BatchRequest`` /
dicts) writes provider-ready part files while it validates, so memory stays bounded whatever the
input size. Every problem is collected with its line number, field and fix; if there is any,
:class:`~omnibatch.InputValidationError` is raised and the part files are removed: nothing is
uploaded. Parts are cut before a provider limit (requests or bytes per batch) would be exceeded.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from omnibatch._exceptions import InputValidationError
from omnibatch.adapter import InputPart, ProviderAdapter
from omnibatch.models import BatchRequest, ValidationProblem

__all__ = ["InputSource", "PreparedInput", "iter_records", "prepare_input"]

InputSource = str | Path | Iterable[BatchRequest | Mapping[str, Any]]

MAX_PROBLEMS_KEPT = 1000
_DEFAULT_ENDPOINT = "/v1/chat/completions"


@dataclass
class PreparedInput:
    """The result of a pipeline pass: part files ready for ``adapter.upload``."""

    parts: list[InputPart]
    total: int
    endpoint: str
    model: str | None
    input_hash: str
    workdir: Path
    generated_ids: int = 0
    problems: list[ValidationProblem] = field(default_factory=list)


def iter_records(source: InputSource) -> Iterator[tuple[int, bytes | Mapping[str, Any]]]:
    """Yield ``(line_number, raw line or object)``; blank lines are skipped."""
    if isinstance(source, str | Path):
        if str(source) == "-":
            yield from _iter_lines(sys.stdin.buffer)
            return
        with open(source, "rb") as fh:
            yield from _iter_lines(fh)
        return
    for number, item in enumerate(source, start=1):
        if isinstance(item, BatchRequest):
            yield number, item.model_dump()
        else:
            yield number, item


def _iter_lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(fh, start=1):
        if line.strip():
            yield number, line


class _Checker:
    """Collects problems; stops keeping details after MAX_PROBLEMS_KEPT (but keeps counting)."""

    def __init__(self) -> None:
        self.problems: list[ValidationProblem] = []
        self.count = 0

    def add(self, line: int, fld: str | None, message: str, fix: str | None = None) -> None:
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(ValidationProblem(line=line, field=fld, message=message, fix=fix))


class _PartWriter:
    """Writes encoded lines into part files, starting a new part before a limit is crossed."""

    def __init__(self, workdir: Path, max_requests: int | None, max_bytes: int | None) -> None:
        self.workdir = workdir
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.endpoint = _DEFAULT_ENDPOINT
        self.parts: list[InputPart] = []
        self._fh: IO[bytes] | None = None
        self._ids: IO[bytes] | None = None
        self._count = 0
        self._bytes = 0
        self._model: str | None = None

    def _path(self, suffix: str) -> Path:
        return self.workdir / f"part-{len(self.parts):05d}{suffix}"

    def write(self, line: bytes, custom_id: str, model: str | None) -> None:
        full = (self.max_requests is not None and self._count >= self.max_requests) or (
            self.max_bytes is not None and self._count and self._bytes + len(line) > self.max_bytes
        )
        if full:
            self._close_part()
        if self._fh is None or self._ids is None:
            self._fh = open(self._path(".jsonl"), "wb")  # noqa: SIM115
            self._ids = open(self._path(".ids"), "wb")  # noqa: SIM115
            self._count = self._bytes = 0
            self._model = model
        self._fh.write(line)
        self._ids.write(custom_id.encode() + b"\n")
        self._count += 1
        self._bytes += len(line)

    def _close_part(self) -> None:
        if self._fh is None or self._ids is None:
            return
        self._fh.close()
        self._ids.close()
        self.parts.append(
            InputPart(
                path=self._path(".jsonl"),
                index=len(self.parts),
                count=self._count,
                size_bytes=self._bytes,
                endpoint=self.endpoint,
                model=self._model,
                custom_ids_path=self._path(".ids"),
            )
        )
        self._fh = self._ids = None

    def finish(self) -> list[InputPart]:
        self._close_part()
        return self.parts

    def discard(self) -> None:
        if self._fh is not None and self._ids is not None:
            self._fh.close()
            self._ids.close()
        for path in self.workdir.glob("part-*"):
            path.unlink(missing_ok=True)


def prepare_input(
    source: InputSource,
    adapter: ProviderAdapter,
    workdir: Path,
    *,
    endpoint: str | None = None,
    model: str | None = None,
    max_requests: int | None = None,
    max_bytes: int | None = None,
    split: bool = True,
) -> PreparedInput:
    """Validate and translate ``source`` for ``adapter`` into part files under ``workdir``.

    ``max_requests`` / ``max_bytes`` override the provider's limits (never exceeding them).
    With ``split=False`` an input over the limits is a validation problem instead of several parts.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    limits = adapter.limits
    max_requests = _min(max_requests, limits.max_requests)
    max_bytes = _min(max_bytes, limits.max_bytes)
    pattern = re.compile(limits.custom_id_pattern) if limits.custom_id_pattern else None
    caps = adapter.capabilities
    check = _Checker()
    writer = _PartWriter(workdir, max_requests, max_bytes)
    digest = hashlib.sha256()
    seen: set[str] = set()
    batch_endpoint = endpoint
    batch_model = model
    generated = 0
    total = 0
    for number, raw in iter_records(source):
        if isinstance(raw, bytes):
            digest.update(raw)
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                check.add(number, None, f"not valid JSON ({exc})", "write one JSON object per line")
                continue
        else:
            obj = dict(raw)
            digest.update(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) + b"\n")
        if not isinstance(obj, dict):
            check.add(number, None, "a line must be a JSON object", "wrap the request in {...}")
            continue
        total += 1
        custom_id = obj.get("custom_id")
        if custom_id is None:
            generated += 1
            custom_id = f"request-{total}"
        elif not isinstance(custom_id, str) or not custom_id:
            check.add(
                number,
                "custom_id",
                f"must be a non-empty string (got {custom_id!r})",
                'quote it, e.g. "custom_id": "request-1"',
            )
            continue
        if pattern is not None and not pattern.fullmatch(custom_id):
            check.add(
                number,
                "custom_id",
                f"{custom_id!r} is not accepted by {adapter.name} (pattern {pattern.pattern})",
                "use letters, digits, '-' and '_' only, at most 64 characters",
            )
        if custom_id in seen:
            check.add(
                number,
                "custom_id",
                f"duplicate custom_id {custom_id!r}",
                "give every request its own custom_id",
            )
        seen.add(custom_id)
        method = obj.get("method", "POST")
        if method != "POST":
            check.add(number, "method", f"must be POST (got {method!r})", 'set "method": "POST"')
        url = obj.get("url") or endpoint or batch_endpoint or _DEFAULT_ENDPOINT
        if url not in adapter.endpoints:
            check.add(
                number,
                "url",
                f"{adapter.name} has no batch endpoint {url!r}",
                f"use one of {', '.join(sorted(adapter.endpoints))}",
            )
        elif batch_endpoint is None:
            batch_endpoint = url
        elif url != batch_endpoint:
            check.add(
                number,
                "url",
                f"{url!r} differs from {batch_endpoint!r} used earlier",
                "put requests for different endpoints in separate inputs",
            )
        body = obj.get("body")
        if not isinstance(body, dict):
            check.add(
                number,
                "body",
                "missing or not an object",
                'add "body": {...} with the endpoint\'s parameters',
            )
            continue
        unknown = set(obj) - {"custom_id", "method", "url", "body"}
        if unknown:
            check.add(
                number,
                None,
                f"unknown field(s) {sorted(unknown)}",
                "keep custom_id, method, url and body only",
            )
        request = BatchRequest(custom_id=custom_id, method="POST", url=url, body=body)
        req_model = adapter.model_of(request) or model
        if req_model is None:
            check.add(
                number,
                "body.model",
                "no model given",
                'add "model" to the body, or pass --model / model=',
            )
        elif caps.single_model:
            if batch_model is None:
                batch_model = req_model
            elif req_model != batch_model:
                check.add(
                    number,
                    "body.model",
                    f"model {req_model!r} differs from {batch_model!r}",
                    f"{adapter.name} takes one model per batch: split the input by model",
                )
        for issue in adapter.check_request(request):
            check.add(number, issue.field, issue.message, issue.fix)
        if check.count:
            continue  # keep validating, but stop writing: nothing will be uploaded
        if model is not None and "model" not in body and not caps.model_at_job_level:
            request = BatchRequest(
                custom_id=custom_id, method="POST", url=url, body={**body, "model": model}
            )
        writer.endpoint = batch_endpoint or url
        line = orjson.dumps(adapter.encode_request(request)) + b"\n"
        if max_bytes is not None and len(line) > max_bytes:
            check.add(
                number,
                None,
                f"request is {len(line)} bytes, over {adapter.name}'s {max_bytes} bytes per batch",
                "shorten the request",
            )
            continue
        writer.write(line, custom_id, req_model)
    if total == 0 and not check.count:
        check.add(0, None, "the input has no requests", "add at least one JSONL line")
    parts = [] if check.count else writer.finish()
    if not split and len(parts) > 1:
        check.add(
            0,
            None,
            f"{total} requests exceed one {adapter.name} batch "
            f"({max_requests or '-'} requests, {max_bytes or '-'} bytes)",
            "use `omnibatch run` or BatchClient.submit_job(), which split automatically",
        )
    if check.count:
        writer.discard()
        problems = check.problems
        if check.count > len(problems):
            problems.append(
                ValidationProblem(
                    line=None, message=f"{check.count - len(problems)} further problem(s) not shown"
                )
            )
        raise InputValidationError(problems, source=_describe(source), provider=adapter.name)
    return PreparedInput(
        parts=parts,
        total=total,
        endpoint=batch_endpoint or _DEFAULT_ENDPOINT,
        model=batch_model,
        input_hash=digest.hexdigest(),
        workdir=workdir,
        generated_ids=generated,
    )


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _describe(source: InputSource) -> str:
    return str(source) if isinstance(source, str | Path) else "the request objects"
