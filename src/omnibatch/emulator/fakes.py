"""Deterministic fake model answers (OpenAI-compatible bodies).

The same request body always produces the same answer: the text and the vectors are
derived from a hash of the canonical JSON of the body. Token counts are plausible
numbers computed from word counts (one token per generated word; about 1.3 tokens per
prompt word plus a small per-message overhead).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import orjson

__all__ = [
    "ERROR_MARKER",
    "FakeAnswer",
    "answer_for",
    "canonical_json",
    "chat_completion_body",
    "completion_body",
    "embedding_body",
    "embedding_vector",
    "response_body",
    "short_hash",
    "stable_unit",
]

#: A request containing this string anywhere fails inside the batch (HTTP 400 line).
ERROR_MARKER = b"[[emulator:error]]"

_VOCAB = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basil",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "glade",
    "harbor",
    "island",
    "jasper",
    "knoll",
    "lagoon",
    "meadow",
    "nectar",
    "orchard",
    "pebble",
    "quartz",
    "river",
    "summit",
    "timber",
    "upland",
    "valley",
    "willow",
    "yarrow",
    "zephyr",
    "answer",
    "batch",
    "emulated",
    "result",
    "token",
    "model",
    "signal",
    "vector",
    "window",
)

AnswerKind = Literal["chat", "embedding", "completion", "response", "transcription", "unsupported"]


def canonical_json(value: Any) -> bytes:
    """Key-sorted compact JSON, the input of every hash here."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _stream(seed: bytes, size: int) -> bytes:
    return hashlib.shake_256(seed).digest(size)


def short_hash(*parts: str | bytes, size: int = 16) -> str:
    """A hex digest of ``parts`` (``size`` bytes, so ``2 * size`` hex characters)."""
    h = hashlib.blake2b(digest_size=size)
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    return h.hexdigest()


def stable_unit(*parts: str | bytes) -> float:
    """A number in ``[0, 1)`` derived from ``parts`` (for seeded per-request choices)."""
    return int(short_hash(*parts, size=8), 16) / float(1 << 64)


def _words(seed: bytes, minimum: int = 6, spread: int = 30) -> list[str]:
    data = _stream(seed, 1 + minimum + spread)
    count = minimum + data[0] % spread
    return [_VOCAB[b % len(_VOCAB)] for b in data[1 : 1 + count]]


