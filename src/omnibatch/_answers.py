"""One result shape on every provider: the answer read out of each provider's response body.

Every OUTPUT line and every :class:`~omnibatch.BatchResult` carries the same fields whatever the
provider answered with: ``text`` (or ``embedding``), ``finish_reason`` (one of
:data:`FINISH_REASONS`, the provider's own word in ``provider_finish_reason``), ``tool_calls``
in OpenAI's shape, ``usage`` (input, output, cached input and reasoning tokens), ``model``,
``error`` (``kind``, ``message``, ``code``) and ``response``, the body untouched.

A provider says how its bodies read through one hook, :meth:`ProviderAdapter.read_answer
<omnibatch.adapter.ProviderAdapter.read_answer>`: the default reads OpenAI's shapes (chat
completions, text completions, embeddings lists, Responses), which the OpenAI-compatible
providers answer with; :func:`messages_answer` reads Anthropic's messages and
:func:`candidates_answer` Gemini's ``GenerateContentResponse``. The readers are plain dict work:
the merge calls one per result line.

:func:`openai_line` turns a normalized line into a line of OpenAI's batch output file, with a
``chat.completion`` (or embeddings ``list``) body built from the normalized fields, so code that
reads OpenAI batch output runs unchanged on any provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import orjson

__all__ = [
    "ERROR_KINDS",
    "FINISH_REASONS",
    "OUTPUT_FORMATS",
    "Answer",
    "AnswerReader",
    "candidates_answer",
    "chat_answer",
    "error_fields",
    "line_normalizer",
    "messages_answer",
    "normalize_chat_line",
    "normalize_line",
    "openai_line",
]

Answer: TypeAlias = dict[str, Any]
"""``text`` or ``embedding``, ``finish_reason``, ``provider_finish_reason``, ``tool_calls``,
``usage`` and ``model`` of one response body."""
AnswerReader: TypeAlias = Callable[[Mapping[str, Any]], Answer]

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "error", "other")
ERROR_KINDS = (
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "rate_limit",
    "overloaded",
    "timeout",
    "server_error",
    "content_filter",
    "expired",
    "cancelled",
    "missing_result",
    "other",
)
OUTPUT_FORMATS = ("omnibatch", "openai")
"""``omnibatch``: the normalized lines; ``openai``: OpenAI's batch output file."""

_NO_ANSWER: Answer = {
    "text": None,
    "finish_reason": None,
    "provider_finish_reason": None,
    "tool_calls": None,
    "usage": None,
    "model": None,
}

# The provider's word -> ours. One table for every body shape: the words do not collide.
_FINISH = {
    # OpenAI chat / completions, and the providers that copy them (Mistral adds two)
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "model_length": "length",
    "error": "error",
    # Anthropic messages
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "other",
    "model_context_window_exceeded": "length",
    # Gemini candidates
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "other",
    "OTHER": "other",
    "FINISH_REASON_UNSPECIFIED": "other",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    # OpenAI Responses (status, or incomplete_details.reason)
    "completed": "stop",
    "max_output_tokens": "length",
    "failed": "error",
}


def _finish(raw: Any, has_calls: bool) -> str | None:
    if raw is None:
        return "tool_calls" if has_calls else None
    reason = _FINISH.get(raw, "other") if raw.__class__ is str else "other"
    # Gemini ends a turn that calls functions with STOP.
    return "tool_calls" if has_calls and reason == "stop" else reason


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if value.__class__ is int:
        return value
    try:
        return int(value)  # Gemini sends some counts as strings
    except (TypeError, ValueError):
        return None


def _joined(parts: Any) -> str | None:
    if parts.__class__ is not list:
        return None
    texts = [
        p["text"]
        for p in parts
        if p.__class__ is dict and p.get("text").__class__ is str and not p.get("thought")
    ]
    return "".join(texts) if texts else None


