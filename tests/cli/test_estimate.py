"""``omnibatch estimate``: request count, input-token estimate, output bound and cost ranges at
batch and synchronous prices, before anything is sent, in bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import genai_prices
import orjson
import pytest

from omnibatch._estimate import estimate_input, estimate_tokens
from omnibatch_anthropic.adapter import AnthropicAdapter
from tests.cli.conftest import clean_env, run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "requests.jsonl"


def test_the_token_estimate_follows_the_documented_method() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "x" * 40},
            {"role": "user", "content": [{"type": "text", "text": "y" * 8}, {"type": "image_url"}]},
        ]
    }
    # ceil(48 / 4) + 4 per message + 3 per request + 765 per image
    assert estimate_tokens(body) == 12 + 8 + 3 + 765


def test_estimate_json_on_anthropic_with_the_model_map(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    done = run_cli(
        "--config",
        str(REPO / "examples" / "omnibatch.toml"),
        "estimate",
        str(EXAMPLE),
        "--provider",
        "anthropic",
        "--json",
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    data = orjson.loads(done.stdout)
    bodies = [orjson.loads(line)["body"] for line in EXAMPLE.read_bytes().splitlines()]
    assert data["requests"] == len(bodies)
    assert data["output_tokens_max"] == sum(b["max_tokens"] for b in bodies)
    assert data["input_tokens_estimate"] == sum(estimate_tokens(b) for b in bodies)
    assert list(data["models"]) == ["claude-haiku-4-5"]
    batch, sync = data["batch_cost_usd"], data["sync_cost_usd"]
    assert 0 < batch["low"] < batch["high"] and batch["high"] < sync["high"]
    per_request = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=data["input_tokens_estimate"] / len(bodies),
            output_tokens=data["output_tokens_max"] / len(bodies),
        ),
        "claude-haiku-4-5",
        provider_id="anthropic",
        price_context={"processing": "batch"},
    ).total_price
    assert batch["high"] == pytest.approx(float(per_request) * len(bodies))


def test_an_unmapped_model_has_no_price_and_says_so(tmp_path: Path) -> None:
    done = run_cli(
        "estimate", str(EXAMPLE), "--provider", "anthropic", env=clean_env(tmp_path), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "unknown" in done.stdout and "gpt-4o-mini" in done.stderr


def test_memory_stays_bounded_over_many_lines(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = orjson.loads(EXAMPLE.read_bytes().splitlines()[0])
    with open(path, "wb") as fh:
        for i in range(60_000):
            line["custom_id"] = f"r{i}"
            fh.write(orjson.dumps(line) + b"\n")
    tracemalloc.start()
    try:
        estimate = estimate_input(path, AnthropicAdapter(), model="claude-haiku-4-5")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert estimate.requests == 60_000
    assert peak < 4 * 1024 * 1024, peak
