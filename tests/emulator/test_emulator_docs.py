"""The code in docs/emulator.md and docs/testing.md runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from omnibatch.emulator import FaultPlan

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PYTHONPATH = os.pathsep.join(
    [str(REPO / "src"), str(REPO / "providers" / "openai"), str(REPO / "providers" / "mistral")]
    + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
)


def blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_emulator_guide_python_examples_run() -> None:
    examples = blocks("emulator.md", "python")
    assert len(examples) == 6
    for code in examples:
        namespace: dict[str, object] = {"__name__": "docs_example"}
        exec(compile(code, "docs/emulator.md", "exec"), namespace)


def test_the_emulator_guide_fault_file_parses(tmp_path: Path) -> None:
    (toml,) = blocks("emulator.md", "toml")
    path = tmp_path / "faults.toml"
    path.write_text(toml, encoding="utf-8")
    plan = FaultPlan.from_toml(path)
    assert (plan.rate, plan.seed, plan.retry_after) == (0.05, 42, 2.0)
    assert [(r.kind, r.when, r.times) for r in plan.rules] == [
        ("502", "after", 1),
        ("truncate", "any", None),
    ]


def test_the_emulator_guide_lists_every_config_field() -> None:
    from dataclasses import fields

    from omnibatch.emulator import EmulatorConfig

    text = (DOCS / "emulator.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(\w+)` \| `[^`]*` \|", text, flags=re.MULTILINE)
    assert [f.name for f in fields(EmulatorConfig)] == listed


def _run_pytest(directory: Path) -> subprocess.CompletedProcess[str]:
    plugin = "omnibatch.testing.pytest_plugin"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            plugin,
            "-p",
            "no:cacheprovider",
            str(directory),
        ],
        capture_output=True,
        text=True,
        cwd=directory,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        timeout=120,
    )


@pytest.mark.parametrize("part", ["tests", "conftest"])
def test_the_testing_guide_examples_pass(part: str, tmp_path: Path) -> None:
    examples = blocks("testing.md", "python")
    assert len(examples) == 4
    if part == "tests":
        (tmp_path / "test_guide.py").write_text("\n\n".join(examples[:3]), encoding="utf-8")
        expected = "3 passed"
    else:
        (tmp_path / "conftest.py").write_text(examples[3], encoding="utf-8")
        (tmp_path / "test_overrides.py").write_text(
            textwrap.dedent(
                """
                def test_overrides_apply(omnibatch_emulator):
                    assert list(omnibatch_emulator.dialects) == ["openai"]
                    assert omnibatch_emulator.config.request_error_rate == 0.1
                    assert omnibatch_emulator.config.requests_per_second == 10
                """
            ),
            encoding="utf-8",
        )
        expected = "1 passed"
    result = _run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert expected in result.stdout
