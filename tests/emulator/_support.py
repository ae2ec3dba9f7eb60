"""Helpers shared by the emulator tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

AUTH = {"Authorization": "Bearer test-key"}


def chat_line(
    custom_id: str,
    content: str = "Hello there",
    *,
    model: str = "gpt-4o-mini",
    url: str = "/v1/chat/completions",
) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": model, "messages": [{"role": "user", "content": content}]},
    }


def jsonl(lines: Sequence[Any]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def read_jsonl(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]
