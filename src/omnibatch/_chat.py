"""Reading OpenAI-style chat bodies for translation into another provider's request.

The Anthropic and Gemini providers translate chat completions bodies into their own request
shapes. What they read the same way lives here: the :class:`Problem` a translation reports,
the walk over ``messages`` with its checks, where a tool's answer goes, content parts,
``data:`` URLs, stop sequences, function tools, ``tool_choice`` and tool-call arguments. What
each provider makes of them stays in its ``translate.py``. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

__all__ = [
    "ROLES",
    "Invalid",
    "Problem",
    "add_tool_answer",
    "call_arguments",
    "content_parts",
    "data_url",
    "fail",
    "function_tools",
    "messages",
    "read_part",
    "require_turns",
    "stop_sequences",
    "tool_choice",
]

T = TypeVar("T")

ROLES = ("system", "developer", "user", "assistant", "tool")
"""The message roles a translation knows."""


@dataclass(frozen=True)
class Problem:
    """Why a body cannot be translated: the field, what is wrong, how to fix it."""

    field: str
    message: str
    fix: str | None = None


class Invalid(Exception):
    """Raised inside a translation; the translator reports its :class:`Problem`."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def fail(field: str, message: str, fix: str | None = None) -> Invalid:
    return Invalid(Problem(field, message, fix))


# -- options ----------------------------------------------------------------------------------


def stop_sequences(field: str, value: Any) -> list[str]:
    """``stop`` as a list: one string or a list of strings."""
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise fail(field, "must be a string or a list of strings")
    return stops


def function_tools(value: Any, fix: str) -> list[Mapping[str, Any]]:
    """The ``function`` object of each of ``tools``, all checked to be named function tools;
    ``fix`` is the advice for one that is not."""
    if not isinstance(value, list):
        raise fail("body.tools", "must be a list of tools")
    functions = []
    for i, tool in enumerate(value):
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            not isinstance(tool, Mapping)
            or tool.get("type") != "function"
            or not isinstance(fn, Mapping)
            or not isinstance(fn.get("name"), str)
        ):
            raise fail(f"body.tools[{i}]", "only function tools with a name can be translated", fix)
        functions.append(fn)
    return functions


def tool_choice(value: Any) -> tuple[str, Any]:
    """``tool_choice`` as ``("auto" | "none" | "required", None)`` or ``("function", name)``."""
    if isinstance(value, str) and value in ("auto", "none", "required"):
        return value, None
    if isinstance(value, Mapping):
        fn = value.get("function")
        if value.get("type") == "function" and isinstance(fn, Mapping) and fn.get("name"):
            return "function", fn["name"]
    raise fail(
        "body.tool_choice",
        f"cannot translate tool_choice {value!r}",
        'use "auto", "none", "required" or {"type": "function", "function": {"name"}}',
    )


# -- messages ---------------------------------------------------------------------------------


def messages(value: Any) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """``(where, role, message)`` for each of ``body.messages``, checked as it comes: the list
    is not empty, each message is an object with a role of :data:`ROLES`."""
    if not isinstance(value, list) or not value:
        raise fail(
            "body.messages",
            "must be a non-empty list of messages",
            'add "messages": [{"role": "user", "content": "..."}]',
        )
    for i, msg in enumerate(value):
        where = f"body.messages[{i}]"
        if not isinstance(msg, Mapping):
            raise fail(where, "a message must be an object")
        role = msg.get("role")
        if role not in ROLES:
            raise fail(
                f"{where}.role",
                f"role {role!r} cannot be translated",
                "use system, developer, user, assistant or tool",
            )
        yield where, role, msg


def add_tool_answer(
    turns: list[dict[str, Any]], key: str, answer: Any, is_answer: Callable[[Any], bool]
) -> None:
    """Put the answer of a ``tool`` message in a user turn: the answers to one assistant turn's
    calls go together, in the user turn holding only answers (``turns[-1][key]``) if the last
    turn is that, else in a new one."""
    last = turns[-1] if turns else None
    if (
        last
        and last["role"] == "user"
        and isinstance(last[key], list)
        and all(is_answer(item) for item in last[key])
    ):
        last[key].append(answer)
    else:
        turns.append({"role": "user", key: [answer]})


def require_turns(turns: list[dict[str, Any]]) -> None:
    """A request needs a turn besides the system messages."""
    if not turns:
        raise fail("body.messages", "needs at least one user message besides system messages")


def call_arguments(fn: Mapping[str, Any], where: str) -> Any:
    """The decoded ``arguments`` of the function of the tool call at ``where`` (``{}`` when
    empty)."""
    try:
        return orjson.loads(fn.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        raise fail(
            f"{where}.function.arguments", "arguments must be a JSON object string"
        ) from None


# -- content ----------------------------------------------------------------------------------


def content_parts(content: Any, where: str, part: Callable[[Any, str], T]) -> list[T]:
    """``part(item, where)`` for each part of a list content; any other content but a string
    (which each translator takes its own way) is a problem."""
    if isinstance(content, list):
        return [part(p, f"{where}[{i}]") for i, p in enumerate(content)]
    raise fail(where, "content must be a string or a list of parts")


def read_part(part: Any, where: str) -> tuple[Any, Any]:
    """A content part as ``(type, value)``: ``("text", text)`` for a string or a text part,
    ``("image_url", url)``, ``("file", file_data)`` (the value as the part gives it, maybe
    not a string), and ``(type, part)`` for any other type."""
    if isinstance(part, str):
        return "text", part
    if not isinstance(part, Mapping):
        raise fail(where, "a content part must be an object")
    kind = part.get("type")
    if kind == "text":
        return kind, str(part.get("text", ""))
    if kind == "image_url":
        image = part.get("image_url")
        return kind, image.get("url") if isinstance(image, Mapping) else image
    if kind == "file":
        file = part.get("file")
        return kind, file.get("file_data") if isinstance(file, Mapping) else None
    return kind, part


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:<type>;base64,<data>`` URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    media, _, encoding = head.partition(";")
    if not sep or encoding != "base64" or not media:
        return None
    return media, data
