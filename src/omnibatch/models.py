"""Normalized, provider-neutral value types: batches, requests, results.

These are the public models users read. They are strict and frozen; provider wire shapes stay in
the adapters, and the raw provider object is kept on ``Batch.raw`` / ``BatchResult.raw``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from omnibatch._status import BatchStatus

__all__ = [
    "Batch",
    "BatchErrorDetail",
    "BatchRequest",
    "BatchResult",
    "FileObject",
    "Page",
    "RequestCounts",
    "ResultError",
    "ResultStatus",
    "Usage",
    "ValidationProblem",
    "response_text",
    "to_datetime",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", defer_build=True)

T = TypeVar("T")


def to_datetime(value: Any) -> datetime | None:
    """Parse a provider timestamp (Unix seconds, ISO-8601 / RFC 3339) as an aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), tz=UTC)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # Python 3.11 parses up to microseconds; providers send nanoseconds sometimes.
        if "." in text:
            head, _, rest = text.partition(".")
            digits = "".join(ch for ch in rest if ch.isdigit())
            zone = rest[len(digits) :]
            text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"not a timestamp: {value!r}")


class RequestCounts(BaseModel):
    """How many requests of a batch are in each state. ``pending`` is derived."""

    model_config = _FROZEN

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0

    @property
    def pending(self) -> int:
        return max(self.total - self.succeeded - self.failed - self.cancelled - self.expired, 0)

    @property
    def done(self) -> int:
        return self.total - self.pending

    @property
    def errored(self) -> int:
        """``failed`` in the word results use (``BatchResult.status == "errored"``); the field
        keeps the name providers and the plugin API give it."""
        return self.failed


class Usage(BaseModel):
    """Token usage, where the provider reports it. ``input_tokens`` counts every prompt token
    (cached ones included), ``output_tokens`` every generated one (reasoning included);
    ``cached_input_tokens`` and ``reasoning_tokens`` are None where the provider does not say."""

    model_config = _FROZEN

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None
    """What the provider charged, in its currency (US dollars on OpenRouter), where it reports
    a cost beside the tokens (OpenRouter's ``usage.cost``); None elsewhere."""
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None

    def normalized(self) -> dict[str, int | None]:
        """The four counts an OUTPUT line carries."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


class BatchErrorDetail(BaseModel):
    """A batch-level error, e.g. why validation failed (``line`` is 1-based when known)."""

    model_config = _FROZEN

    code: str | None = None
    message: str
    line: int | None = None
    param: str | None = None


class Batch(BaseModel):
    """A provider batch in normalized form. ``provider_status`` is the provider's own word."""

    model_config = _FROZEN

    id: str
    provider: str
    status: BatchStatus
    provider_status: str
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    expires_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    endpoint: str | None = None
    model: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    input_file_ids: tuple[str, ...] = ()
    output_file_ids: tuple[str, ...] = ()
    error_file_ids: tuple[str, ...] = ()
    errors: tuple[BatchErrorDetail, ...] = ()
    usage: Usage | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def is_partial(self) -> bool:
        """Ended, but not every request succeeded."""
        counts = self.request_counts
        return self.is_terminal and counts.total > 0 and counts.succeeded < counts.total


class BatchRequest(BaseModel):
    """One request in omnibatch's input format (the OpenAI batch line format).

    ``url`` is the endpoint path (``/v1/chat/completions``); ``body`` the endpoint's parameters.
    """

    model_config = _FROZEN

    custom_id: str
    method: str = "POST"
    url: str = "/v1/chat/completions"
    body: dict[str, Any]


