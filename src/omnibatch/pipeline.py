"""The streaming input pipeline: read, validate, translate and split a batch input.

One pass over the input (a JSONL file, ``-`` for stdin, or an iterable of ``BatchRequest`` /
dicts) writes provider-ready part files while it validates, so memory stays bounded whatever the
input size: the input is read in blocks, each line is parsed, checked with plain dict tests and
translated by the adapter's ``encode_line``, and duplicate custom ids are tracked in memory up to
a limit, then on disk (:mod:`omnibatch._index`). Every problem is collected with its line number,
field and fix; if there is any, :class:`~omnibatch.InputValidationError` is raised and the part
files are removed: nothing is uploaded. Parts are cut before a provider limit (requests or bytes
per batch) would be exceeded.

Three entry points share the pass: :func:`prepare_input` (part files for upload),
:func:`convert_input` (one translated file, ``omnibatch convert``) and :func:`validate_input`
(a report, nothing written, ``omnibatch validate``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import orjson

from omnibatch._exceptions import ConfigurationError, InputValidationError
from omnibatch._index import MEMORY_KEYS, DuplicateFinder, ids_text
from omnibatch.adapter import InputPart, ProviderAdapter
from omnibatch.models import BatchRequest, ValidationProblem

if TYPE_CHECKING:
    import queue
    import threading

__all__ = [
    "InputSource",
    "PartPlan",
    "PreparedInput",
    "ValidationReport",
    "convert_input",
    "iter_records",
    "local_adapter",
    "prepare_input",
    "validate_input",
]

InputSource = str | Path | Iterable[BatchRequest | Mapping[str, Any]]

MAX_PROBLEMS_KEPT = 1000
BLOCK_SIZE = 1 << 20
_DEFAULT_ENDPOINT = "/v1/chat/completions"
_FIELDS = frozenset({"custom_id", "method", "url", "body"})
_FLUSH_LINES = 2048
_BLOCK_LINES = 4096
_NO_LIMIT = sys.maxsize


@dataclass
class PreparedInput:
    """The result of a pipeline pass: part files ready for ``adapter.upload``.

    ``input_hash`` is the sha256 of the input file's bytes (for request objects: of their
    canonical JSON lines)."""

    parts: list[InputPart]
    total: int
    endpoint: str
    model: str | None
    input_hash: str
    workdir: Path
    generated_ids: int = 0
    problems: list[ValidationProblem] = field(default_factory=list)
    warnings: list[ValidationProblem] = field(default_factory=list)
    """Requests that will be sent but look wrong (a model the provider does not list)."""


@dataclass(frozen=True)
class PartPlan:
    """One part :func:`validate_input` would write."""

    index: int
    count: int
    size_bytes: int
    model: str | None


@dataclass
class ValidationReport:
    """What :func:`validate_input` found. ``problems`` keeps the first
    ``MAX_PROBLEMS_KEPT``; ``problem_count`` counts them all."""

    source: str
    provider: str
    total: int
    endpoint: str
    model: str | None
    parts: list[PartPlan]
    input_hash: str
    generated_ids: int
    problems: list[ValidationProblem]
    problem_count: int
    warnings: list[ValidationProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def error(self) -> InputValidationError:
        """The exception ``prepare_input`` would raise for this input."""
        return InputValidationError(self.problems, source=self.source, provider=self.provider)


def iter_records(source: InputSource) -> Iterator[tuple[int, bytes | Mapping[str, Any]]]:
    """Yield ``(line_number, raw line without its newline, or object)``; blank lines are
    skipped (but counted)."""
    if isinstance(source, str | Path):
        number = 0
        for lines in _line_blocks(source, None):
            for line in lines:
                number += 1
                stripped = line.rstrip(b"\r\n")
                if stripped.strip():
                    yield number, stripped
        return
    for number, item in enumerate(source, start=1):
        if isinstance(item, BatchRequest):
            yield number, item.model_dump()
        else:
            yield number, item


def _undecodable(raw: Any, exc: Exception) -> tuple[str, str]:
    """The message and fix for a line orjson could not read: bad UTF-8 is its own problem
    (re-encoding the file fixes it), anything else is bad JSON."""
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            bytes(raw).decode("utf-8")
        except UnicodeDecodeError as bad:
            byte = bytes(raw)[bad.start]
            return (
                f"not valid UTF-8 (byte 0x{byte:02x} at position {bad.start + 1} of the line)",
                "save the file as UTF-8, e.g. with `iconv -f latin1 -t utf-8 IN > OUT`",
            )
    return f"not valid JSON ({exc})", "write one JSON object per line"


def _is_empty_file(source: str | Path) -> bool:
    try:
        return str(source) != "-" and os.path.getsize(source) == 0
    except OSError:
        return False


def local_adapter(adapter: ProviderAdapter | str) -> ProviderAdapter:
    """``adapter`` itself, or for a provider's name an adapter of it without a key: preparing,
    converting and validating are local, so they need no credentials."""
    if not isinstance(adapter, str):
        return adapter
    from omnibatch._plugins import get_registry

    return get_registry().provider(adapter)(api_key=None)


def prepare_input(
    source: InputSource,
    adapter: ProviderAdapter | str,
    workdir: Path,
    *,
    endpoint: str | None = None,
    model: str | None = None,
    max_requests: int | None = None,
    max_bytes: int | None = None,
    split: bool = True,
    memory_ids: int = MEMORY_KEYS,
    override_model: bool = False,
    strict: bool = False,
    generate_ids: bool | None = None,
) -> PreparedInput:
    """Validate and translate ``source`` for ``adapter`` into part files under ``workdir``.

    ``max_requests`` / ``max_bytes`` override the provider's limits (never exceeding them).
    With ``split=False`` an input over the limits is a validation problem instead of several
    parts. ``model`` fills in requests without a model (or, with ``override_model=True``,
    replaces every request's model). ``memory_ids`` is how many custom ids the duplicate check
    keeps in memory before it continues on disk. A line of a file without ``custom_id`` is a
    problem unless ``generate_ids`` (``request-N``, never one the file uses); Python objects
    get generated ids unless ``generate_ids=False``. Raises
    :class:`~omnibatch.InputValidationError` listing every problem (with ``strict``, the
    warnings too).

    The adapter's ``models`` option (``[providers.<name>.models]`` in configuration) maps the
    input's model names onto the provider's; a model the price data does not list for the
    provider gets a warning naming its first line and the map to add.
    """
    adapter = local_adapter(adapter)
    workdir.mkdir(parents=True, exist_ok=True)
    writer = _PartWriter(workdir)
    run = _Run(
        adapter,
        writer,
        workdir,
        endpoint=endpoint,
        model=model,
        max_requests=_min(max_requests, adapter.limits.max_requests),
        max_bytes=_min(max_bytes, adapter.limits.max_bytes),
        memory_ids=memory_ids,
        override_model=override_model,
        strict=strict,
        generate_ids=generate_ids,
    )
    run.execute(source)
    if not split and len(writer.parts) > 1:
        run.check.add(
            0,
            None,
            f"{run.total} requests exceed one {adapter.name} batch "
            f"({run.max_requests_text} requests, {run.max_bytes_text} bytes)",
            "use `omnibatch run` or BatchClient.submit_job(), which split automatically",
        )
    if run.check.count:
        writer.discard()
        raise run.check.error(_describe(source), adapter.name)
    return PreparedInput(
        parts=writer.parts,
        total=run.total,
        endpoint=run.endpoint,
        model=run.batch_model,
        input_hash=run.digest,
        workdir=workdir,
        generated_ids=run.generated,
        warnings=run.warnings,
    )


def convert_input(
    source: InputSource,
    adapter: ProviderAdapter | str,
    out_path: str | Path,
    *,
    endpoint: str | None = None,
    model: str | None = None,
    memory_ids: int = MEMORY_KEYS,
    override_model: bool = False,
    strict: bool = False,
    generate_ids: bool | None = None,
) -> PreparedInput:
    """Validate ``source`` and write it, translated for ``adapter``, to one file ``out_path``
    (no splitting: compare ``parts[0].count`` / ``size_bytes`` with ``adapter.limits``).

    The file appears only when the whole input is valid (it is written beside ``out_path`` and
    renamed); otherwise :class:`~omnibatch.InputValidationError` lists every problem.
    """
    adapter = local_adapter(adapter)
    out = Path(out_path)
    scratch = Path(tempfile.mkdtemp(prefix="omnibatch-convert-"))
    writer = _FileWriter(out)
    try:
        run = _Run(
            adapter,
            writer,
            scratch,
            endpoint=endpoint,
            model=model,
            max_requests=None,
            max_bytes=None,
            memory_ids=memory_ids,
            override_model=override_model,
            strict=strict,
            generate_ids=generate_ids,
        )
        run.execute(source)
        if run.check.count:
            writer.discard()
            raise run.check.error(_describe(source), adapter.name)
        part = writer.commit(run.endpoint)
    finally:
        writer.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return PreparedInput(
        parts=[part],
        total=run.total,
        endpoint=run.endpoint,
        model=run.batch_model,
        input_hash=run.digest,
        workdir=out.parent,
        generated_ids=run.generated,
        warnings=run.warnings,
    )


def validate_input(
    source: InputSource,
    adapter: ProviderAdapter | str,
    *,
    endpoint: str | None = None,
    model: str | None = None,
    max_requests: int | None = None,
    max_bytes: int | None = None,
    memory_ids: int = MEMORY_KEYS,
    override_model: bool = False,
    strict: bool = False,
    generate_ids: bool | None = None,
) -> ValidationReport:
    """Run every check of :func:`prepare_input` and plan the split, writing nothing.
    Never raises for a bad input: the report lists the problems (with ``strict``, the
    warnings count as problems) and the warnings."""
    adapter = local_adapter(adapter)
    scratch = Path(tempfile.mkdtemp(prefix="omnibatch-validate-"))
    writer = _PlanWriter()
    try:
        run = _Run(
            adapter,
            writer,
            scratch,
            endpoint=endpoint,
            model=model,
            max_requests=_min(max_requests, adapter.limits.max_requests),
            max_bytes=_min(max_bytes, adapter.limits.max_bytes),
            memory_ids=memory_ids,
            override_model=override_model,
            strict=strict,
            generate_ids=generate_ids,
        )
        run.execute(source)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ValidationReport(
        source=_describe(source),
        provider=adapter.name,
        total=run.total,
        endpoint=run.endpoint,
        model=run.batch_model,
        parts=writer.plans,
        input_hash=run.digest,
        generated_ids=run.generated,
        problems=run.check.sorted_problems(),
        problem_count=run.check.count,
        warnings=run.warnings,
    )


# --- reading ------------------------------------------------------------------------------------


_GENERATED = re.compile(rb'"custom_id"\s*:\s*"(request-[0-9]+(?:-[0-9]+)?)"')


def _explicit_generated_ids(source: str | Path) -> set[str]:
    """The ids of the form ``request-N[-K]`` a file gives explicitly (a quick pre-read, done only
    when ids are to be generated), which generated ids must avoid."""
    if str(source) == "-":
        return set()  # standard input can be read once; the job runner spools it to a file
    found: set[str] = set()
    try:
        with open(source, "rb") as fh:
            for line in fh:
                if b"request-" in line:
                    found.update(m.decode() for m in _GENERATED.findall(line))
    except OSError:
        return found  # the main pass reports the unreadable file
    return found


def _line_blocks(source: str | Path, hasher: _Hasher | None) -> Iterator[Iterable[bytes]]:
    """The input's lines (with their newline), a block at a time; blank lines included so line
    numbers stay right."""
    if str(source) == "-":
        yield from _split_blocks(sys.stdin.buffer, hasher)
        return
    try:
        fh = cast("io.BufferedReader", open(source, "rb", buffering=BLOCK_SIZE))  # noqa: SIM115
    except OSError as exc:
        raise _unreadable(source, exc) from None
    with fh:
        if stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            # A regular file is read twice: in big blocks by the hashing thread, and line by
            # line here, which is the cheapest way to get lines in Python.
            if hasher is not None:
                hasher.hash_file(source)
            # In slices, so that the loop gets to its once-per-block work (the duplicate
            # check's memory limit) while it iterates the file.
            while fh.peek(1):
                yield islice(fh, _BLOCK_LINES)
        else:  # a pipe can be read once: hash the blocks we split
            yield from _split_blocks(fh, hasher)


def _unreadable(source: str | Path, exc: OSError) -> InputValidationError:
    problem = ValidationProblem(
        line=None,
        message=f"cannot read the input: {exc.strerror or exc}",
        fix="check the path (or pass - to read standard input)",
    )
    return InputValidationError([problem], source=str(source))


def _split_blocks(fh: IO[bytes], hasher: _Hasher | None) -> Iterator[Iterable[bytes]]:
    # Lines come from a BytesIO over each block rather than block.split(): one line object
    # alive at a time reuses the same memory, where a list of thousands churns the allocator.
    tail = b""
    while True:
        block = fh.read(BLOCK_SIZE)
        if not block:
            break
        if hasher is not None:
            hasher.feed(block)
        cut = block.rfind(b"\n") + 1
        if not cut:
            tail += block
            continue
        whole = tail + block[:cut] if tail else block[:cut]
        tail = block[cut:]
        yield io.BytesIO(whole)
    if tail:
        yield (tail,)


def _object_blocks(
    source: Iterable[BatchRequest | Mapping[str, Any]], digest: Any
) -> Iterator[list[Any]]:
    block: list[Any] = []
    for item in source:
        obj = item.model_dump() if isinstance(item, BatchRequest) else item
        try:
            digest.update(
                orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
            )
        except TypeError:  # not JSON: the line's check reports it
            digest.update(repr(obj).encode() + b"\n")
        block.append(obj)
        if len(block) >= 1024:
            yield block
            block = []
    if block:
        yield block


class _Hasher:
    """sha256 of the input on a worker thread: hashlib releases the GIL on large blocks, so on a
    machine with a spare core hashing costs no wall time. The thread either reads the file
    itself (:meth:`hash_file`) or is fed the blocks the main thread read (:meth:`feed`)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None
        self._path: str | Path = ""

    def _start(self, target: Callable[[], None]) -> None:
        import threading

        self._thread = threading.Thread(target=target, name="omnibatch-hash", daemon=True)
        self._thread.start()

    def hash_file(self, path: str | Path) -> None:
        self._path = path
        self._start(self._read_file)

    def _read_file(self) -> None:
        try:
            with open(self._path, "rb") as fh:
                while block := fh.read(BLOCK_SIZE):
                    self._digest.update(block)
        except OSError as exc:
            self._error = exc

    def feed(self, block: bytes) -> None:
        if self._queue is None:
            import queue

            self._queue = queue.Queue(maxsize=4)
            self._start(self._read_queue)
        self._queue.put(block)

    def _read_queue(self) -> None:
        assert self._queue is not None
        while (block := self._queue.get()) is not None:
            self._digest.update(block)

    def hexdigest(self) -> str:
        self.close()
        if self._error is not None:
            raise _unreadable(self._path, self._error)
        return self._digest.hexdigest()

    def close(self) -> None:
        if self._queue is not None:
            self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._queue = None


# --- checking -----------------------------------------------------------------------------------


class _Checker:
    """Collects problems; stops keeping details after MAX_PROBLEMS_KEPT (but keeps counting)."""

    def __init__(self) -> None:
        self.problems: list[ValidationProblem] = []
        self.count = 0

    def add(self, line: int, fld: str | None, message: str, fix: str | None = None) -> None:
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(ValidationProblem(line=line, field=fld, message=message, fix=fix))

    def sorted_problems(self) -> list[ValidationProblem]:
        # Duplicates found on disk arrive after the pass: show everything in line order.
        problems = sorted(self.problems, key=lambda p: p.line or 0)
        if self.count > len(problems):
            problems.append(
                ValidationProblem(
                    line=None, message=f"{self.count - len(problems)} further problem(s) not shown"
                )
            )
        return problems

    def error(self, source: str, provider: str) -> InputValidationError:
        return InputValidationError(self.sorted_problems(), source=source, provider=provider)


def model_map_of(adapter: ProviderAdapter) -> dict[str, str] | None:
    """The adapter's ``models`` option (input model -> provider model), checked."""
    raw = adapter.options.get("models")
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in raw.items()
    ):
        raise ConfigurationError(
            f"[providers.{adapter.name}.models] must map model names to model names, e.g. "
            f'"gpt-4o-mini" = "claude-haiku-4-5"'
        )
    return dict(raw) or None


