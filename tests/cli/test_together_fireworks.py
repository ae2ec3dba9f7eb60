"""The README's job on Together and Fireworks, through the CLI against ``omnibatch emulator
serve`` (real subprocesses, a real socket)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import EmulatorProcess, clean_env, run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "requests.jsonl"


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_providers_lists_together_and_fireworks(tmp_path: Path, home: Path) -> None:
    proc = run_cli("providers", env=clean_env(home), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert "TOGETHER_API_KEY" in rows["together"]
    assert "FIREWORKS_API_KEY" in rows["fireworks"]
    assert "plugin problem" not in proc.stderr


@pytest.mark.parametrize(("provider", "extra_env"), [("together", {}), ("fireworks", {})])
def test_run_the_example_on_the_emulator(
    emulator: EmulatorProcess,
    tmp_path: Path,
    home: Path,
    provider: str,
    extra_env: dict[str, str],
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root, **extra_env)
    out = f"out-{provider}.jsonl"
    proc = run_cli("run", str(EXAMPLE), "-o", out, "--provider", provider, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = read_jsonl(tmp_path / out)
    inputs = read_jsonl(EXAMPLE)
    assert [r["custom_id"] for r in results] == [i["custom_id"] for i in inputs]
    assert all(r["status"] == "succeeded" for r in results), results
    listing = run_cli("list", "--provider", provider, "--json", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    batches = json.loads(listing.stdout)["batches"]
    assert batches and batches[0]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("provider", "extra_env"),
    [("together", {}), ("fireworks", {"FIREWORKS_ACCOUNT_ID": "acme"})],
)
def test_a_split_job_is_merged_back_in_input_order(
    emulator: EmulatorProcess,
    tmp_path: Path,
    home: Path,
    provider: str,
    extra_env: dict[str, str],
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root, **extra_env)
    args = ["--provider", provider, "--max-requests-per-batch", "4", "--json"]
    submitted = run_cli("submit", str(EXAMPLE), *args, env=env, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert [b["requests"] for b in job["batches"]] == [4, 4, 2]
    waited = run_cli("wait", job["job"], "--poll-interval", "0.02", env=env, cwd=tmp_path)
    assert waited.returncode == 0, waited.stderr
    got = run_cli("results", job["job"], "-o", "merged.jsonl", env=env, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    merged = read_jsonl(tmp_path / "merged.jsonl")
    assert [r["custom_id"] for r in merged] == [i["custom_id"] for i in read_jsonl(EXAMPLE)]
    assert all(r["status"] == "succeeded" for r in merged)


def test_fireworks_without_an_account_says_which_variable(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    # Not on an emulator (a base URL of its own): the account id is required.
    env = clean_env(
        home, FIREWORKS_BASE_URL=f"{emulator.root}/fireworks", FIREWORKS_API_KEY="key-1"
    )
    proc = run_cli(
        "run", str(EXAMPLE), "-o", "o.jsonl", "--provider", "fireworks", env=env, cwd=tmp_path
    )
    assert proc.returncode == 3, proc.stderr
    assert "FIREWORKS_ACCOUNT_ID" in proc.stderr


def test_fireworks_cancel_is_refused_clearly(
    slow_emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=slow_emulator.root, FIREWORKS_ACCOUNT_ID="acme")
    submitted = run_cli(
        "submit", str(EXAMPLE), "--provider", "fireworks", "--json", env=env, cwd=tmp_path
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job"]
    proc = run_cli("cancel", job_id, env=env, cwd=tmp_path)
    assert proc.returncode != 0
    assert "cannot be cancelled" in proc.stderr
