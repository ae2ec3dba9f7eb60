"""What a job will cost, before it is sent: ``omnibatch estimate``.

One streaming pass over the input (memory bounded by the number of distinct models, not of
lines) counts the requests, estimates their input tokens, bounds their output by ``max_tokens``
/ ``max_completion_tokens``, and prices both at the provider's batch and synchronous rates from
genai-prices' bundled data, after the model map and ``--model`` are applied as ``run`` would.

Input tokens are estimated without a tokenizer (nothing is downloaded): a text's characters
divided by :data:`CHARS_PER_TOKEN`, plus :data:`MESSAGE_OVERHEAD` tokens per message and
:data:`REQUEST_OVERHEAD` per request (the role and framing tokens chat templates add), and
:data:`IMAGE_TOKENS` per image. For English prose this lands within about ±25 % of the
tokenizers' counts; code, numbers and non-Latin scripts take more tokens per character, so
the estimate can be low by up to 2-3x there. Tool definitions and ``response_format`` schemas
are counted as their JSON text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from omnibatch._prices import UsageTotals, model_cost, price_provider
from omnibatch.adapter import ProviderAdapter
from omnibatch.pipeline import model_map_of

__all__ = [
    "CHARS_PER_TOKEN",
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD",
    "REQUEST_OVERHEAD",
    "Estimate",
    "estimate_input",
    "estimate_tokens",
]

CHARS_PER_TOKEN = 4.0
MESSAGE_OVERHEAD = 4
REQUEST_OVERHEAD = 3
IMAGE_TOKENS = 765  # a 1024x1024 image at OpenAI's high detail; providers differ
ERROR_NOTE = (
    "input tokens estimated as characters / 4 plus 4 per message: about ±25 % for English "
    "prose, up to 2-3x low for code, numbers and non-Latin scripts; output bounded by "
    "max_tokens (requests without it have no bound)"
)


def _text_chars(content: Any) -> tuple[int, int]:
    """Characters of text and the number of images in a message's content."""
    if isinstance(content, str):
        return len(content), 0
    chars = images = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if isinstance(part.get("text"), str):
                chars += len(part["text"])
            elif part.get("type") in ("image_url", "input_image", "image"):
                images += 1
    return chars, images


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """The estimated input tokens of one request body (see the module's method)."""
    chars = 0
    images = 0
    messages = body.get("messages")
    count = 0
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                count += 1
                c, i = _text_chars(message.get("content"))
                chars += c
                images += i
    for key in ("input", "prompt", "instructions"):  # embeddings, completions, Responses
        value = body.get(key)
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, list):
            for item in value:
                c, i = _text_chars(item if isinstance(item, str) else item.get("content"))
                chars += c
                images += i
    for key in ("tools", "response_format"):
        if body.get(key):
            chars += len(orjson.dumps(body[key]))
    tokens = -(-chars // CHARS_PER_TOKEN) if chars else 0
    return int(tokens) + MESSAGE_OVERHEAD * count + REQUEST_OVERHEAD + IMAGE_TOKENS * images


@dataclass
class _ModelTotals:
    requests: int = 0
    input_tokens: int = 0
    output_bound: int = 0
    unbounded: int = 0
    low: UsageTotals = field(default_factory=UsageTotals)
    """Every request's input, no output: the cheapest outcome."""
    high: UsageTotals = field(default_factory=UsageTotals)
    """Every request's input and its whole output bound: the dearest."""


@dataclass
class Estimate:
    """What ``omnibatch estimate`` reports. Costs are ``(low, high)`` in USD: low with no
    output at all, high with every request writing its ``max_tokens``; None where the price
    data lacks a model or a request has no output bound (``high`` only)."""

    provider: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens_max: int | None = 0
    unbounded_requests: int = 0
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_cost_usd: tuple[float | None, float | None] = (None, None)
    sync_cost_usd: tuple[float | None, float | None] = (None, None)
    unpriced_models: list[str] = field(default_factory=list)
    method: str = ERROR_NOTE

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "requests": self.requests,
            "input_tokens_estimate": self.input_tokens,
            "output_tokens_max": self.output_tokens_max,
            "unbounded_requests": self.unbounded_requests,
            "models": self.models,
            "batch_cost_usd": {"low": self.batch_cost_usd[0], "high": self.batch_cost_usd[1]},
            "sync_cost_usd": {"low": self.sync_cost_usd[0], "high": self.sync_cost_usd[1]},
            "unpriced_models": self.unpriced_models,
            "method": self.method,
        }


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, "rb", buffering=1 << 20) as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                try:
                    yield number, orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue  # `omnibatch validate` reports it; an estimate counts what it can


def estimate_input(
    path: str | Path, adapter: ProviderAdapter, *, model: str | None = None
) -> Estimate:
    """Estimate the requests, tokens and cost of the input at ``path`` on ``adapter``'s
    provider (its model map applied; ``model`` replaces every request's model)."""
    model_map = model_map_of(adapter) or {}
    totals: dict[str, _ModelTotals] = {}
    for _, line in _lines(Path(path)):
        body = line.get("body") if isinstance(line, Mapping) else None
        if not isinstance(body, Mapping):
            continue
        name = model or body.get("model")
        name = model_map.get(name, name) if isinstance(name, str) else ""
        entry = totals.get(name)
        if entry is None:
            entry = totals[name] = _ModelTotals()
        tokens = estimate_tokens(body)
        entry.requests += 1
        entry.input_tokens += tokens
        bound = body.get("max_completion_tokens", body.get("max_tokens"))
        if not isinstance(bound, int) or isinstance(bound, bool):
            bound = 0
            if not str(line.get("url", "")).endswith("/embeddings"):
                entry.unbounded += 1
        entry.output_bound += bound
        entry.low.add({"input_tokens": tokens, "output_tokens": 0})
        entry.high.add({"input_tokens": tokens, "output_tokens": bound})
    return _priced(adapter, totals)


def _priced(adapter: ProviderAdapter, totals: Mapping[str, _ModelTotals]) -> Estimate:
    provider_id = price_provider(adapter)
    result = Estimate(provider=adapter.name)
    sums: dict[str, list[Decimal | None]] = {"batch": [Decimal(0)] * 2, "sync": [Decimal(0)] * 2}
    for name, entry in sorted(totals.items()):
        result.requests += entry.requests
        result.input_tokens += entry.input_tokens
        result.unbounded_requests += entry.unbounded
        result.models[name or "(none)"] = {
            "requests": entry.requests,
            "input_tokens_estimate": entry.input_tokens,
            "output_tokens_max": None if entry.unbounded else entry.output_bound,
        }
        for kind, batch in (("batch", True), ("sync", False)):
            low = model_cost(provider_id, name, entry.low, batch=batch) if name else None
            high = (
                None
                if entry.unbounded or not name
                else model_cost(provider_id, name, entry.high, batch=batch)
            )
            if low is None and name not in result.unpriced_models:
                result.unpriced_models.append(name or "(none)")
            for index, value in enumerate((low, high)):
                current = sums[kind][index]
                sums[kind][index] = None if current is None or value is None else current + value
        if result.output_tokens_max is not None:
            result.output_tokens_max = (
                None if entry.unbounded else (result.output_tokens_max + entry.output_bound)
            )
    result.batch_cost_usd = _floats(sums["batch"])
    result.sync_cost_usd = _floats(sums["sync"])
    return result


def _floats(pair: list[Decimal | None]) -> tuple[float | None, float | None]:
    return (
        float(pair[0]) if pair[0] is not None else None,
        float(pair[1]) if pair[1] is not None else None,
    )
