"""Model names and prices from genai-prices, pydantic's maintained price data.

Only the data bundled with the installed package is read: nothing is fetched at run time (the
package's auto-update is never started). The package is imported on first use, so
``import omnibatch`` does not pay for it.

A provider's id in the price data is its adapter's ``price_provider`` (default: its ``name``).
Costs are computed per model from summed usage; requests whose prompt is above
:data:`TIER_TOKENS` are priced one by one, since long-context tiers price a whole request by its
own size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "TIER_TOKENS",
    "Cost",
    "UsageTotals",
    "job_cost",
    "known_model",
    "price_provider",
]

TIER_TOKENS = 128_000
"""Prompts above this many tokens may cross a long-context price tier: priced one by one."""


def price_provider(adapter: Any) -> str:
    """The provider's id in the price data."""
    return str(getattr(adapter, "price_provider", None) or adapter.name)


def _provider(provider_id: str) -> Any:
    from genai_prices import data_snapshot

    try:
        return data_snapshot.get_snapshot().find_provider(None, provider_id, None)
    except LookupError:
        return None


def known_model(provider_id: str, model: str) -> bool | None:
    """Whether the price data lists ``model`` for the provider; None when it has no data for
    the provider at all (then nothing can be said)."""
    provider = _provider(provider_id)
    if provider is None:
        return None
    return provider.find_model(model) is not None


@dataclass
class UsageTotals:
    """Usage summed over one model's requests, as the merge counts it."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    large: list[tuple[int, int, int]] = field(default_factory=list)
    """``(input, output, cached)`` of each request above :data:`TIER_TOKENS`."""

    def add(self, usage: Mapping[str, Any]) -> None:
        prompt = usage.get("input_tokens") or 0
        output = usage.get("output_tokens") or 0
        cached = usage.get("cached_input_tokens") or 0
        if prompt > TIER_TOKENS:
            self.large.append((prompt, output, cached))
        else:
            self.input_tokens += prompt
            self.output_tokens += output
            self.cached_input_tokens += cached
        self.requests += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens + sum(r[0] for r in self.large),
            "output_tokens": self.output_tokens + sum(r[1] for r in self.large),
            "cached_input_tokens": self.cached_input_tokens + sum(r[2] for r in self.large),
        }


@dataclass(frozen=True)
class Cost:
    """What a job cost. ``usd`` is None when it cannot be told, and ``reason`` says why;
    ``source`` is ``provider`` when the provider reported the figure itself, else
    ``genai-prices`` (its batch rates, applied to the results' usage)."""

    usd: float | None
    source: str | None = None
    reason: str | None = None


def _price(
    provider: Any, model: str, usage: tuple[int, int, int], batch: bool, requests: int = 1
) -> Decimal:
    """The price of ``usage`` summed over ``requests`` requests: priced as their average
    request, times their number, so a sum of short prompts never reaches a long-context tier
    (genai-prices picks the tier from the usage it is given)."""
    from genai_prices import Usage, calc_price

    n = Decimal(max(requests, 1))
    prompt, output, cached = (Decimal(value) / n for value in usage)
    price = calc_price(
        Usage(input_tokens=prompt, output_tokens=output, cache_read_tokens=cached),
        model,
        provider_id=provider.id,
        price_context={"processing": "batch"} if batch else None,
    ).total_price
    return price * n


def model_cost(
    provider_id: str, model: str, totals: UsageTotals, *, batch: bool = True
) -> Decimal | None:
    """The price of one model's summed usage; None when the price data lacks the model."""
    provider = _provider(provider_id)
    if provider is None or provider.find_model(model) is None:
        return None
    summed = (totals.input_tokens, totals.output_tokens, totals.cached_input_tokens)
    total = _price(provider, model, summed, batch, totals.requests - len(totals.large))
    for request in totals.large:
        total += _price(provider, model, request, batch)
    return total


def job_cost(
    provider_id: str,
    usage: Mapping[str, UsageTotals],
    *,
    reported: float | None = None,
    unpriced: int = 0,
) -> Cost:
    """A job's cost at the provider's batch rates, from the usage of its results by model.
    ``reported`` is the provider's own figure (OpenRouter's ``usage.cost``): it wins.
    ``unpriced`` counts succeeded requests that reported no usage."""
    if reported is not None:
        return Cost(reported, "provider")
    if not usage:
        if unpriced:
            return Cost(None, reason=f"{unpriced} succeeded request(s) reported no usage")
        return Cost(0.0, "genai-prices")
    total = Decimal(0)
    missing: list[str] = []
    for model, totals in usage.items():
        price = model_cost(provider_id, model, totals) if model else None
        if price is None:
            missing.append(model or "(no model named)")
        else:
            total += price
    if missing:
        return Cost(
            None,
            reason=f"no {provider_id} price for {', '.join(sorted(missing))} in genai-prices",
        )
    if unpriced:
        return Cost(None, reason=f"{unpriced} succeeded request(s) reported no usage")
    return Cost(float(total), "genai-prices")
