"""OpenAI-style chat bodies -> Anthropic Messages ``params`` (pure functions, no I/O).

What moves where: ``system``/``developer`` messages are joined, in order, into ``system``;
``max_tokens``/``max_completion_tokens`` -> ``max_tokens`` (required by Anthropic);
``stop`` -> ``stop_sequences``; ``user`` -> ``metadata.user_id``; function ``tools``,
``tool_choice`` and ``parallel_tool_calls`` -> Anthropic tools; assistant ``tool_calls`` ->
``tool_use`` blocks; ``tool`` messages -> ``tool_result`` blocks in a user turn; ``data:``
images and PDFs -> base64 ``image``/``document`` blocks, other image URLs -> ``url`` sources.
Anything else is reported as a problem instead of being dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Problem", "chat_to_params"]

# Anthropic parameters that have no OpenAI spelling but are accepted as they are.
PASSTHROUGH = frozenset({"top_k", "thinking"})
_NATIVE_HINT = 'remove it, or send native Anthropic params with "url": "/v1/messages"'


@dataclass(frozen=True)
class Problem:
    """Why a body cannot be translated: the field, what is wrong, how to fix it."""

    field: str
    message: str
    fix: str | None = None


class _Invalid(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _fail(field: str, message: str, fix: str | None = None) -> _Invalid:
    return _Invalid(Problem(field, message, fix))


def chat_to_params(
    body: Mapping[str, Any], default_max_tokens: int | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """Translate one chat body; returns the params and the problems (params are only
    meaningful when there are none)."""
    problems: list[Problem] = []
    params: dict[str, Any] = {}
    for key, value in body.items():
        try:
            _option(key, value, params, body)
        except _Invalid as exc:
            problems.append(exc.problem)
    try:
        system, messages = _messages(body.get("messages"))
    except _Invalid as exc:
        problems.append(exc.problem)
    else:
        if system:
            params["system"] = system
        params["messages"] = messages
    if "max_tokens" not in params and not any(p.field == "body.max_tokens" for p in problems):
        if default_max_tokens is None:
            problems.append(
                Problem(
                    "body.max_tokens",
                    "Anthropic requires max_tokens on every request",
                    'add "max_tokens": N to the body, or configure a default with the '
                    "anthropic option max_tokens",
                )
            )
        else:
            params["max_tokens"] = default_max_tokens
    return _ordered(params), problems


def _ordered(params: dict[str, Any]) -> dict[str, Any]:
    # The order the API reference lists them in: easier to read in part files.
    first = ("model", "max_tokens", "system", "messages")
    return {
        **{k: params[k] for k in first if k in params},
        **{k: v for k, v in params.items() if k not in first},
    }


def _positive_int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(field, f"must be a positive integer (got {value!r})", "set it to e.g. 1024")
    return value


def _option(key: str, value: Any, params: dict[str, Any], body: Mapping[str, Any]) -> None:
    field = f"body.{key}"
    if key in ("messages",):
        return
    if key == "model":
        if not isinstance(value, str) or not value:
            raise _fail(field, "must be a model name string", 'e.g. "claude-sonnet-4-5"')
        params["model"] = value
    elif key in ("max_tokens", "max_completion_tokens"):
        if key == "max_tokens" and "max_completion_tokens" in body:
            return  # the newer OpenAI name wins, as in OpenAI's API
        params["max_tokens"] = _positive_int(
            "body.max_tokens" if key == "max_tokens" else field, value
        )
    elif key in ("temperature", "top_p"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(field, f"must be a number (got {value!r})")
        if key == "temperature" and not 0 <= value <= 1:
            raise _fail(field, f"Anthropic accepts 0..1 (got {value})", "scale it into 0..1")
        params[key] = value
    elif key == "stop":
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _fail(field, "must be a string or a list of strings")
        if stops:
            params["stop_sequences"] = stops
    elif key == "stream":
        if value:
            raise _fail(field, "streaming is not available in batches", 'remove "stream"')
    elif key == "stream_options":
        return
    elif key == "n":
        if value != 1:
            raise _fail(
                field,
                f"Anthropic returns one answer per request (n={value!r})",
                "send n separate requests with their own custom_id",
            )
    elif key == "user":
        if not isinstance(value, str):
            raise _fail(field, "must be a string")
        params["metadata"] = {"user_id": value}
    elif key == "tools":
        params["tools"] = _tools(value)
    elif key == "tool_choice":
        params["tool_choice"] = {**params.get("tool_choice", {}), **_tool_choice(value)}
    elif key == "parallel_tool_calls":
        if value is False:
            choice = params.setdefault("tool_choice", {"type": "auto"})
            choice["disable_parallel_tool_use"] = True
    elif key in PASSTHROUGH:
        params[key] = value
    else:
        raise _fail(
            field, f"the OpenAI parameter {key!r} has no Anthropic equivalent", _NATIVE_HINT
        )


def _tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _fail("body.tools", "must be a list of tools")
    tools = []
    for i, tool in enumerate(value):
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            not isinstance(tool, Mapping)
            or tool.get("type") != "function"
            or not isinstance(fn, Mapping)
            or not isinstance(fn.get("name"), str)
        ):
            raise _fail(
                f"body.tools[{i}]",
                "only function tools with a name can be translated",
                _NATIVE_HINT,
            )
        out: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            out["description"] = fn["description"]
        out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
        tools.append(out)
    return tools


def _tool_choice(value: Any) -> dict[str, Any]:
    simple = {"auto": "auto", "none": "none", "required": "any"}
    if isinstance(value, str) and value in simple:
        return {"type": simple[value]}
    if isinstance(value, Mapping):
        fn = value.get("function")
        if value.get("type") == "function" and isinstance(fn, Mapping) and fn.get("name"):
            return {"type": "tool", "name": fn["name"]}
    raise _fail(
        "body.tool_choice",
        f"cannot translate tool_choice {value!r}",
        'use "auto", "none", "required" or {"type": "function", "function": {"name"}}',
    )


def _data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:<type>;base64,<data>`` URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    media, _, encoding = head.partition(";")
    if not sep or encoding != "base64" or not media:
        return None
    return media, data


def _part(part: Any, where: str) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping):
        raise _fail(where, "a content part must be an object")
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        if not isinstance(url, str):
            raise _fail(where, "image_url needs a url")
        inline = _data_url(url)
        if inline:
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": inline[0], "data": inline[1]},
            }
        return {"type": "image", "source": {"type": "url", "url": url}}
    if kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, Mapping) else None
        inline = _data_url(data) if isinstance(data, str) else None
        if inline and inline[0] == "application/pdf":
            return {
                "type": "document",
                "source": {"type": "base64", "media_type": inline[0], "data": inline[1]},
            }
        raise _fail(where, "only PDF files given as data: URLs can be translated", _NATIVE_HINT)
    raise _fail(where, f"content part type {kind!r} has no Anthropic translation", _NATIVE_HINT)


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return [_part(p, f"{where}[{i}]") for i, p in enumerate(content)]
    raise _fail(where, "content must be a string or a list of parts")


def _text(content: Any, where: str) -> list[dict[str, Any]]:
    blocks = _content(content, where)
    if isinstance(blocks, str):
        return [{"type": "text", "text": blocks}]
    if any(b["type"] != "text" for b in blocks):
        raise _fail(where, "system messages can only hold text")
    return blocks


def _messages(value: Any) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    if not isinstance(value, list) or not value:
        raise _fail(
            "body.messages",
            "must be a non-empty list of messages",
            'add "messages": [{"role": "user", "content": "..."}]',
        )
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(value):
        where = f"body.messages[{i}]"
        if not isinstance(msg, Mapping):
            raise _fail(where, "a message must be an object")
        role = msg.get("role")
        if role in ("system", "developer"):
            system.extend(_text(msg.get("content"), f"{where}.content"))
        elif role == "user":
            out.append(
                {"role": "user", "content": _content(msg.get("content"), f"{where}.content")}
            )
        elif role == "assistant":
            out.append({"role": "assistant", "content": _assistant(msg, where)})
        elif role == "tool":
            block = _tool_result(msg, where)
            last = out[-1] if out else None
            # Results of one assistant turn's tool calls go together in the next user turn.
            if (
                last
                and last["role"] == "user"
                and isinstance(last["content"], list)
                and all(b.get("type") == "tool_result" for b in last["content"])
            ):
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        else:
            raise _fail(
                f"{where}.role",
                f"role {role!r} cannot be translated",
                "use system, developer, user, assistant or tool",
            )
    if not out:
        raise _fail("body.messages", "needs at least one user message besides system messages")
    if not system:
        return None, out
    if all(b.keys() == {"type", "text"} for b in system):
        return "\n\n".join(b["text"] for b in system), out
    return system, out


def _assistant(msg: Mapping[str, Any], where: str) -> str | list[dict[str, Any]]:
    content = msg.get("content")
    calls = msg.get("tool_calls") or []
    if not calls:
        if content is None:
            raise _fail(f"{where}.content", "an assistant message needs content or tool_calls")
        return _content(content, f"{where}.content")
    blocks: list[dict[str, Any]] = []
    if content:
        text = _content(content, f"{where}.content")
        blocks.extend([{"type": "text", "text": text}] if isinstance(text, str) else text)
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(call.get("id"), str):
            raise _fail(f"{where}.tool_calls[{j}]", "a tool call needs an id and a function")
        try:
            arguments = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise _fail(
                f"{where}.tool_calls[{j}].function.arguments",
                "arguments must be a JSON object string",
            ) from None
        blocks.append(
            {"type": "tool_use", "id": call["id"], "name": fn.get("name"), "input": arguments}
        )
    return blocks


def _tool_result(msg: Mapping[str, Any], where: str) -> dict[str, Any]:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str):
        raise _fail(f"{where}.tool_call_id", "a tool message needs the tool_call_id it answers")
    return {
        "type": "tool_result",
        "tool_use_id": call_id,
        "content": _content(msg.get("content", ""), f"{where}.content"),
    }
