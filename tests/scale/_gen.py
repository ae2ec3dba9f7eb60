"""Deterministic workloads for the scale tests (no reference material needed)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

WORDS = [
    "penguin",
    "colony",
    "krill",
    "ice",
    "egg",
    "chick",
    "feather",
    "dive",
    "swim",
    "cold",
    "emperor",
    "adelie",
]


def request(index: int, *, custom_id: str | None = None, words: int = 12) -> dict[str, Any]:
    """One OpenAI batch input line; the prompt length varies with the index."""
    rng = random.Random(index)
    text = " ".join(rng.choice(WORDS) for _ in range(words + index % 7))
    return {
        "custom_id": custom_id if custom_id is not None else f"req-{index}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": text}],
            "max_tokens": 64,
        },
    }


def write_jsonl(path: Path, objects: Iterable[dict[str, Any]]) -> Path:
    with open(path, "wb") as fh:
        for obj in objects:
            fh.write(orjson.dumps(obj) + b"\n")
    return path


def write_requests(path: Path, count: int, **kwargs: Any) -> Path:
    return write_jsonl(path, (request(i, **kwargs) for i in range(count)))


def result(custom_id: str, *, ok: bool = True, code: str = "server_error") -> dict[str, Any]:
    """One OpenAI batch output line (success) or error-file line."""
    if not ok:
        return {
            "id": f"batch_req_{custom_id}",
            "custom_id": custom_id,
            "response": None,
            "error": {"code": code, "message": f"failed: {code}"},
        }
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": f"req_{custom_id}",
            "body": {
                "id": f"chatcmpl-{custom_id}",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": custom_id}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            },
        },
        "error": None,
    }


def shuffled(items: Sequence[str], seed: int = 3) -> list[str]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield orjson.loads(line)
