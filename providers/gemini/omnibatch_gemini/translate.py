"""OpenAI-style chat bodies -> Gemini ``GenerateContentRequest`` (pure functions, no I/O).

What moves where: ``system``/``developer`` messages -> ``systemInstruction``; ``user`` and
``assistant`` -> ``contents`` with roles ``user`` and ``model``; ``max_tokens``,
``temperature``, ``top_p``, ``top_k``, ``stop``, ``n``, ``seed``, the penalties,
``response_format`` and ``logprobs`` -> ``generationConfig``; function ``tools`` and
``tool_choice`` -> ``tools``/``toolConfig``; assistant ``tool_calls`` -> ``functionCall`` parts;
``tool`` messages -> ``functionResponse`` parts; ``data:`` URLs (images, files, audio) ->
``inlineData``. The model is not part of the request: Gemini takes it per batch, in the URL.
Anything else is reported as a problem instead of being dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Problem", "chat_to_request"]

_DROP_HINT = "remove it; Gemini batches have no equivalent"

# chat parameter -> generationConfig field, for plain numbers.
_NUMBERS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
# Native GenerateContentRequest fields accepted as they are.
PASSTHROUGH = frozenset({"safetySettings", "cachedContent"})


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


def chat_to_request(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Translate one chat body; returns the request and the problems (the request is only
    meaningful when there are none)."""
    problems: list[Problem] = []
    config: dict[str, Any] = {}
    request: dict[str, Any] = {}
    for key, value in body.items():
        try:
            _option(key, value, body, request, config)
        except _Invalid as exc:
            problems.append(exc.problem)
    try:
        system, contents = _messages(body.get("messages"))
    except _Invalid as exc:
        problems.append(exc.problem)
    else:
        request = {"contents": contents, **request}
        if system:
            request["systemInstruction"] = {"parts": system}
    if config:
        request["generationConfig"] = config
    return request, problems


