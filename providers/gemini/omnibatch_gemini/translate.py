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
from typing import Any

import orjson

from omnibatch.plugin import chat
from omnibatch.plugin.chat import Problem

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


def chat_to_request(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Translate one chat body; returns the request and the problems (the request is only
    meaningful when there are none)."""
    problems: list[Problem] = []
    config: dict[str, Any] = {}
    request: dict[str, Any] = {}
    for key, value in body.items():
        try:
            _option(key, value, body, request, config)
        except chat.Invalid as exc:
            problems.append(exc.problem)
    try:
        system, contents = _messages(body.get("messages"))
    except chat.Invalid as exc:
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
        raise chat.fail(field, f"must be a number (got {value!r})")
    return value


def _int(field: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise chat.fail(field, f"must be an integer >= {low} (got {value!r})")
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
        stops = chat.stop_sequences(field, value)
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
            raise chat.fail(field, "streaming is not available in batches", 'remove "stream"')
    elif key == "tools":
        request["tools"] = [{"functionDeclarations": _functions(value)}]
    elif key == "tool_choice":
        request["toolConfig"] = {"functionCallingConfig": _tool_choice(value)}
    elif key == "parallel_tool_calls":
        if value is False:
            raise chat.fail(field, "Gemini cannot forbid parallel function calls", _DROP_HINT)
    elif key in PASSTHROUGH:
        request[key] = value
    else:
        raise chat.fail(field, f"the OpenAI parameter {key!r} has no Gemini equivalent", _DROP_HINT)


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
    raise chat.fail(
        "body.response_format",
        f"cannot translate response_format {value!r}",
        'use {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {...}}}',
    )


def _functions(value: Any) -> list[dict[str, Any]]:
    out = []
    for fn in chat.function_tools(value, _DROP_HINT):
        decl: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        if fn.get("parameters"):
            decl["parametersJsonSchema"] = fn["parameters"]
        out.append(decl)
    return out


_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def _tool_choice(value: Any) -> dict[str, Any]:
    mode, name = chat.tool_choice(value)
    if mode == "function":
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    return {"mode": _MODES[mode]}


def _inline(url: str, where: str) -> dict[str, Any]:
    inline = chat.data_url(url)
    if inline:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    raise chat.fail(
        where,
        "Gemini batch requests need media inline, as a data: URL",
        "use data:<mime type>;base64,<data>",
    )


def _part(part: Any, where: str) -> dict[str, Any]:
    kind, value = chat.read_part(part, where)
    if kind == "text":
        return {"text": value}
    if kind == "image_url":
        return _inline(value if isinstance(value, str) else "", f"{where}.image_url")
    if kind == "file":
        return _inline(value if isinstance(value, str) else "", f"{where}.file")
    if kind == "input_audio":
        audio = value.get("input_audio")
        if isinstance(audio, Mapping) and isinstance(audio.get("data"), str):
            fmt = str(audio.get("format") or "wav")
            return {"inlineData": {"mimeType": f"audio/{fmt}", "data": audio["data"]}}
    raise chat.fail(where, f"content part type {kind!r} has no Gemini translation", _DROP_HINT)


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    return chat.content_parts(content, where, _part)


def _messages(value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for where, role, msg in chat.messages(value):
        if role in ("system", "developer"):
            parts = _parts(msg.get("content"), f"{where}.content")
            if any("text" not in p for p in parts):
                raise chat.fail(f"{where}.content", "system messages can only hold text")
            system.extend(parts)
        elif role == "user":
            contents.append(
                {"role": "user", "parts": _parts(msg.get("content"), f"{where}.content")}
            )
        elif role == "assistant":
            contents.append({"role": "model", "parts": _model_parts(msg, where, call_names)})
        else:  # tool
            part = _function_response(msg, where, call_names)
            chat.add_tool_answer(contents, "parts", part, _is_function_response)
    chat.require_turns(contents)
    return system, contents


def _model_parts(
    msg: Mapping[str, Any], where: str, call_names: dict[str, str]
) -> list[dict[str, Any]]:
    content = msg.get("content")
    calls = msg.get("tool_calls") or []
    if content is None and not calls:
        raise chat.fail(f"{where}.content", "an assistant message needs content or tool_calls")
    parts = _parts(content, f"{where}.content") if content else []
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise chat.fail(f"{where}.tool_calls[{j}]", "a tool call needs a function name")
        args = chat.call_arguments(fn, f"{where}.tool_calls[{j}]")
        call_part: dict[str, Any] = {"name": fn["name"], "args": args}
        if isinstance(call.get("id"), str):
            call_part["id"] = call["id"]
            call_names[call["id"]] = fn["name"]
        parts.append({"functionCall": call_part})
    return parts


def _is_function_response(part: Any) -> bool:
    return "functionResponse" in part


def _function_response(
    msg: Mapping[str, Any], where: str, call_names: Mapping[str, str]
) -> dict[str, Any]:
    call_id = msg.get("tool_call_id")
    name = call_names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise chat.fail(
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
