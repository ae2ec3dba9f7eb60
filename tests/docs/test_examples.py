"""Every Python example in docs/ is checked: the guide pages' examples run, as one script per
page, against the emulator over a real socket; the plugin pages' examples are run by the tests
named in COVERED or, for signature listings, parsed. A page with Python code that is in none of
these lists fails, so a new example cannot go unchecked."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnibatch.emulator import serve

from ..conftest import REPO

DOCS = REPO / "docs"

# Pages whose examples are run here, in order, as one script.
RUN = ["configuration.md", "errors.md", "large-jobs.md", "lifecycle.md", "results.md"]
# Pages whose examples other tests run as written.
COVERED = {
    "emulator.md": "tests/emulator/test_emulator_docs.py",
    "testing.md": "tests/emulator/test_emulator_docs.py",
    "plugins/tutorial.md": "tests/plugins/test_docs.py",
}
# Pages of signatures and fragments of the example plugin: parsed (a bare signature gets a body).
PARSED = [
    "plugins/adapter-reference.md",
    "plugins/hooks.md",
    "plugins/testing.md",
    "providers/openai-compatible.md",
]

_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)


def python_blocks(page: str) -> list[str]:
    return _BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))


def _pages_with_python() -> Iterator[str]:
    for path in sorted(DOCS.rglob("*.md")):
        page = path.relative_to(DOCS).as_posix()
        if python_blocks(page):
            yield page


def test_every_page_with_python_is_checked() -> None:
    unchecked = set(_pages_with_python()) - set(RUN) - set(COVERED) - set(PARSED)
    assert not unchecked, f"add these pages to a list in {__file__}: {sorted(unchecked)}"
    for test in set(COVERED.values()):
        assert (REPO / test).is_file()


@pytest.mark.parametrize("page", PARSED)
def test_signature_pages_parse(page: str) -> None:
    for code in python_blocks(page):
        lines = textwrap.dedent(code).rstrip("\n")  # a method shown on its own is indented
        if "\n" not in lines and lines.startswith(("def ", "async def ")):
            lines += ": ..."  # a listed signature
        elif lines.endswith(":"):
            lines += "\n    ..."  # a decorated signature
        ast.parse(lines, filename=page)


@pytest.fixture(scope="module")
def emulator_root() -> Iterator[str]:
    server = serve(port=0, speed=200.0)
    try:
        yield server.base_url.rstrip("/")
    finally:
        server.close()


@pytest.mark.parametrize("page", RUN)
def test_guide_examples_run(page: str, tmp_path: Path, emulator_root: str) -> None:
    blocks = python_blocks(page)
    assert blocks, f"docs/{page} has no Python example any more: update RUN"
    shutil.copy(REPO / "examples" / "requests.jsonl", tmp_path / "requests.jsonl")
    script = tmp_path / "example.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OMNIBATCH_")},
        "OMNIBATCH_EMULATOR_URL": emulator_root,
        "OMNIBATCH_HOME": str(tmp_path / "home"),
        "OPENAI_API_KEY": "sk-docs-example",
        "MISTRAL_API_KEY": "docs-example-key",
    }
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"docs/{page}:\n{result.stdout}\n{result.stderr}"
    if page == "large-jobs.md":
        lines = (tmp_path / "output.jsonl").read_text(encoding="utf-8").splitlines()
        requests = (tmp_path / "requests.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len([r for r in requests if r.strip()])
        # Two requests per part: the example really split the input.
        assert len(list((tmp_path / "work" / "parts").glob("part-*.jsonl"))) >= 2


def test_readme_test_command_is_what_ci_runs_and_leaves_out_the_example_plugin() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    (command,) = [
        line
        for line in readme.splitlines()
        if line.startswith("python3 -m venv") and "pytest" in line
    ]
    assert command in ci.splitlines()
    # The example gateway is tested in its own environment (tests/plugins/test_template.py):
    # installing it here would list a fake provider in the user's `omnibatch providers`.
    assert "omnibatch-gateway" not in command and "omnibatch-gateway" not in ci
    assert '".[dev]"' in command


def test_plugin_testing_fault_plan_example_runs() -> None:
    """The one self-contained example of the plugin testing page. The others are fragments
    (parsed above): the example plugin's contract test and dialect, which run with it in
    tests/plugins/test_template.py, and a sketch of an adapter test that needs its fixtures."""
    (code,) = [c for c in python_blocks("plugins/testing.md") if "FaultPlan(" in c]
    namespace: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(code, "docs/plugins/testing.md", "exec"), namespace)
    plan = namespace["plan"]
    assert [rule.kind for rule in plan.rules] == ["503", "429"]  # type: ignore[attr-defined]