def _number(field: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(field, f"must be a number (got {value!r})")
    return value


def _int(field: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(field, f"must be an integer >= {low} (got {value!r})")
    return value


def _option(
    key: str,
    value: Any,
    body: Mapping[str, Any],
    request: dict[str, Any],
    config: dict[str, Any],
) -> None:
    field = f"body.{key}"
    if key in ("messages", "model", "stream_options"):
        return
    if key in ("max_tokens", "max_completion_tokens"):
        if key == "max_tokens" and "max_completion_tokens" in body:
            return
        config["maxOutputTokens"] = _int(field, value)
    elif key in _NUMBERS:
        config[_NUMBERS[key]] = _number(field, value)
    elif key == "stop":
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _fail(field, "must be a string or a list of strings")
        if stops:
            config["stopSequences"] = stops
    elif key == "n":
        config["candidateCount"] = _int(field, value)
    elif key == "seed":
        config["seed"] = _int(field, value, low=-(2**31))
    elif key == "logprobs":
        if value:
            config["responseLogprobs"] = True
    elif key == "top_logprobs":
        config["logprobs"] = _int(field, value, low=0)
    elif key == "response_format":
        config.update(_response_format(value))
    elif key == "stream":
        if value:
            raise _fail(field, "streaming is not available in batches", 'remove "stream"')
    elif key == "tools":
        request["tools"] = [{"functionDeclarations": _functions(value)}]
    elif key == "tool_choice":
        request["toolConfig"] = {"functionCallingConfig": _tool_choice(value)}
    elif key == "parallel_tool_calls":
        if value is False:
            raise _fail(field, "Gemini cannot forbid parallel function calls", _DROP_HINT)
    elif key in PASSTHROUGH:
        request[key] = value
    else:
        raise _fail(field, f"the OpenAI parameter {key!r} has no Gemini equivalent", _DROP_HINT)


def _response_format(value: Any) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if isinstance(schema, Mapping):
            return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise _fail(
        "body.response_format",
        f"cannot translate response_format {value!r}",
        'use {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {...}}}',
    )


def _functions(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _fail("body.tools", "must be a list of tools")
    out = []
    for i, tool in enumerate(value):
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            not isinstance(tool, Mapping)
            or tool.get("type") != "function"
            or not isinstance(fn, Mapping)
            or not isinstance(fn.get("name"), str)
        ):
            raise _fail(
                f"body.tools[{i}]", "only function tools with a name can be translated", _DROP_HINT
            )
        decl: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        if fn.get("parameters"):
            decl["parametersJsonSchema"] = fn["parameters"]
        out.append(decl)
    return out


def _tool_choice(value: Any) -> dict[str, Any]:
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if isinstance(value, str) and value in modes:
        return {"mode": modes[value]}
    if isinstance(value, Mapping):
        fn = value.get("function")
        if value.get("type") == "function" and isinstance(fn, Mapping) and fn.get("name"):
            return {"mode": "ANY", "allowedFunctionNames": [fn["name"]]}
    raise _fail(
        "body.tool_choice",
        f"cannot translate tool_choice {value!r}",
        'use "auto", "none", "required" or {"type": "function", "function": {"name"}}',
    )


def _inline(url: str, where: str) -> dict[str, Any]:
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        media, _, encoding = head.partition(";")
        if sep and encoding == "base64" and media:
            return {"inlineData": {"mimeType": media, "data": data}}
    raise _fail(
        where,
        "Gemini batch requests need media inline, as a data: URL",
        "use data:<mime type>;base64,<data>",
    )


def _part(part: Any, where: str) -> dict[str, Any]:
    if isinstance(part, str):
        return {"text": part}
    if not isinstance(part, Mapping):
        raise _fail(where, "a content part must be an object")
    kind = part.get("type")
    if kind == "text":
        return {"text": str(part.get("text", ""))}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return _inline(url if isinstance(url, str) else "", f"{where}.image_url")
    if kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, Mapping) else None
        return _inline(data if isinstance(data, str) else "", f"{where}.file")
    if kind == "input_audio":
        audio = part.get("input_audio")
        if isinstance(audio, Mapping) and isinstance(audio.get("data"), str):
            fmt = str(audio.get("format") or "wav")
            return {"inlineData": {"mimeType": f"audio/{fmt}", "data": audio["data"]}}
    raise _fail(where, f"content part type {kind!r} has no Gemini translation", _DROP_HINT)


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        return [_part(p, f"{where}[{i}]") for i, p in enumerate(content)]
    raise _fail(where, "content must be a string or a list of parts")


def _messages(value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(value, list) or not value:
        raise _fail(
            "body.messages",
            "must be a non-empty list of messages",
            'add "messages": [{"role": "user", "content": "..."}]',
        )
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for i, msg in enumerate(value):
        where = f"body.messages[{i}]"
        if not isinstance(msg, Mapping):
            raise _fail(where, "a message must be an object")
        role = msg.get("role")
        if role in ("system", "developer"):
            parts = _parts(msg.get("content"), f"{where}.content")
            if any("text" not in p for p in parts):
                raise _fail(f"{where}.content", "system messages can only hold text")
            system.extend(parts)
        elif role == "user":
            contents.append(
                {"role": "user", "parts": _parts(msg.get("content"), f"{where}.content")}
            )
        elif role == "assistant":
            contents.append({"role": "model", "parts": _model_parts(msg, where, call_names)})
        elif role == "tool":
            part = _function_response(msg, where, call_names)
            last = contents[-1] if contents else None
            # Answers to one model turn's calls go together in the next user turn.
            if (
                last
                and last["role"] == "user"
                and all("functionResponse" in p for p in last["parts"])
            ):
                last["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise _fail(
                f"{where}.role",
                f"role {role!r} cannot be translated",
                "use system, developer, user, assistant or tool",
            )
    if not contents:
        raise _fail("body.messages", "needs at least one user message besides system messages")
    return system, contents


def _model_parts(
    msg: Mapping[str, Any], where: str, call_names: dict[str, str]
) -> list[dict[str, Any]]:
    content = msg.get("content")
    calls = msg.get("tool_calls") or []
    if content is None and not calls:
        raise _fail(f"{where}.content", "an assistant message needs content or tool_calls")
    parts = _parts(content, f"{where}.content") if content else []
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise _fail(f"{where}.tool_calls[{j}]", "a tool call needs a function name")
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise _fail(
                f"{where}.tool_calls[{j}].function.arguments",
                "arguments must be a JSON object string",
            ) from None
        call_part: dict[str, Any] = {"name": fn["name"], "args": args}
        if isinstance(call.get("id"), str):
            call_part["id"] = call["id"]
            call_names[call["id"]] = fn["name"]
        parts.append({"functionCall": call_part})
    return parts


def _function_response(
    msg: Mapping[str, Any], where: str, call_names: Mapping[str, str]
) -> dict[str, Any]:
    call_id = msg.get("tool_call_id")
    name = call_names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise _fail(
            f"{where}.tool_call_id",
            f"no earlier assistant tool call has id {call_id!r}; Gemini needs the "
            "function name of every answer",
            "answer a tool call made in this request",
        )
    content = msg.get("content", "")
    text = (
        content
        if isinstance(content, str)
        else "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        if isinstance(content, list)
        else ""
    )
    # functionResponse.response must be an object: use the tool's JSON object when it is one.
    try:
        parsed = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"id": call_id, "name": name, "response": response}}