def _overrides(adapter: ProviderAdapter, name: str) -> bool:
    return getattr(type(adapter), name) is not getattr(ProviderAdapter, name)


class _Run:
    """One pass over an input, feeding a writer (parts, one file, or a plan)."""

    def __init__(
        self,
        adapter: ProviderAdapter,
        writer: _Writer,
        workdir: Path,
        *,
        endpoint: str | None,
        model: str | None,
        max_requests: int | None,
        max_bytes: int | None,
        memory_ids: int,
        override_model: bool = False,
        strict: bool = False,
        generate_ids: bool | None = None,
    ) -> None:
        self.adapter = adapter
        self.override_model = override_model
        self.strict = strict
        self.model_map = model_map_of(adapter)
        self.warnings: list[ValidationProblem] = []
        self.models_seen: dict[str, int] = {}
        self.generate_ids = generate_ids
        self._reserved: set[str] = set()
        self.writer = writer
        self.workdir = workdir
        self.endpoint_arg = endpoint
        self.model_arg = model
        self.max_requests = max_requests or _NO_LIMIT
        self.max_bytes = max_bytes or _NO_LIMIT
        self.max_requests_text = str(max_requests) if max_requests else "-"
        self.max_bytes_text = str(max_bytes) if max_bytes else "-"
        self.memory_ids = memory_ids
        self.check = _Checker()
        self.total = 0
        self.generated = 0
        self.batch_url: str | None = None
        self.batch_model: str | None = None
        self.digest = ""

    @property
    def endpoint(self) -> str:
        return self.batch_url or self.endpoint_arg or _DEFAULT_ENDPOINT

    def execute(self, source: InputSource) -> None:
        finder = DuplicateFinder(self.workdir, memory_keys=self.memory_ids)
        try:
            if isinstance(source, str | Path):
                if self.generate_ids:
                    self._reserved = _explicit_generated_ids(source)
                hasher = _Hasher()
                try:
                    self._loop(_line_blocks(source, hasher), orjson.loads, finder)
                finally:
                    hasher.close()
                self.digest = hasher.hexdigest()
            else:
                if self.generate_ids is None:  # Python objects: ids are generated when absent
                    self.generate_ids = True
                digest = hashlib.sha256()
                self._loop(_object_blocks(source, digest), _same, finder)
                self.digest = digest.hexdigest()
            for dup in finder.finish(MAX_PROBLEMS_KEPT):
                self._duplicate(dup.line, dup.custom_id, dup.first_line)
        finally:
            finder.close()
        if self.total == 0 and not self.check.count:
            if isinstance(source, str | Path) and _is_empty_file(source):
                self.check.add(0, None, "empty file", "add one JSON request per line")
            else:
                self.check.add(0, None, "the input has no requests", "add at least one JSONL line")

    def _generated_id(self, position: int) -> str:
        """``request-N`` for the N-th request, or ``request-N-K`` when the input itself uses
        that id, so a generated id never collides with a given one."""
        candidate = f"request-{position}"
        again = 0
        while candidate in self._reserved:
            again += 1
            candidate = f"request-{position}-{again}"
        return candidate

    def _duplicate(self, line: int, custom_id: str, first_line: int) -> None:
        self.check.add(
            line,
            "custom_id",
            f"duplicate custom_id {custom_id!r} (first used on line {first_line})",
            "give every request its own custom_id",
        )

    # The hot loop: a million lines go through here, so it sticks to local names and plain
    # type tests, checks the common case with one comparison where it can, and leaves
    # everything unusual to the helpers below.
    def _loop(
        self, blocks: Iterator[Iterable[Any]], loads: Callable[[Any], Any], finder: DuplicateFinder
    ) -> None:
        adapter = self.adapter
        check = self.check
        problem = check.add
        problems = check.problems  # non-empty as soon as any problem was found
        dumps = orjson.dumps
        decode_error = orjson.JSONDecodeError
        newline = orjson.OPT_APPEND_NEWLINE
        fields = _FIELDS
        encode = adapter.encode_line
        custom_model_of = _overrides(adapter, "model_of")
        custom_check = _overrides(adapter, "check_request")
        pattern = (
            re.compile(adapter.limits.custom_id_pattern)
            if adapter.limits.custom_id_pattern
            else None
        )
        generate = self.generate_ids
        inject_model = self.model_arg is not None and not adapter.capabilities.model_at_job_level
        override = self.override_model and self.model_arg is not None
        job_model = self.model_arg
        model_map = self.model_map
        models_seen = self.models_seen
        max_requests = self.max_requests
        max_bytes = self.max_bytes
        writer = self.writer
        write = writer.write
        ids_append = writer.ids.append
        seen: dict[str, int] | None = finder.memory
        remember = finder.memory.setdefault
        spill_keys: list[str] = []
        spill_lines: list[int] = []
        memory_cap = finder.memory_keys
        batch_url = self.batch_url
        default_url = self.endpoint_arg or _DEFAULT_ENDPOINT
        batch_model = self.batch_model
        # part_count starts at the limit so that the first line opens the first part.
        part_count = max_requests
        part_bytes = 0
        part_model: str | None = None
        started = False
        unflushed = _FLUSH_LINES
        number = total = generated = 0
        for block in blocks:
            for raw in block:
                number += 1
                try:
                    obj = loads(raw)
                except decode_error as exc:
                    if raw.strip():
                        problem(number, None, *_undecodable(raw, exc))
                    continue
                if obj.__class__ is not dict:
                    if isinstance(obj, Mapping):
                        obj = dict(obj)
                    else:
                        problem(
                            number,
                            None,
                            "a line must be a JSON object",
                            "wrap the request in {...}",
                        )
                        continue
                total += 1
                custom_id = obj.get("custom_id")
                method = obj.get("method")
                url = obj.get("url")
                body = obj.get("body")
                if custom_id.__class__ is not str or not custom_id:
                    if custom_id is None and not generate:
                        problem(
                            number,
                            "custom_id",
                            "is missing: results are matched to requests by it",
                            'give each line a unique "custom_id", or ask for generated ones '
                            "(--generate-ids, generate_ids=True)",
                        )
                        continue
                    if custom_id is None:
                        generated += 1
                        custom_id = self._generated_id(total)
                    else:
                        problem(
                            number,
                            "custom_id",
                            f"must be a non-empty string (got {custom_id!r})",
                            'quote it, e.g. "custom_id": "request-1"',
                        )
                        continue
                if seen is not None:
                    first = remember(custom_id, number)
                    if first != number:
                        self._duplicate(number, custom_id, first)
                else:
                    spill_keys.append(custom_id)
                    spill_lines.append(number)
                if (len(obj) != 4 or method is None or url is None) and not fields.issuperset(obj):
                    problem(
                        number,
                        None,
                        f"unknown field(s) {sorted(set(obj) - fields)}",
                        "keep custom_id, method, url and body only",
                    )
                if method != "POST" and method is not None:
                    problem(
                        number, "method", f"must be POST (got {method!r})", 'set "method": "POST"'
                    )
                if url != batch_url or url is None:
                    url = url or default_url
                    if url != batch_url:
                        if not self._url_ok(number, url):
                            url = None
                        elif batch_url is None:
                            batch_url = self.batch_url = url
                            default_url = self.endpoint_arg or url
                if body.__class__ is not dict:
                    problem(
                        number,
                        "body",
                        "missing or not an object",
                        'add "body": {...} with the endpoint\'s parameters',
                    )
                    continue
                if url is None:
                    continue
                if model_map is not None:
                    mapped = model_map.get(body.get("model"))  # type: ignore[arg-type]
                    if mapped is not None:
                        body = {**body, "model": mapped}
                if override:
                    if body.get("model") != job_model:
                        body = {**body, "model": job_model}
                    req_model = job_model
                elif custom_model_of:
                    req_model = adapter.model_of(_request(custom_id, url, body)) or job_model
                else:
                    req_model = body.get("model") or job_model
                if req_model != batch_model or req_model is None:
                    batch_model = self._model_ok(number, req_model, batch_model)
                if req_model is not None and req_model not in models_seen:
                    self._new_model(number, req_model)
                if custom_check:
                    for issue in adapter.check_request(_request(custom_id, url, body)):
                        problem(number, issue.field, issue.message, issue.fix)
                if pattern is not None and not pattern.fullmatch(custom_id):
                    problem(
                        number,
                        "custom_id",
                        f"{custom_id!r} is not accepted by {adapter.name} "
                        f"(pattern {pattern.pattern})",
                        "use letters, digits, '-' and '_' only, at most 64 characters",
                    )
                if problems:
                    continue  # keep validating, but stop writing: nothing will be uploaded
                if inject_model and "model" not in body:
                    body = {**body, "model": job_model}
                try:
                    data = dumps(encode(custom_id, url, body), option=newline)
                except TypeError as exc:  # orjson.JSONEncodeError, from request objects
                    problem(
                        number,
                        None,
                        f"cannot be written as JSON ({exc})",
                        "use only JSON types (str, int, float, bool, None, list, dict)",
                    )
                    continue
                size = len(data)
                if part_count >= max_requests or part_bytes + size > max_bytes:
                    if size > max_bytes:
                        problem(
                            number,
                            None,
                            f"request is {size} bytes, over {adapter.name}'s "
                            f"{max_bytes} bytes per batch",
                            "shorten the request",
                        )
                        continue
                    if started:
                        writer.end_part(part_count, part_bytes, part_model, self.endpoint)
                        unflushed = _FLUSH_LINES
                    writer.start_part()
                    write = writer.write
                    started = True
                    part_count = part_bytes = 0
                    part_model = req_model
                write(data)
                ids_append(custom_id)
                part_count += 1
                part_bytes += size
                unflushed -= 1
                if not unflushed:
                    writer.flush_ids()
                    unflushed = _FLUSH_LINES
            # Once per block: move the duplicate check to disk when memory is full.
            if seen is not None and len(seen) > memory_cap:
                finder.spill()
                seen = None
            elif spill_keys:
                finder.add_spilled_many(spill_keys, spill_lines)
                spill_keys = []
                spill_lines = []
        self.total = total
        self.generated = generated
        self.batch_model = batch_model
        if started and not problems:
            writer.end_part(part_count, part_bytes, part_model, self.endpoint)

    def _url_ok(self, number: int, url: Any) -> bool:
        adapter = self.adapter
        if not isinstance(url, str) or url not in adapter.endpoints:
            self.check.add(
                number,
                "url",
                f"{adapter.name} has no batch endpoint {url!r}",
                f"use one of {', '.join(sorted(adapter.endpoints))}",
            )
            return False
        if self.batch_url is not None and url != self.batch_url:
            self.check.add(
                number,
                "url",
                f"{url!r} differs from {self.batch_url!r} used earlier",
                "put requests for different endpoints in separate inputs",
            )
            return False
        return True

    def _new_model(self, number: int, model: str) -> None:
        """A model's first line: warn (or, strict, refuse) when the price data has the
        provider but not the model, naming the line and the map that would fix it."""
        from omnibatch._prices import known_model, price_provider

        self.models_seen[model] = number
        if known_model(price_provider(self.adapter), model) is not False:
            return
        name = self.adapter.name
        problem = ValidationProblem(
            line=number,
            field="body.model",
            message=f"model {model!r} does not look like a {name} model "
            f"(genai-prices lists no such {name} model)",
            fix=f'map it in omnibatch.toml: [providers.{name}.models] "{model}" = '
            f'"<a {name} model>", or pass --model',
        )
        self.warnings.append(problem)
        if self.strict:
            self.check.add(number, problem.field, problem.message, problem.fix)

    def _model_ok(self, number: int, req_model: str | None, batch_model: str | None) -> str | None:
        """The batch model after this line (problems for a missing or second model)."""
        if req_model is None:
            self.check.add(
                number,
                "body.model",
                "no model given",
                'add "model" to the body, or pass --model / model=',
            )
            return batch_model
        if not self.adapter.capabilities.single_model:
            return batch_model
        if batch_model is None:
            return req_model
        self.check.add(
            number,
            "body.model",
            f"model {req_model!r} differs from {batch_model!r}",
            f"{self.adapter.name} takes one model per batch: split the input by model",
        )
        return batch_model


