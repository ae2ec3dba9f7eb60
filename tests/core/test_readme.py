"""The README's Python examples run as written, against a served emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from omnibatch.emulator import serve

from ..conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)


def test_readme_has_sync_and_async_quickstarts() -> None:
    assert len(BLOCKS) >= 2
    assert any("BatchClient(" in b for b in BLOCKS) and any(
        "AsyncBatchClient(" in b for b in BLOCKS
    )
    for block in BLOCKS:
        assert len(block.strip().splitlines()) <= 20, "quickstarts stay short"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int) -> None:
    with serve(port=0, speed=20.0) as server:
        env = {**os.environ, "OMNIBATCH_EMULATOR_URL": server.base_url}
        for name in ("OMNIBATCH_PROVIDER", "OPENAI_BASE_URL", "MISTRAL_BASE_URL"):
            env.pop(name, None)
        done = subprocess.run(
            [sys.executable, "-c", BLOCKS[index]],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=100,
        )
        creates = sum(server.emulator.stats.creates.values())
    assert done.returncode == 0, done.stderr
    assert creates == 1
    assert re.search(r"^request-\d+ ", done.stdout, re.M) or "succeeded" in done.stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize("provider", ["mistral", "anthropic", "gemini"])
def test_the_quickstart_runs_on_every_provider_it_names(provider: str) -> None:
    """Changing the provider alone runs the example: the model map in examples/omnibatch.toml
    translates its model, so no request warns of a model the provider does not list."""
    block = next(b for b in BLOCKS if "BatchClient(provider=" in b and "async" not in b)
    code = block.replace('provider="openai"', f'provider="{provider}"', 1)
    assert code != block
    with serve(port=0, speed=20.0) as server:
        env = {**os.environ, "OMNIBATCH_EMULATOR_URL": server.base_url}
        env.pop("OMNIBATCH_PROVIDER", None)
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=100,
        )
        creates = server.emulator.stats.creates[provider]
    assert done.returncode == 0, done.stderr
    assert "does not look like" not in done.stderr, done.stderr
    assert creates == 1
    assert done.stdout.count(" succeeded ") == len(
        (REPO / "examples" / "requests.jsonl").read_text().splitlines()
    ), done.stdout