def _arguments(value: Any) -> str:
    """Tool-call arguments as OpenAI carries them: a JSON string."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value if value is not None else {}).decode()


def _call(call_id: Any, name: Any, arguments: Any, index: int) -> dict[str, Any]:
    return {
        "id": call_id if isinstance(call_id, str) and call_id else f"call_{index}",
        "type": "function",
        "function": {"name": str(name), "arguments": _arguments(arguments)},
    }


# --- OpenAI's shapes (the default) --------------------------------------------------------------


def _openai_usage(usage: Any) -> dict[str, Any] | None:
    if usage.__class__ is not dict:
        return None
    prompt = usage.get("prompt_tokens")
    output = usage.get("completion_tokens")
    if prompt.__class__ is int and output.__class__ is int:  # chat completions: the usual case
        details = usage.get("prompt_tokens_details")
        out_details = usage.get("completion_tokens_details")
        if details is None and out_details is None:
            return {
                "input_tokens": prompt,
                "output_tokens": output,
                "cached_input_tokens": None,
                "reasoning_tokens": None,
            }
    return _usage_slow(usage)


def _usage_slow(usage: dict[str, Any]) -> dict[str, Any]:
    prompt = usage.get("prompt_tokens")
    if prompt is None:
        prompt = usage.get("input_tokens")
    output = usage.get("completion_tokens")
    if output is None:
        output = usage.get("output_tokens")
    if output is None and prompt is not None and "total_tokens" in usage:
        output = (_int(usage["total_tokens"]) or 0) - (_int(prompt) or 0)  # embeddings
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    out_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    return {
        "input_tokens": _int(prompt),
        "output_tokens": _int(output),
        "cached_input_tokens": _int(details.get("cached_tokens"))
        if details.__class__ is dict
        else None,
        "reasoning_tokens": _int(out_details.get("reasoning_tokens"))
        if out_details.__class__ is dict
        else None,
    }


def _model(body: Mapping[str, Any], key: str = "model") -> str | None:
    model = body.get(key)
    return model if model.__class__ is str else None


def chat_answer(body: Mapping[str, Any]) -> Answer:
    """The answer of an OpenAI-shaped body: ``chat.completion`` (and Mistral's, Groq's ...),
    ``text_completion``, an embeddings ``list``, or a Responses ``response``."""
    choices = body.get("choices")
    # The usual case first, in as few steps as it takes: one choice, a message with string
    # content and no tool calls (the merge reads a million of these).
    if choices.__class__ is list and len(choices) == 1:
        first = choices[0]
        message = first.get("message") if first.__class__ is dict else None
        if message.__class__ is dict and "tool_calls" not in message:
            content = message.get("content")
            if content.__class__ is str and "function_call" not in message:
                raw = first.get("finish_reason")
                model = body.get("model")
                return {
                    "text": content,
                    "finish_reason": _FINISH.get(raw, "other") if raw.__class__ is str else None,
                    "provider_finish_reason": raw,
                    "tool_calls": [],
                    "usage": _openai_usage(body.get("usage")),
                    "model": model if model.__class__ is str else None,
                }
    if choices.__class__ is list:
        first = choices[0] if choices and choices[0].__class__ is dict else {}
        message = first.get("message")
        calls: Any = []
        if message.__class__ is dict:
            content = message.get("content")
            text = content if content.__class__ is str else _joined(content)
            listed = message.get("tool_calls")
            if listed.__class__ is list:
                calls = listed
            elif (legacy := message.get("function_call")).__class__ is dict:
                calls = [_call(None, legacy.get("name"), legacy.get("arguments"), 0)]
        else:
            text = first.get("text")
            text = text if text.__class__ is str else None
        raw = first.get("finish_reason")
        return {
            "text": text,
            "finish_reason": _finish(raw, bool(calls)),
            "provider_finish_reason": raw,
            "tool_calls": calls,
            "usage": _openai_usage(body.get("usage")),
            "model": _model(body),
        }
    data = body.get("data")
    if data.__class__ is list and body.get("object") == "list":
        vectors = [item.get("embedding") for item in data if item.__class__ is dict]
        return {
            "embedding": vectors[0] if len(vectors) == 1 else vectors,
            "finish_reason": None,
            "provider_finish_reason": None,
            "tool_calls": None,
            "usage": _openai_usage(body.get("usage")),
            "model": _model(body),
        }
    output = body.get("output")
    if output.__class__ is list:
        return _responses_answer(body, output)
    return {**_NO_ANSWER, "usage": _openai_usage(body.get("usage")), "model": _model(body)}


def _responses_answer(body: Mapping[str, Any], output: list[Any]) -> Answer:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in output:
        if item.__class__ is not dict:
            continue
        if item.get("type") == "function_call":
            calls.append(
                _call(item.get("call_id"), item.get("name"), item.get("arguments"), len(calls))
            )
        elif (text := _joined(item.get("content"))) is not None:
            texts.append(text)
    status = body.get("status")
    details = body.get("incomplete_details")
    raw = details.get("reason") if details.__class__ is dict and details.get("reason") else status
    return {
        "text": "".join(texts) if texts else None,
        "finish_reason": _finish(raw, bool(calls)),
        "provider_finish_reason": raw,
        "tool_calls": calls,
        "usage": _openai_usage(body.get("usage")),
        "model": _model(body),
    }


# --- Anthropic messages -------------------------------------------------------------------------


def messages_answer(body: Mapping[str, Any]) -> Answer:
    """The answer of an Anthropic ``message``: text blocks joined, ``tool_use`` blocks as tool
    calls; ``input_tokens`` counts every prompt token (Anthropic's excludes cache reads and
    writes), ``cached_input_tokens`` the cache reads."""
    content = body.get("content")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    if content.__class__ is list:
        for block in content:
            if block.__class__ is not dict:
                continue
            kind = block.get("type")
            if kind == "text" and block.get("text").__class__ is str:
                texts.append(block["text"])
            elif kind == "tool_use":
                calls.append(_call(block.get("id"), block.get("name"), block.get("input"), 0))
    usage = body.get("usage")
    normalized = None
    if usage.__class__ is dict:
        read = _int(usage.get("cache_read_input_tokens"))
        written = _int(usage.get("cache_creation_input_tokens")) or 0
        normalized = {
            "input_tokens": (_int(usage.get("input_tokens")) or 0) + (read or 0) + written,
            "output_tokens": _int(usage.get("output_tokens")),
            "cached_input_tokens": read,
            "reasoning_tokens": None,  # counted in output_tokens, not reported apart
        }
    raw = body.get("stop_reason")
    return {
        "text": "".join(texts) if texts else None,
        "finish_reason": _finish(raw, bool(calls)),
        "provider_finish_reason": raw,
        "tool_calls": calls,
        "usage": normalized,
        "model": _model(body),
    }


# --- Gemini GenerateContentResponse -------------------------------------------------------------


def candidates_answer(body: Mapping[str, Any]) -> Answer:
    """The answer of a Gemini ``GenerateContentResponse`` (or an embedding response): the first
    candidate's text parts (thoughts left out), its ``functionCall`` parts as tool calls;
    output tokens count the thoughts, as OpenAI counts reasoning in ``completion_tokens``."""
    meta = body.get("usageMetadata")
    usage = None
    if meta.__class__ is dict:
        thoughts = _int(meta.get("thoughtsTokenCount"))
        usage = {
            "input_tokens": _int(meta.get("promptTokenCount")),
            "output_tokens": (_int(meta.get("candidatesTokenCount")) or 0) + (thoughts or 0),
            "cached_input_tokens": _int(meta.get("cachedContentTokenCount")),
            "reasoning_tokens": thoughts,
        }
    model = _model(body, "modelVersion")
    embedding = body.get("embedding")
    if embedding.__class__ is dict:
        tokens = _int(body.get("tokenCount"))
        return {
            "embedding": embedding.get("values"),
            "finish_reason": None,
            "provider_finish_reason": None,
            "tool_calls": None,
            "usage": usage
            or (
                None
                if tokens is None
                else {
                    "input_tokens": tokens,
                    "output_tokens": 0,
                    "cached_input_tokens": None,
                    "reasoning_tokens": None,
                }
            ),
            "model": model,
        }
    candidates = body.get("candidates")
    first = candidates[0] if candidates.__class__ is list and candidates else None
    if first.__class__ is not dict:
        feedback = body.get("promptFeedback")
        blocked = feedback.get("blockReason") if feedback.__class__ is dict else None
        return {
            "text": None,
            "finish_reason": "content_filter" if blocked else None,
            "provider_finish_reason": blocked,
            "tool_calls": [],
            "usage": usage,
            "model": model,
        }
    content = first.get("content")
    parts = content.get("parts") if content.__class__ is dict else None
    calls: list[dict[str, Any]] = []
    if parts.__class__ is list:
        for part in parts:
            if part.__class__ is dict and (call := part.get("functionCall")).__class__ is dict:
                calls.append(_call(call.get("id"), call.get("name"), call.get("args"), len(calls)))
    raw = first.get("finishReason")
    return {
        "text": _joined(parts),
        "finish_reason": _finish(raw, bool(calls)),
        "provider_finish_reason": raw,
        "tool_calls": calls,
        "usage": usage,
        "model": model,
    }


# --- errors -------------------------------------------------------------------------------------

# Words in a provider's error code or type -> our kind, tried in order.
_KIND_WORDS = (
    ("missing_result", "missing_result"),
    ("content_filter", "content_filter"),
    ("safety", "content_filter"),
    ("rate", "rate_limit"),
    ("resource_exhausted", "rate_limit"),
    ("quota", "rate_limit"),
    ("auth", "authentication"),
    ("permission", "permission"),
    ("forbidden", "permission"),
    ("not_found", "not_found"),
    ("overloaded", "overloaded"),
    ("unavailable", "overloaded"),
    ("timeout", "timeout"),
    ("deadline", "timeout"),
    ("invalid", "invalid_request"),
    ("bad_request", "invalid_request"),
    ("validation", "invalid_request"),
    ("failed_precondition", "invalid_request"),
    ("too_large", "invalid_request"),
    ("server", "server_error"),
    ("internal", "server_error"),
    ("api_error", "server_error"),
    ("expired", "expired"),
    ("cancel", "cancelled"),
)
_KIND_HTTP = {
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    408: "timeout",
    413: "invalid_request",
    422: "invalid_request",
    429: "rate_limit",
    500: "server_error",
    502: "server_error",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}
# Gemini's per-request errors carry google.rpc codes (always below 100, never HTTP statuses).
_KIND_RPC = {
    1: "cancelled",
    3: "invalid_request",
    4: "timeout",
    5: "not_found",
    7: "permission",
    8: "rate_limit",
    9: "invalid_request",
    11: "invalid_request",
    13: "server_error",
    14: "overloaded",
    16: "authentication",
}
_kinds: dict[tuple[Any, Any, Any], str] = {}


def _kind(status: Any, code: Any, type_: Any) -> str:
    if status == "expired":
        return "expired"
    if status == "cancelled":
        return "cancelled"
    key = (status, code, type_)
    kind = _kinds.get(key)
    if kind is None:
        words = f"{code or ''} {type_ or ''}".lower()
        kind = next((k for word, k in _KIND_WORDS if word in words), "")
        if not kind:
            number = words.strip().removeprefix("http_")
            value = int(number) if number.isdigit() else -1
            kind = (_KIND_HTTP if value >= 100 else _KIND_RPC).get(value, "other")
        if len(_kinds) < 4096:
            _kinds[key] = kind
    return kind


def error_fields(status: str, error: Any, body: Any = None) -> dict[str, Any]:
    """A line's error as every provider's carries it: ``kind`` (one of :data:`ERROR_KINDS`),
    ``message`` and ``code`` (the provider's; where the line has none, the error body's code
    or type, else the kind). ``body`` is the error response's body, when there is one."""
    if error.__class__ is not dict:
        error = {"message": str(error)}
    code = error.get("code")
    type_ = error.get("type")
    kind = error.get("kind") or _kind(status, code, type_)
    if code is None or kind == "other":
        detail = body.get("error", body) if body.__class__ is dict else None
        if detail.__class__ is dict:
            hint = detail.get("code") or detail.get("type") or detail.get("status")
            if kind == "other" and hint is not None:
                kind = _kind(status, hint, None)
            code = code if code is not None else hint
    return {
        "kind": kind,
        "message": str(error.get("message") or code or "error"),
        "code": kind if code is None else code if code.__class__ is str else str(code),
    }


