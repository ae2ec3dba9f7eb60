"""OpenAI-style result files, as OpenAI and the providers that copy its batch API write them.

A line is ``{"custom_id", "response": {"status_code", "body"}, "error"}``: ``error`` is set
when the request never ran or failed outright, ``response`` holds what the endpoint answered
(which may itself be an HTTP failure). What a failed line *means* (errored, expired,
cancelled) differs between providers, so each adapter reads its lines with its own rules, built
from the pieces here, into a :data:`Line`; :func:`output_line` and :func:`batch_result` then turn
that into the merge's output line or a :class:`BatchResult`, the same way for every provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from omnibatch.adapter import ResultSource
from omnibatch.flows import HttpRequest
from omnibatch.models import Batch, BatchResult, ResultError, ResultStatus, Usage

__all__ = [
    "Line",
    "batch_result",
    "error_dict",
    "file_sources",
    "http_failure",
    "line_error",
    "output_line",
    "parse_usage",
    "record_output_line",
    "split",
]

Line: TypeAlias = tuple[str, ResultStatus, Any, Any, dict[str, Any] | None]
"""One read line: custom_id, status, status code, the response body as the line has it, and
the error as the output line shows it (``None`` for a success)."""


_VALUES = {status: status.value for status in ResultStatus}  # quicker than .value per line


def file_sources(batch: Batch, download: Callable[[str], HttpRequest]) -> list[ResultSource]:
    """A download source for each output file, then each error file, the batch names."""
    return [
        ResultSource(kind, download=download(file_id), name=f"{kind} file {file_id}")
        for kind, ids in (("output", batch.output_file_ids), ("error", batch.error_file_ids))
        for file_id in ids
    ]


def split(record: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    """A line's ``response``, the response's ``body`` and ``status_code`` (``None`` when the
    response is not an object), and the line's ``error``."""
    response = record.get("response")
    if isinstance(response, (dict, Mapping)):  # dict first: the quick test
        return response, response.get("body"), response.get("status_code"), record.get("error")
    return response, None, None, record.get("error")


def line_error(error: Any) -> tuple[Any, str]:
    """The code and message of a line's (truthy) ``error``: an object, or a plain string."""
    if isinstance(error, Mapping):
        code = error.get("code")
        return code, str(error.get("message") or code or "error")
    return None, str(error)


def http_failure(
    body: Any, status_code: Any, *, body_message: bool = False
) -> tuple[Any, str, Any]:
    """Code, message and type of a response with a 4xx/5xx status, from the body's ``error``
    object (``http_<status>`` and ``HTTP <status>`` when it has none). With ``body_message``
    a ``message`` at the top of the body is the next choice for the message."""
    detail = body.get("error") if isinstance(body, Mapping) else None
    detail = detail if isinstance(detail, Mapping) else {}
    message = detail.get("message")
    if body_message and not message and isinstance(body, Mapping):
        message = body.get("message")
    return (
        detail.get("code") or f"http_{status_code}",
        str(message or f"HTTP {status_code}"),
        detail.get("type"),
    )


def error_dict(code: Any, message: str, type_: Any = None) -> dict[str, Any]:
    """``ResultError(...).model_dump(exclude_none=True)`` without the model."""
    error: dict[str, Any] = {}
    if code is not None:
        error["code"] = code if isinstance(code, str) else str(code)
    error["message"] = message
    if type_ is not None:
        error["type"] = type_
    return error


def output_line(line: Line) -> dict[str, Any]:
    """The merge's output line: what ``batch_result(line, ...).to_output_line()`` gives."""
    custom_id, status, _, body, error = line
    if not isinstance(body, dict):
        body = None
    if error is None:
        return {"custom_id": custom_id, "status": _VALUES[status], "response": body}
    out = {"custom_id": custom_id, "status": _VALUES[status], "error": error}
    if body is not None:
        out["response"] = body
    return out


def record_output_line(
    record: Mapping[str, Any], read: Callable[[Mapping[str, Any]], Line]
) -> dict[str, Any]:
    """:func:`output_line` of ``read(record)``, with the usual line, a success as orjson reads
    it, answered first without ``read`` (the same output, tested on every golden payload)."""
    response = record.get("response")
    if response.__class__ is dict and not record.get("error"):
        custom_id = record.get("custom_id")
        status_code = response.get("status_code")
        if custom_id.__class__ is str and (
            status_code is None or (status_code.__class__ is int and status_code < 400)
        ):
            body = response.get("body")
            return {
                "custom_id": custom_id,
                "status": "succeeded",
                "response": body if isinstance(body, dict) else None,
            }
    return output_line(read(record))


def batch_result(
    line: Line, record: Mapping[str, Any], usage: Callable[[Any], Usage | None]
) -> BatchResult:
    """The line as a :class:`BatchResult`; ``usage`` reads a succeeded line's body."""
    custom_id, status, status_code, body, error = line
    return BatchResult(
        custom_id=custom_id,
        status=status,
        status_code=status_code,
        response=body if isinstance(body, dict) else None,
        error=None if error is None else ResultError(**error),
        usage=usage(body) if error is None else None,
        raw=dict(record),
    )


def parse_usage(body: Any, *, input_names: bool = True) -> Usage | None:
    """Token usage from a chat/completions/embeddings/responses body. ``input_names``: fall
    back on ``input_tokens``/``output_tokens`` (the Responses API's names) where the body
    has no ``prompt_tokens``/``completion_tokens``."""
    if not isinstance(body, Mapping):
        return None
    usage = body.get("usage")
    if not isinstance(usage, Mapping):
        return None
    if not input_names:
        return Usage(
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            total_tokens=usage.get("total_tokens"),
        )
    return Usage(
        input_tokens=usage.get("prompt_tokens", usage.get("input_tokens")),
        output_tokens=usage.get("completion_tokens", usage.get("output_tokens")),
        total_tokens=usage.get("total_tokens"),
    )