class ResultStatus(StrEnum):
    """What happened to one request."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class ResultError(BaseModel):
    """Why a request did not succeed. ``code`` is the provider's code or one of ours
    (``missing_result`` when no output mentioned the request); ``kind`` the same on every
    provider (``invalid_request``, ``rate_limit``, ``expired`` ...: see
    ``omnibatch._answers.ERROR_KINDS``), filled in when results are read."""

    model_config = _FROZEN

    code: str | None = None
    message: str
    type: str | None = None
    kind: str | None = None


class BatchResult(BaseModel):
    """One request's outcome, joined to its ``custom_id``, in the same shape on every provider:
    ``text`` (or ``embedding`` for an embeddings request), ``finish_reason`` (``stop``,
    ``length``, ``tool_calls``, ``content_filter``, ``error`` or ``other``; the provider's own
    word in ``provider_finish_reason``), ``tool_calls`` in OpenAI's shape, ``usage``, ``model``
    (as the provider answered) and ``error``; ``response`` is the provider's body, untouched."""

    model_config = _FROZEN

    custom_id: str
    status: ResultStatus
    status_code: int | None = None
    response: dict[str, Any] | None = None
    error: ResultError | None = None
    usage: Usage | None = None
    batch_id: str | None = None
    text: str | None = None
    embedding: Any = None
    finish_reason: str | None = None
    provider_finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    model: str | None = None
    raw: dict[str, Any] | None = Field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status is ResultStatus.SUCCEEDED

    def to_output_line(self) -> dict[str, Any]:
        """The line ``omnibatch run`` writes (the same keys on every provider): custom_id,
        status, text or embedding, finish_reason, provider_finish_reason, tool_calls, usage,
        model, error and response."""
        from omnibatch._answers import error_fields

        line: dict[str, Any] = {"custom_id": self.custom_id, "status": self.status.value}
        if self.embedding is not None:
            line["embedding"] = self.embedding
        else:
            line["text"] = self.text
        line["finish_reason"] = self.finish_reason
        line["provider_finish_reason"] = self.provider_finish_reason
        line["tool_calls"] = self.tool_calls
        line["usage"] = self.usage.normalized() if self.usage is not None else None
        line["model"] = self.model
        if self.status is ResultStatus.SUCCEEDED:
            line["error"] = None
        else:
            error = self.error.model_dump() if self.error else {"message": "unknown"}
            line["error"] = error_fields(self.status.value, error, self.response)
        line["response"] = self.response
        return line


def _joined(parts: Any, key: str = "text") -> str | None:
    if not isinstance(parts, list):
        return None
    texts = [p[key] for p in parts if isinstance(p, dict) and isinstance(p.get(key), str)]
    return "".join(texts) if texts else None


def response_text(body: Any) -> str | None:
    """The text of the first answer in a response body, read by its shape (no provider names):
    ``choices[0].message.content`` (chat completions), ``output[].content[].text`` (Responses),
    ``content[].text`` (messages), ``candidates[0].content.parts[].text`` (generateContent)."""
    if not isinstance(body, dict):
        return None
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            content = message.get("content")
            return content if isinstance(content, str) else _joined(content)
        text = choices[0].get("text")
        return text if isinstance(text, str) else None
    candidates = body.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        content = candidates[0].get("content")
        return _joined(content.get("parts")) if isinstance(content, dict) else None
    output = body.get("output")
    if isinstance(output, list):
        texts = [
            t
            for item in output
            if isinstance(item, dict)
            if (t := _joined(item.get("content"))) is not None
        ]
        return "".join(texts) if texts else None
    return _joined(body.get("content"))


class FileObject(BaseModel):
    """A file stored at the provider."""

    model_config = _FROZEN

    id: str
    provider: str
    filename: str | None = None
    bytes: int | None = None
    purpose: str | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class Page(BaseModel, Generic[T]):
    """One page of a provider listing; ``next_cursor`` is None on the last page."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, defer_build=True)

    items: list[T]
    next_cursor: str | None = None


class ValidationProblem(BaseModel):
    """One problem in an input: where (line, field), what, and how to fix it."""

    model_config = _FROZEN

    line: int | None
    field: str | None = None
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "input"  # line 0: the whole input
        if self.field:
            where += f", field '{self.field}'"
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{where}: {self.message}{fix}"
