"""``omnibatch run --provider openrouter|cohere`` against ``omnibatch emulator serve``, and the
clear error a provider without cancel gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import EmulatorProcess, clean_env, only_job_id, read_jsonl, run_cli, write_input

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "requests.jsonl"


@pytest.mark.parametrize("provider", ["openrouter", "cohere"])
def test_run_the_example_on_the_emulator(
    provider: str, emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    proc = run_cli(
        "run", str(EXAMPLE), "-o", "out.jsonl", "--provider", provider, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    expected = [json.loads(line)["custom_id"] for line in EXAMPLE.read_text().splitlines()]
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert [line["custom_id"] for line in lines] == expected
    for line in lines:
        assert line["status"] == "succeeded", line
        assert line["response"]["choices"][0]["message"]["content"], line
    job_id = only_job_id(home)
    status = json.loads(run_cli("status", job_id, "--json", env=env, cwd=tmp_path).stdout)
    assert status["status"] == "succeeded", status


def test_openrouter_splits_over_5000_requests_and_merges(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "big.jsonl", 5_003)
    proc = run_cli(
        "run", str(source), "-o", "out.jsonl", "--provider", "openrouter", "--json",
        env=env, cwd=tmp_path, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert len(lines) == 5_003 and len({line["custom_id"] for line in lines}) == 5_003
    assert all(line["status"] == "succeeded" for line in lines)
    job_id = only_job_id(home)
    view = json.loads(run_cli("status", job_id, "--json", env=env, cwd=tmp_path).stdout)
    parts = view["batches"]
    assert [p["requests"] for p in parts] == [5_000, 3], parts
    assert len({p["batch_id"] for p in parts}) == 2 and view["status"] == "succeeded"


def test_cancel_on_openrouter_is_a_clear_error(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    proc = run_cli("cancel", "batch_anything", "--provider", "openrouter", env=env, cwd=tmp_path)
    assert proc.returncode != 0
    assert "cannot be cancelled" in proc.stderr and "Traceback" not in proc.stderr
