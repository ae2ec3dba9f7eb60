"""A leftover OMNIBATCH_EMULATOR_URL never passes a fake run off as a real one."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import EmulatorProcess, clean_env, run_cli, write_input

BOLD = "\x1b[1m"


def test_every_command_on_an_emulator_says_so_first(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root, OPENAI_API_KEY="sk-real-key-1")
    source = write_input(tmp_path / "in.jsonl", 2)
    # A real key and --provider: the user means a real run. The first line says it is not, in bold.
    run = run_cli(
        "run", str(source), "-o", "o.jsonl", "--provider", "openai", env=env, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    first = run.stderr.splitlines()[0]
    assert first.startswith(BOLD) and "emulator" in first
    assert f"{emulator.root}/openai/v1" in first and "$OMNIBATCH_EMULATOR_URL" in first
    assert "$OPENAI_API_KEY" in first and "sk-real-key-1" not in run.stderr
    # Without --provider: the same line, plain.
    listing = run_cli("list", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    first = listing.stderr.splitlines()[0]
    assert first.startswith("emulator: openai is the omnibatch emulator at") and BOLD not in first
    # --json says so too, and the line is still on stderr.
    as_json = run_cli("--json", "list", "--provider", "openai", env=env, cwd=tmp_path)
    assert json.loads(as_json.stdout)["emulator"] is True
    assert "emulator" in as_json.stderr.splitlines()[0]