def _same(obj: Any) -> Any:
    return obj


def _request(custom_id: str, url: str, body: dict[str, Any]) -> BatchRequest:
    # Values are already checked: build the model without validating it again.
    return BatchRequest.model_construct(custom_id=custom_id, method="POST", url=url, body=body)


# --- writing ------------------------------------------------------------------------------------


def _discard(data: bytes) -> None:
    pass


class _Writer:
    """Receives encoded lines: the loop calls :attr:`write` (set again by :meth:`start_part`),
    appends each line's id to :attr:`ids` and calls :meth:`flush_ids` now and then."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.write: Callable[[bytes], object] = _discard

    def start_part(self) -> None:
        pass

    def flush_ids(self) -> None:
        self.ids.clear()

    def end_part(self, count: int, size: int, model: str | None, endpoint: str) -> None:
        self.flush_ids()

    def discard(self) -> None:
        self.ids.clear()


# Lines go straight to a file object with a large buffer: accumulating them in a bytearray
# that is emptied after each write costs more (clear() frees the buffer, and regrowing it by
# small steps copies it over and over).
_WRITE_BUFFER = 1 << 20


class _PartWriter(_Writer):
    """``part-NNNNN.jsonl`` + ``part-NNNNN.ids`` files under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir
        self.parts: list[InputPart] = []
        self._fh: IO[bytes] | None = None
        self._ids_fh: IO[bytes] | None = None

    def _path(self, suffix: str) -> Path:
        return self.workdir / f"part-{len(self.parts):05d}{suffix}"

    def start_part(self) -> None:
        self._fh = open(self._path(".jsonl"), "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115
        self._ids_fh = open(self._path(".ids"), "wb")  # noqa: SIM115 - both closed in end_part
        self.write = self._fh.write

    def flush_ids(self) -> None:
        if self._ids_fh is not None:
            self._ids_fh.write(ids_text(self.ids))
        super().flush_ids()

    def end_part(self, count: int, size: int, model: str | None, endpoint: str) -> None:
        self.flush_ids()
        assert self._fh is not None and self._ids_fh is not None
        self._fh.close()
        self._ids_fh.close()
        self._fh = self._ids_fh = None
        self.write = _discard
        self.parts.append(
            InputPart(
                path=self._path(".jsonl"),
                index=len(self.parts),
                count=count,
                size_bytes=size,
                endpoint=endpoint,
                model=model,
                custom_ids_path=self._path(".ids"),
            )
        )

    def discard(self) -> None:
        super().discard()
        for fh in (self._fh, self._ids_fh):
            if fh is not None:
                fh.close()
        self._fh = self._ids_fh = None
        self.write = _discard
        for path in self.workdir.glob("part-*"):
            path.unlink(missing_ok=True)
        self.parts = []


class _FileWriter(_Writer):
    """Everything in one file, written beside ``out`` and renamed into place by ``commit``."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out
        self.tmp = out.with_name(out.name + ".partial")
        self._fh: IO[bytes] | None = None
        self.count = 0
        self.size = 0
        self.model: str | None = None

    def start_part(self) -> None:
        if self._fh is None:
            self._fh = open(self.tmp, "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115 - close()
        self.write = self._fh.write

    def end_part(self, count: int, size: int, model: str | None, endpoint: str) -> None:
        super().end_part(count, size, model, endpoint)
        self.count, self.size, self.model = count, size, model

    def commit(self, endpoint: str) -> InputPart:
        self.start_part()
        assert self._fh is not None
        self._fh.close()
        self._fh = None
        self.tmp.replace(self.out)
        return InputPart(self.out, 0, self.count, self.size, endpoint, self.model)

    def discard(self) -> None:
        super().discard()
        self.close()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.write = _discard
        self.tmp.unlink(missing_ok=True)


class _PlanWriter(_Writer):
    """Writes nothing; records the parts that would be written."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: list[PartPlan] = []

    def end_part(self, count: int, size: int, model: str | None, endpoint: str) -> None:
        super().end_part(count, size, model, endpoint)
        self.plans.append(PartPlan(len(self.plans), count, size, model))


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _describe(source: InputSource) -> str:
    if isinstance(source, str | Path):
        return "standard input" if str(source) == "-" else str(source)
    return "the request objects"