# --- lines --------------------------------------------------------------------------------------


def normalize_line(line: Mapping[str, Any], read: AnswerReader) -> dict[str, Any]:
    """The normalized OUTPUT line of an adapter's line (``custom_id``, ``status``, and
    ``response`` and/or ``error``): the same keys on every provider, in one order."""
    status = line["status"]
    body = line.get("response")
    if body.__class__ is not dict:
        body = None
    if status == "succeeded":
        answer = read(body) if body is not None else _NO_ANSWER
        return {
            "custom_id": line["custom_id"],
            "status": status,
            **answer,
            "error": None,
            "response": body,
        }
    return {
        "custom_id": line["custom_id"],
        "status": status,
        **_NO_ANSWER,
        "error": error_fields(status, line.get("error") or "unknown", body),
        "response": body,
    }


def normalize_chat_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """``normalize_line(line, chat_answer)``, with the usual success (one choice, a message of
    string content without tool calls, integer token counts) built in one step: the merge's
    path for every provider that keeps the default reader. The same output (tested)."""
    if line["status"] == "succeeded":
        body: Any = line.get("response")
        choices = body.get("choices") if body.__class__ is dict else None
        if choices.__class__ is list and len(choices) == 1:
            first = choices[0]
            message = first.get("message") if first.__class__ is dict else None
            if (
                message.__class__ is dict
                and "tool_calls" not in message
                and "function_call" not in message
            ):
                content = message.get("content")
                usage = body.get("usage")
                if content.__class__ is str and usage.__class__ is dict:
                    prompt = usage.get("prompt_tokens")
                    output = usage.get("completion_tokens")
                    if prompt.__class__ is int and output.__class__ is int:
                        details = usage.get("prompt_tokens_details")
                        cached = details.get("cached_tokens") if details.__class__ is dict else None
                        details = usage.get("completion_tokens_details")
                        reasoning = (
                            details.get("reasoning_tokens") if details.__class__ is dict else None
                        )
                        if (cached is None or cached.__class__ is int) and (
                            reasoning is None or reasoning.__class__ is int
                        ):
                            raw = first.get("finish_reason")
                            model = body.get("model")
                            return {
                                "custom_id": line["custom_id"],
                                "status": "succeeded",
                                "text": content,
                                "finish_reason": _FINISH.get(raw, "other")
                                if raw.__class__ is str
                                else None,
                                "provider_finish_reason": raw,
                                "tool_calls": [],
                                "usage": {
                                    "input_tokens": prompt,
                                    "output_tokens": output,
                                    "cached_input_tokens": cached,
                                    "reasoning_tokens": reasoning,
                                },
                                "model": model if model.__class__ is str else None,
                                "error": None,
                                "response": body,
                            }
    return normalize_line(line, chat_answer)


