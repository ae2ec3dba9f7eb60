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
from typing import Any

from omnibatch.plugin import chat
from omnibatch.plugin.chat import Problem

__all__ = ["Problem", "chat_to_params"]

# Anthropic parameters that have no OpenAI spelling but are accepted as they are.
PASSTHROUGH = frozenset({"top_k", "thinking"})
_NATIVE_HINT = 'remove it, or send native Anthropic params with "url": "/v1/messages"'


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
        except chat.Invalid as exc:
            problems.append(exc.problem)
    try:
        system, messages = _messages(body.get("messages"))
    except chat.Invalid as exc:
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
        raise chat.fail(field, f"must be a positive integer (got {value!r})", "set it to e.g. 1024")
    return value


def _option(key: str, value: Any, params: dict[str, Any], body: Mapping[str, Any]) -> None:
    field = f"body.{key}"
    if key in ("messages",):
        return
    if key == "model":
        if not isinstance(value, str) or not value:
            raise chat.fail(field, "must be a model name string", 'e.g. "claude-sonnet-4-5"')
        params["model"] = value
    elif key in ("max_tokens", "max_completion_tokens"):
        if key == "max_tokens" and "max_completion_tokens" in body:
            return  # the newer OpenAI name wins, as in OpenAI's API
        params["max_tokens"] = _positive_int(
            "body.max_tokens" if key == "max_tokens" else field, value
        )
    elif key in ("temperature", "top_p"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise chat.fail(field, f"must be a number (got {value!r})")
        if key == "temperature" and not 0 <= value <= 1:
            raise chat.fail(field, f"Anthropic accepts 0..1 (got {value})", "scale it into 0..1")
        params[key] = value
    elif key == "stop":
        stops = chat.stop_sequences(field, value)
        if stops:
            params["stop_sequences"] = stops
    elif key == "stream":
        if value:
            raise chat.fail(field, "streaming is not available in batches", 'remove "stream"')
    elif key == "stream_options":
        return
    elif key == "n":
        if value != 1:
            raise chat.fail(
                field,
                f"Anthropic returns one answer per request (n={value!r})",
                "send n separate requests with their own custom_id",
            )
    elif key == "user":
        if not isinstance(value, str):
            raise chat.fail(field, "must be a string")
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
        raise chat.fail(
            field, f"the OpenAI parameter {key!r} has no Anthropic equivalent", _NATIVE_HINT
        )


def _tools(value: Any) -> list[dict[str, Any]]:
    tools = []
    for fn in chat.function_tools(value, _NATIVE_HINT):
        out: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            out["description"] = fn["description"]
        out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
        tools.append(out)
    return tools


_CHOICES = {"auto": "auto", "none": "none", "required": "any"}


def _tool_choice(value: Any) -> dict[str, Any]:
    mode, name = chat.tool_choice(value)
    if mode == "function":
        return {"type": "tool", "name": name}
    return {"type": _CHOICES[mode]}


def _part(part: Any, where: str) -> dict[str, Any]:
    kind, value = chat.read_part(part, where)
    if kind == "text":
        return {"type": "text", "text": value}
    if kind == "image_url":
        if not isinstance(value, str):
            raise chat.fail(where, "image_url needs a url")
        inline = chat.data_url(value)
        if inline:
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": inline[0], "data": inline[1]},
            }
        return {"type": "image", "source": {"type": "url", "url": value}}
    if kind == "file":
        inline = chat.data_url(value) if isinstance(value, str) else None
        if inline and inline[0] == "application/pdf":
            return {
                "type": "document",
                "source": {"type": "base64", "media_type": inline[0], "data": inline[1]},
            }
        raise chat.fail(where, "only PDF files given as data: URLs can be translated", _NATIVE_HINT)
    raise chat.fail(where, f"content part type {kind!r} has no Anthropic translation", _NATIVE_HINT)


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return chat.content_parts(content, where, _part)


def _text(content: Any, where: str) -> list[dict[str, Any]]:
    blocks = _content(content, where)
    if isinstance(blocks, str):
        return [{"type": "text", "text": blocks}]
    if any(b["type"] != "text" for b in blocks):
        raise chat.fail(where, "system messages can only hold text")
    return blocks


def _messages(value: Any) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for where, role, msg in chat.messages(value):
        if role in ("system", "developer"):
            system.extend(_text(msg.get("content"), f"{where}.content"))
        elif role == "user":
            out.append(
                {"role": "user", "content": _content(msg.get("content"), f"{where}.content")}
            )
        elif role == "assistant":
            out.append({"role": "assistant", "content": _assistant(msg, where)})
        else:  # tool
            chat.add_tool_answer(out, "content", _tool_result(msg, where), _is_tool_result)
    chat.require_turns(out)
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
            raise chat.fail(f"{where}.content", "an assistant message needs content or tool_calls")
        return _content(content, f"{where}.content")
    blocks: list[dict[str, Any]] = []
    if content:
        text = _content(content, f"{where}.content")
        blocks.extend([{"type": "text", "text": text}] if isinstance(text, str) else text)
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(call.get("id"), str):
            raise chat.fail(f"{where}.tool_calls[{j}]", "a tool call needs an id and a function")
        arguments = chat.call_arguments(fn, f"{where}.tool_calls[{j}]")
        blocks.append(
            {"type": "tool_use", "id": call["id"], "name": fn.get("name"), "input": arguments}
        )
    return blocks


def _is_tool_result(block: Any) -> bool:
    return bool(block.get("type") == "tool_result")


def _tool_result(msg: Mapping[str, Any], where: str) -> dict[str, Any]:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str):
        raise chat.fail(f"{where}.tool_call_id", "a tool message needs the tool_call_id it answers")
    return {
        "type": "tool_result",
        "tool_use_id": call_id,
        "content": _content(msg.get("content", ""), f"{where}.content"),
    }
