"""What the built-in dialects share beyond the :class:`~omnibatch.emulator.dialect.Dialect`
helpers: time stamps as the APIs render them, the lines of a JSONL input, and the routes of
one stored file in OpenAI's Files API (which Mistral's copies). Published to plugins
by :mod:`omnibatch.plugin`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from omnibatch.emulator.dialect import Dialect, content_response
from omnibatch.emulator.engine import Engine, SimRequest, StoredFile, ValidationIssue

__all__ = ["NOT_JSON", "file_route", "iso_time", "jsonl_lines", "request_lines", "unix_time"]

NOT_JSON: Any = object()
"""What :func:`jsonl_lines` gives for a line that is not valid JSON."""

_FILE = re.compile(r"^/v1/files/([^/]+)$")
_FILE_CONTENT = re.compile(r"^/v1/files/([^/]+)/content$")


def unix_time(value: float | None) -> int | None:
    """Whole seconds since the epoch (OpenAI's and Mistral's time stamps)."""
    return None if value is None else int(value)


def iso_time(value: float | None) -> str | None:
    """An RFC 3339 UTC time with microseconds (Anthropic's and Google's time stamps)."""
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jsonl_lines(data: bytes) -> Iterator[tuple[int, bytes, Any]]:
    """``(line number, line, value)`` for each line of ``data`` that is not blank: numbers
    from 1, the line stripped, its JSON value or :data:`NOT_JSON`."""
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            value = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            value = NOT_JSON
        yield lineno, stripped, value


def request_lines(
    data: bytes,
    *,
    max_custom_id: int | None = None,
    empty: ValidationIssue,
    max_issues: int = 1_000,
) -> tuple[list[SimRequest], list[ValidationIssue]]:
    """The requests of an input of ``{"custom_id", "body"}`` lines (Together's files,
    Fireworks' datasets), and what is wrong with the others: up to ``max_issues``
    ``invalid_line`` issues naming the line, or ``empty`` when there is no request at all.
    ``max_custom_id`` bounds an id's length; without it any non-empty string is an id."""
    requests: list[SimRequest] = []
    issues: list[ValidationIssue] = []
    seen: set[str] = set()
    rule = (
        "a non-empty string"
        if max_custom_id is None
        else f"a string of 1-{max_custom_id} characters"
    )

    def problem(message: str, line: int) -> None:
        if len(issues) < max_issues:
            issues.append(ValidationIssue("invalid_line", f"line {line}: {message}", line))

    for lineno, stripped, obj in jsonl_lines(data):
        if obj is NOT_JSON or not isinstance(obj, dict):
            problem("not a JSON object", lineno)
            continue
        body = obj.get("body")
        custom_id = obj.get("custom_id")
        if not isinstance(body, dict):
            problem("'body' is missing or is not an object", lineno)
            continue
        if (
            not isinstance(custom_id, str)
            or not custom_id
            or (max_custom_id is not None and len(custom_id) > max_custom_id)
        ):
            problem(f"custom_id must be {rule}", lineno)
            continue
        if custom_id in seen:
            problem(f"duplicate custom_id '{custom_id}'", lineno)
            continue
        seen.add(custom_id)
        requests.append(
            SimRequest(
                index=len(requests), custom_id=custom_id, body=body, raw=stripped, line=lineno
            )
        )
    if not requests and not issues:
        issues.append(empty)
    return requests, issues


def file_route(
    dialect: Dialect,
    engine: Engine,
    request: httpx.Request,
    path: str,
    find: Callable[[Engine, str], StoredFile],
    render: Callable[[StoredFile], Any],
) -> httpx.Response | None:
    """The answer to ``GET /v1/files/{id}/content``, ``GET /v1/files/{id}`` (the file
    object, from ``render``) and ``DELETE /v1/files/{id}``; ``None`` for any other path or
    method. ``find`` looks the file up (raising the dialect's 404 when it is missing)."""
    method = request.method
    if m := _FILE_CONTENT.match(path):
        if method == "GET":
            stored = find(engine, m.group(1))
            return content_response(request, stored.data, "application/octet-stream")
    elif m := _FILE.match(path):
        if method == "GET":
            return dialect.json_response(render(find(engine, m.group(1))))
        if method == "DELETE":
            stored = find(engine, m.group(1))
            engine.delete_file(stored.id)
            return dialect.json_response({"id": stored.id, "object": "file", "deleted": True})
    return None
