"""Cost, counted once: every job priced at the provider's batch rates from its results' usage
(genai-prices' bundled data, never fetched), a provider-reported cost winning, and null with a
reason when the price is unknown."""

from __future__ import annotations

import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import orjson
import pytest

from omnibatch._prices import UsageTotals, job_cost, known_model
from omnibatch.results import _Tally
from tests.core.test_result_shape import run_job_summary

MODELS = {
    "openai": ("openai", "gpt-4o-mini"),
    "anthropic": ("anthropic", "claude-haiku-4-5"),
    "gemini": ("google", "gemini-2.5-flash"),
    "mistral": ("mistral", "mistral-small-latest"),
}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prices come from the installed data: any connection attempt fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the price data tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def expected(price_id: str, model: str, lines: list[dict[str, Any]], batch: bool) -> float:
    used = [line["usage"] for line in lines if line["usage"]]
    usage = genai_prices.Usage(
        input_tokens=sum(u["input_tokens"] for u in used),
        output_tokens=sum(u["output_tokens"] for u in used),
        cache_read_tokens=sum(u["cached_input_tokens"] or 0 for u in used),
    )
    context = {"processing": "batch"} if batch else None
    price = genai_prices.calc_price(usage, model, provider_id=price_id, price_context=context)
    return float(price.total_price)


@pytest.mark.parametrize("provider", sorted(MODELS))
def test_a_job_is_priced_at_batch_rates(provider: str, tmp_path: Path) -> None:
    price_id, model = MODELS[provider]
    lines, summary = run_job_summary(provider, tmp_path, model=model)
    assert summary.cost_source == "genai-prices" and summary.cost_reason is None
    assert summary.cost_usd == pytest.approx(expected(price_id, model, lines, batch=True))
    assert summary.cost_usd < expected(price_id, model, lines, batch=False)
    succeeded = sum(1 for line in lines if line["status"] == "succeeded")
    assert sum(u["requests"] for u in summary.usage.values()) == succeeded


def test_an_unknown_model_has_no_cost_and_says_why(tmp_path: Path) -> None:
    _, summary = run_job_summary("anthropic", tmp_path, model="made-up-model")
    assert summary.cost_usd is None
    assert summary.cost_reason is not None and "made-up-model" in summary.cost_reason


def tally_line(usage: dict[str, Any] | None, model: str = "m") -> dict[str, Any]:
    tokens = {"input_tokens": 10, "output_tokens": 5, "cached_input_tokens": None}
    return {
        "status": "succeeded",
        "usage": tokens if usage is not None else None,
        "model": model,
        "response": {"usage": usage} if usage is not None else {},
    }


def test_a_cost_the_provider_reports_wins_and_is_labelled() -> None:
    from omnibatch.results import OutputSummary

    class OpenRouterLike:
        name = "openrouter"
        price_provider = None

    tally = _Tally()
    for _ in range(3):
        tally.add(tally_line({"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.25}))
    summary = OutputSummary()
    tally.settle(OpenRouterLike(), summary)  # type: ignore[arg-type]
    assert (summary.cost_usd, summary.cost_source) == (0.75, "provider")
    tally.add(tally_line({"prompt_tokens": 10, "completion_tokens": 5}))  # one without: priced
    tally.settle(OpenRouterLike(), summary)  # type: ignore[arg-type]
    assert summary.cost_source != "provider"


def test_long_prompts_are_priced_one_by_one() -> None:
    totals = UsageTotals()
    totals.add({"input_tokens": 300_000, "output_tokens": 10, "cached_input_tokens": 0})
    totals.add({"input_tokens": 300_000, "output_tokens": 10, "cached_input_tokens": 0})
    one = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=300_000, output_tokens=10),
        "gemini-2.5-pro",
        provider_id="google",
        price_context={"processing": "batch"},
    ).total_price
    cost = job_cost("google", {"gemini-2.5-pro": totals})
    assert cost.usd == pytest.approx(float(one * 2))
    assert Decimal(str(cost.usd)) > 0


def test_known_models_come_from_the_price_data() -> None:
    assert known_model("anthropic", "claude-haiku-4-5") is True
    assert known_model("anthropic", "gpt-4o-mini") is False
    assert known_model("no-such-provider", "x") is None


def test_importing_omnibatch_does_not_import_the_price_data() -> None:
    code = "import sys, omnibatch; print('genai_prices' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_summary_lands_in_the_ledger_as_json(tmp_path: Path) -> None:
    from omnibatch.ledger import Ledger

    lines, summary = run_job_summary("openai", tmp_path, model="gpt-4o-mini")
    with Ledger(tmp_path / "openai" / "home") as ledger:
        (job,) = ledger.list_jobs(5)
    assert job.summary is not None and job.summary["cost_usd"] == summary.cost_usd
    assert orjson.loads(orjson.dumps(dict(job.summary)))["cost_source"] == "genai-prices"
    assert lines


def test_many_short_prompts_never_reach_a_long_context_tier() -> None:
    totals = UsageTotals()
    for _ in range(10):
        totals.add({"input_tokens": 100_000, "output_tokens": 10, "cached_input_tokens": 0})
    one = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=100_000, output_tokens=10),
        "gemini-2.5-pro",
        provider_id="google",
        price_context={"processing": "batch"},
    ).total_price
    assert job_cost("google", {"gemini-2.5-pro": totals}).usd == pytest.approx(float(one * 10))
