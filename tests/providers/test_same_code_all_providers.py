"""The same user code and the same input file, unchanged, on openai, mistral, anthropic,
gemini, openrouter and cohere against the emulator: through ``BatchClient``, through
``AsyncBatchClient``, and through ``omnibatch run`` in a real subprocess against a served
emulator. Only the provider name and
the model differ, and every provider must give the same outcome per request."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from omnibatch import AsyncBatchClient, BatchClient, BatchStatus, ResultStatus
from omnibatch.config import EMULATOR_URL_ENV
from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock, serve

MODELS = {
    "openai": "gpt-4o-mini",
    "mistral": "mistral-small-latest",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
    "openrouter": "openai/gpt-4o-mini",
    "cohere": "command-a-03-2025",
}
# Each provider's key and base-URL variables (Cohere's are the official SDK's names).
ENV = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "mistral": ("MISTRAL_API_KEY", "MISTRAL_BASE_URL"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    "gemini": ("GEMINI_API_KEY", "GEMINI_BASE_URL"),
    "openrouter": ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"),
    "cohere": ("CO_API_KEY", "CO_API_URL"),
}
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Translate 'good morning' into Spanish.",
    "This one fails inside the batch [[emulator:error]]",
    "Name three prime numbers.",
    "Summarise the plot of Hamlet in one sentence.",
]
EXPECTED = {
    f"q-{i}": ResultStatus.ERRORED if "[[emulator:error]]" in p else ResultStatus.SUCCEEDED
    for i, p in enumerate(PROMPTS)
}
SECRET = "sk-user-secret-4f1e9a77"


@pytest.fixture
def input_file(tmp_path: Path) -> Path:
    """One input for every provider: OpenAI-style chat lines, no model (given per run)."""
    path = tmp_path / "requests.jsonl"
    lines = [
        {
            "custom_id": f"q-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "max_tokens": 40,
                "temperature": 0.2,
                "messages": [
                    {"role": "system", "content": "You are a concise assistant."},
                    {"role": "user", "content": prompt},
                ],
            },
        }
        for i, prompt in enumerate(PROMPTS)
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


# --- the user's code: written once ------------------------------------------------------------


def run_batch(client: BatchClient, source: Path, model: str) -> dict[str, Any]:
    batch = client.submit(source, model=model)
    done = client.wait(batch.id)
    results = client.results(done.id, expected_ids=list(EXPECTED))
    return summarize(done, list(results))


async def run_batch_async(client: AsyncBatchClient, source: Path, model: str) -> dict[str, Any]:
    batch = await client.submit(source, model=model)
    done = await client.wait(batch.id)
    results = await client.results(done.id, expected_ids=list(EXPECTED))
    return summarize(done, list(results))


def summarize(done: Any, results: list[Any]) -> dict[str, Any]:
    return {
        "status": done.status,
        "counts": (
            done.request_counts.total,
            done.request_counts.succeeded,
            done.request_counts.failed,
        ),
        "outcomes": {r.custom_id: r.status for r in results},
        "usage": all(
            r.usage is not None and (r.usage.output_tokens or 0) > 0 for r in results if r.ok
        ),
        "responses": all(isinstance(r.response, dict) and r.response for r in results if r.ok),
        "errors": all(r.error is not None and r.error.message for r in results if not r.ok),
    }


SAME = {
    "status": BatchStatus.SUCCEEDED,
    "counts": (6, 5, 1),
    "outcomes": EXPECTED,
    "usage": True,
    "responses": True,
    "errors": True,
}


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Emulator:
    # The clients find every provider's place on the emulator from this one variable.
    monkeypatch.setenv(EMULATOR_URL_ENV, "http://emulator.invalid")
    for key_env, url_env in ENV.values():
        monkeypatch.delenv(key_env, raising=False)
        monkeypatch.delenv(url_env, raising=False)
    return Emulator(config=EmulatorConfig(seed=3), clock=ManualClock())


@pytest.mark.parametrize("provider", list(MODELS))
def test_sync_client(provider: str, emulator: Emulator, input_file: Path) -> None:
    with BatchClient(provider, transport=emulator.transport(), sleep=emulator.advance) as client:
        assert run_batch(client, input_file, MODELS[provider]) == SAME
    assert emulator.stats.creates[provider] == 1


@pytest.mark.parametrize("provider", list(MODELS))
def test_async_client(provider: str, emulator: Emulator, input_file: Path) -> None:
    async def sleep(seconds: float) -> None:
        emulator.advance(seconds)

    async def main() -> dict[str, Any]:
        async with AsyncBatchClient(
            provider, transport=emulator.transport(), sleep=sleep
        ) as client:
            return await run_batch_async(client, input_file, MODELS[provider])

    assert asyncio.run(main()) == SAME
    assert emulator.stats.creates[provider] == 1


def test_cli_run_on_every_provider(input_file: Path, tmp_path: Path) -> None:
    """``omnibatch run`` in a real subprocess, against a served emulator, per provider: one
    output line per input custom id, in input order, with the same outcomes; the user's key
    never shows in the output, the logs or the ledger."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNIBATCH_",))}
    env.update({"OMNIBATCH_HOME": str(tmp_path / "home")})
    for key_env, url_env in ENV.values():
        env[key_env] = SECRET  # the emulator takes any key; it must never leak
        env.pop(url_env, None)
    config = EmulatorConfig(seed=3, speed=2000.0)
    with serve(host="127.0.0.1", port=0, config=config) as server:
        env[EMULATOR_URL_ENV] = server.base_url
        outputs = {}
        for provider, model in MODELS.items():
            out = tmp_path / f"out-{provider}.jsonl"
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "omnibatch.cli",
                    "--provider",
                    provider,
                    "run",
                    str(input_file),
                    "-o",
                    str(out),
                    "--model",
                    model,
                    "--poll-interval",
                    "0.05",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=tmp_path,
            )
            assert done.returncode == 0, (provider, done.stdout, done.stderr)
            assert SECRET not in done.stdout + done.stderr
            assert "5 succeeded, 1 errored" in done.stdout + done.stderr, done.stdout
            assert SECRET.encode() not in out.read_bytes()
            lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
            outputs[provider] = [(line["custom_id"], line["status"]) for line in lines]
            assert all("response" in line for line in lines if line["status"] == "succeeded")
        assert server.emulator.stats.creates == {p: 1 for p in MODELS}
    expected = [(cid, status.value) for cid, status in EXPECTED.items()]
    assert outputs == {p: expected for p in MODELS}
    for stored in (tmp_path / "home").rglob("*"):
        if stored.is_file():
            assert SECRET.encode() not in stored.read_bytes(), f"the key is in {stored}"