def line_normalizer(read: AnswerReader) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """The function that normalizes an adapter's lines read by ``read`` (its ``read_answer``):
    :func:`normalize_chat_line` for the default reader."""
    if getattr(read, "__func__", None) is _default_reader:
        return normalize_chat_line
    return lambda line: normalize_line(line, read)


_default_reader: Any = None  # ProviderAdapter.read_answer, set by omnibatch.adapter


_OPENAI_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}
_OPENAI_CODES = {"expired": "batch_expired", "cancelled": "batch_cancelled"}
_OPENAI_HTTP = {
    "invalid_request": 400,
    "authentication": 401,
    "permission": 403,
    "not_found": 404,
    "rate_limit": 429,
    "timeout": 408,
    "content_filter": 400,
    "overloaded": 503,
    "server_error": 500,
}


def _openai_usage_body(usage: Any, embedding: bool) -> dict[str, Any]:
    usage = usage or {}
    prompt = usage.get("input_tokens") or 0
    output = usage.get("output_tokens") or 0
    if embedding:
        return {"prompt_tokens": prompt, "total_tokens": prompt + output}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": usage.get("cached_input_tokens") or 0},
        "completion_tokens_details": {"reasoning_tokens": usage.get("reasoning_tokens") or 0},
    }


def _openai_body(line: Mapping[str, Any], created: int) -> dict[str, Any]:
    body = line.get("response")
    kind = body.get("object") if body.__class__ is dict else None
    model = line.get("model") or ""
    if "embedding" in line:
        if kind == "list":
            return body  # type: ignore[return-value]
        vector = line["embedding"]
        vectors = vector if vector and isinstance(vector[0], list) else [vector]
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": values}
                for index, values in enumerate(vectors)
            ],
            "model": model,
            "usage": _openai_usage_body(line.get("usage"), True),
        }
    if kind in ("chat.completion", "text_completion", "response"):
        return body  # type: ignore[return-value]  # already OpenAI's own shape
    reason = line.get("finish_reason")
    message: dict[str, Any] = {"role": "assistant", "content": line.get("text"), "refusal": None}
    if line.get("tool_calls"):
        message["tool_calls"] = line["tool_calls"]
    return {
        "id": f"chatcmpl-{line['custom_id']}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                # OpenAI has no word for "other"/"error": its closest is stop.
                "finish_reason": "content_filter"
                if reason == "content_filter"
                else _OPENAI_FINISH.get(reason or "", "stop"),
                "logprobs": None,
            }
        ],
        "usage": _openai_usage_body(line.get("usage"), False),
    }