def _sentence(words: list[str]) -> str:
    if not words:
        return ""
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _text_of(value: Any) -> str:
    """The text inside a message content / prompt / input value, however nested."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_text_of(v) for v in value)
    if isinstance(value, dict):
        for key in ("text", "content", "input_text"):
            if key in value:
                return _text_of(value[key])
    return ""


def _prompt_tokens(text: str) -> int:
    return math.ceil(len(text.split()) * 1.3)


@dataclass(frozen=True, slots=True)
class FakeAnswer:
    """What the fake model answers to one request body."""

    kind: AnswerKind
    prompt_tokens: int
    completion_tokens: int
    texts: tuple[str, ...] = ()
    finish_reasons: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _generate(seed: bytes, body: dict[str, Any], n: int) -> tuple[list[str], list[str], int]:
    limit = _max_tokens(body)
    texts, reasons, tokens = [], [], 0
    for i in range(n):
        words = _words(seed + i.to_bytes(4, "big"))
        reason = "stop"
        if limit is not None and len(words) > limit:
            words, reason = words[:limit], "length"
        texts.append(_sentence(words))
        reasons.append(reason)
        tokens += len(words)
    return texts, reasons, tokens


def answer_for(endpoint: str, body: dict[str, Any]) -> FakeAnswer:
    """The deterministic answer to ``body`` sent to ``endpoint`` (e.g. ``/v1/embeddings``)."""
    seed = canonical_json(body)
    endpoint = endpoint.rstrip("/")
    if not endpoint.startswith("/v1/"):  # Azure's "/chat/completions"
        endpoint = "/v1" + endpoint
    if endpoint in ("/v1/chat/completions", "/v1/fim/completions", "/v1/chat/ds-test"):
        messages = body.get("messages")
        if isinstance(messages, list):
            prompt = sum(_prompt_tokens(_text_of(m)) + 4 for m in messages) + 3
        else:
            prompt = _prompt_tokens(_text_of(body.get("prompt", ""))) + 3
        n = body.get("n")
        count = n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 16 else 1
        texts, reasons, completion = _generate(seed, body, count)
        return FakeAnswer("chat", prompt, completion, tuple(texts), tuple(reasons))
    if endpoint == "/v1/completions":
        prompt = _prompt_tokens(_text_of(body.get("prompt", ""))) + 1
        texts, reasons, completion = _generate(seed, body, 1)
        return FakeAnswer("completion", prompt, completion, tuple(texts), tuple(reasons))
    if endpoint == "/v1/responses":
        prompt = _prompt_tokens(_text_of(body.get("input", ""))) + 7
        texts, reasons, completion = _generate(seed, body, 1)
        return FakeAnswer("response", prompt, completion, tuple(texts), tuple(reasons))
    if endpoint == "/v1/embeddings":
        raw = body.get("input", "")
        items = raw if isinstance(raw, list) else [raw]
        inputs = tuple(_text_of(i) if not isinstance(i, int) else str(i) for i in items)
        prompt = sum(max(1, _prompt_tokens(i)) for i in inputs)
        return FakeAnswer("embedding", prompt, 0, inputs=inputs)
    if endpoint in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        texts, reasons, completion = _generate(seed, body, 1)
        return FakeAnswer("transcription", 0, completion, tuple(texts), tuple(reasons))
    return FakeAnswer("unsupported", 0, 0)


def embedding_vector(model: str, text: str, dimensions: int) -> list[float]:
    """A unit-length vector that depends only on ``model`` and ``text``."""
    data = _stream(canonical_json([model, text]), 4 * dimensions)
    raw = [
        int.from_bytes(data[4 * i : 4 * i + 4], "big") / 2_147_483_647.5 - 1.0
        for i in range(dimensions)
    ]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def _alnum(seed: str, size: int) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[b % 62] for b in _stream(seed.encode(), size))


def chat_completion_body(
    answer: FakeAnswer,
    *,
    model: str,
    created: int,
    ident: str,
    style: Literal["openai", "mistral"] = "openai",
) -> dict[str, Any]:
    """A ``chat.completion`` object. ``ident`` seeds the id (unique per request)."""
    usage = {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.total_tokens,
    }
    if style == "mistral":
        return {
            "id": short_hash("chatcmpl", ident),
            "object": "chat.completion",
            "model": model,
            "usage": usage,
            "created": created,
            "choices": [
                {
                    "index": i,
                    "finish_reason": reason,
                    "message": {"role": "assistant", "content": text, "tool_calls": None},
                }
                for i, (text, reason) in enumerate(
                    zip(answer.texts, answer.finish_reasons, strict=True)
                )
            ],
        }
    return {
        "id": "chatcmpl-" + _alnum("chatcmpl" + ident, 29),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": reason,
            }
            for i, (text, reason) in enumerate(
                zip(answer.texts, answer.finish_reasons, strict=True)
            )
        ],
        "usage": usage,
        "system_fingerprint": "fp_emulator",
    }


def completion_body(answer: FakeAnswer, *, model: str, created: int, ident: str) -> dict[str, Any]:
    """A legacy ``text_completion`` object (``/v1/completions``)."""
    return {
        "id": "cmpl-" + _alnum("cmpl" + ident, 29),
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "text": answer.texts[0],
                "index": 0,
                "logprobs": None,
                "finish_reason": answer.finish_reasons[0],
            }
        ],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.total_tokens,
        },
    }


def response_body(
    answer: FakeAnswer, *, model: str, created: int, ident: str, request: dict[str, Any]
) -> dict[str, Any]:
    """A ``response`` object (``/v1/responses``) with one output message."""
    incomplete = answer.finish_reasons[0] == "length"
    return {
        "id": "resp_" + short_hash("resp", ident),
        "object": "response",
        "created_at": created,
        "status": "incomplete" if incomplete else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_" + short_hash("msg", ident),
                "status": "incomplete" if incomplete else "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": answer.texts[0], "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "temperature": request.get("temperature", 1.0),
        "tool_choice": "auto",
        "tools": [],
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": answer.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": answer.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": answer.total_tokens,
        },
        "metadata": request.get("metadata") or {},
    }


def embedding_body(
    answer: FakeAnswer,
    *,
    model: str,
    dimensions: int,
    ident: str,
    style: Literal["openai", "mistral"] = "openai",
) -> dict[str, Any]:
    """An embeddings ``list`` object with one vector per input."""
    usage: dict[str, Any] = {
        "prompt_tokens": answer.prompt_tokens,
        "total_tokens": answer.prompt_tokens,
    }
    if style == "mistral":
        usage["completion_tokens"] = 0
        return {
            "id": short_hash("embd", ident),
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "embedding": embedding_vector(model, text, dimensions),
                    "index": i,
                }
                for i, text in enumerate(answer.inputs)
            ],
            "model": model,
            "usage": usage,
        }
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": embedding_vector(model, text, dimensions),
            }
            for i, text in enumerate(answer.inputs)
        ],
        "model": model,
        "usage": usage,
    }


def transcription_body(answer: FakeAnswer, *, ident: str) -> dict[str, Any]:
    """An audio transcription (or translation) as the ``json`` response format gives it."""
    return {"text": answer.texts[0], "x_groq": {"id": "req_" + short_hash("audio", ident)}}
