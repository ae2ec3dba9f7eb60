"""Helpers the built-in adapters share: reading an answer that must be a JSON object, and
reporting the problems of a body their translator (see :mod:`omnibatch._chat`) could not
translate."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omnibatch._chat import Problem
from omnibatch._exceptions import InputValidationError, ProviderResponseError
from omnibatch.adapter import RequestIssue
from omnibatch.flows import HttpResponse
from omnibatch.models import ValidationProblem

__all__ = ["invalid_request", "json_object", "request_issues"]


def json_object(response: HttpResponse, provider: str) -> dict[str, Any]:
    """The response's JSON body, which must be an object (else ``ProviderResponseError``)."""
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderResponseError(str(exc), provider=provider) from exc
    if not isinstance(body, dict):
        raise ProviderResponseError(f"expected a JSON object, got {body!r:.200}", provider=provider)
    return body


def request_issues(problems: Iterable[Problem]) -> list[RequestIssue]:
    """A translation's problems as ``check_request`` reports them."""
    return [RequestIssue(p.field, p.message, p.fix) for p in problems]


def invalid_request(
    problems: Iterable[Problem], custom_id: str, provider: str
) -> InputValidationError:
    """The error ``encode_line`` raises for a request it cannot translate (reached only when
    ``check_request`` was skipped: that reports the problems first)."""
    return InputValidationError(
        [
            ValidationProblem(line=None, field=p.field, message=p.message, fix=p.fix)
            for p in problems
        ],
        source=f"request {custom_id!r}",
        provider=provider,
    )