def openai_line(line: Mapping[str, Any], created: int) -> dict[str, Any]:
    """A normalized line as a line of OpenAI's batch output file: ``id``, ``custom_id``,
    ``response`` (``status_code``, ``request_id``, ``body``) and ``error``; an answer that is not
    in OpenAI's shape becomes a ``chat.completion`` (``created`` is its timestamp)."""
    custom_id = line["custom_id"]
    out: dict[str, Any] = {"id": f"batch_req_{custom_id}", "custom_id": custom_id}
    if line["status"] == "succeeded":
        out["response"] = {
            "status_code": 200,
            "request_id": None,
            "body": _openai_body(line, created),
        }
        out["error"] = None
        return out
    error = line.get("error") or {}
    kind = error.get("kind")
    code = _OPENAI_CODES.get(line["status"]) or error.get("code") or kind
    status_code = _OPENAI_HTTP.get(kind or "")
    if status_code is None or line["status"] != "errored":
        # As OpenAI writes a request that never ran (or failed without an HTTP answer).
        out["response"] = None
        out["error"] = {"code": code, "message": error.get("message")}
        return out
    # As OpenAI writes a request its endpoint refused: the HTTP answer, and no line error.
    body = line.get("response")
    out["response"] = {
        "status_code": status_code,
        "request_id": None,
        "body": body
        if body is not None and "error" in body
        else {
            "error": {"message": error.get("message"), "type": kind, "param": None, "code": code}
        },
    }
    out["error"] = None
    return out
