"""Third-party providers as separate distributions, proven out of tree.

A throwaway virtual environment (built from this interpreter, nothing downloaded) gets two
packages installed as wheels: a provider rendered by ``omnibatch plugin new`` and the example in
``examples/omnibatch-gateway``. Each must be discovered through its entry point, pass its own
test suite (the contract suite) with no edits, and lint and type-check clean; the example also
drives ``omnibatch run`` end to end against its own emulator dialect.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "omnibatch-gateway"


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OMNIBATCH_", "PYTHON", "PIP_", "PYTEST_", "MYPY"))
    }
    env.update(extra)
    return env


def run(args: list[str | Path], *, cwd: Path | None = None, **env: str) -> str:
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv that sees this interpreter's packages (omnibatch, pytest,
    hatchling, mypy) but installs into its own site-packages."""
    root = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", root])
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    )
    # --system-site-packages reaches only the *base* interpreter; when the tests run in a venv
    # (they do here), bridge to its site-packages, processing their .pth files (editables).
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    lines = [f"import site; site.addsitedir({d!r})" for d in sorted(ours) if Path(d).is_dir()]
    (purelib / "_omnibatch_test_bridge.pth").write_text("\n".join(lines) + "\n")
    return python


def pip_install(python: Path, project: Path) -> None:
    run(
        [
            python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
            "--no-index", "--disable-pip-version-check", project,
        ]
    )  # fmt: skip


def providers(python: Path) -> dict[str, dict[str, Any]]:
    listing = json.loads(run([python, "-m", "omnibatch.cli", "--json", "providers"]))
    assert listing["problems"] == [], listing["problems"]
    return {p["name"]: p for p in listing["providers"]}


def module_file(python: Path, module: str) -> Path:
    return Path(run([python, "-c", f"import {module}; print({module}.__file__)"]).strip())


def passed_tests(output: str) -> int:
    summary = output.strip().splitlines()[-1]
    assert "failed" not in summary and "error" not in summary and "skipped" not in summary, output
    return int(summary.split(" passed")[0].split()[-1])


def lint_and_type_check(python: Path, project: Path, cache: Path) -> None:
    run([python, "-m", "ruff", "check", "--no-cache", "."], cwd=project)
    run([python, "-m", "ruff", "format", "--check", "--no-cache", "."], cwd=project)
    run([python, "-m", "mypy", "--cache-dir", cache], cwd=project)


def test_a_rendered_provider_installs_and_passes_its_own_tests(venv: Path, tmp_path: Path) -> None:
    out = run([sys.executable, "-m", "omnibatch.cli_plugin", "new", "acme", "--dest", tmp_path])
    root = tmp_path / "omnibatch-acme"
    assert f"created {root}" in out
    assert (root / ".github" / "workflows" / "ci.yml").is_file()
    assert "WIRE DETAIL" in (root / "src" / "omnibatch_acme" / "adapter.py").read_text()
    pip_install(venv, root)
    entry = providers(venv)["acme"]
    assert (entry["distribution"], entry["version"], entry["builtin"]) == (
        "omnibatch-acme", "0.1.0", False
    )  # fmt: skip
    assert module_file(venv, "omnibatch_acme").is_relative_to(venv.parent.parent)
    # The rendered tests: the contract suite (sync, async, socket) and the adapter's own.
    assert passed_tests(run([venv, "-m", "pytest", "-q"], cwd=root)) >= 30
    lint_and_type_check(venv, root, tmp_path / "mypy-cache")


def test_an_openai_compatible_provider_is_a_facts_object_of_under_100_lines(
    venv: Path, tmp_path: Path
) -> None:
    out = run(
        [sys.executable, "-m", "omnibatch.cli_plugin", "new", "lab", "--openai-compatible",
         "--dest", tmp_path]
    )  # fmt: skip
    root = tmp_path / "omnibatch-lab"
    assert f"created {root}" in out and "facts.py" in out
    package = root / "src" / "omnibatch_lab"
    assert sorted(p.name for p in package.glob("*.py")) == [
        "__init__.py", "adapter.py", "dialect.py", "facts.py"
    ]  # fmt: skip
    code = [*package.glob("*.py"), *(root / "tests").glob("*.py")]
    assert sum(len(p.read_text().splitlines()) for p in code) < 100
    assert "OpenAICompatFacts(" in (package / "facts.py").read_text()
    pip_install(venv, root)
    assert providers(venv)["lab"]["builtin"] is False
    # The contract suite: every scenario, sync, async and over a socket.
    assert passed_tests(run([venv, "-m", "pytest", "-q"], cwd=root)) >= 25
    lint_and_type_check(venv, root, tmp_path / "mypy-cache")


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "omnibatch-gateway"
    caches = shutil.ignore_patterns("__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache")
    shutil.copytree(EXAMPLE, copy, ignore=caches)
    yield copy


def test_the_example_is_its_own_distribution_and_passes_its_tests(
    venv: Path, example: Path, tmp_path: Path
) -> None:
    pip_install(venv, example)
    entry = providers(venv)["gateway"]
    assert (entry["distribution"], entry["version"], entry["builtin"]) == (
        "omnibatch-gateway", "0.1.0", False
    )  # fmt: skip
    # The installed wheel is what runs, not a source tree on the path.
    assert module_file(venv, "omnibatch_gateway").is_relative_to(venv.parent.parent)
    assert passed_tests(run([venv, "-m", "pytest", "-q"], cwd=example)) >= 30
    lint_and_type_check(venv, example, tmp_path / "mypy-cache")


def test_omnibatch_run_drives_the_example_against_its_own_dialect(
    venv: Path, example: Path, tmp_path: Path
) -> None:
    pip_install(venv, example)
    # The emulator is served by the installed packages: the gateway dialect comes from the
    # plugin's own register_emulator_dialects hook.
    with subprocess.Popen(
        [venv, "-m", "omnibatch.cli", "--json", "emulator", "serve", "--port", "0",
         "--speed", "500"],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as server:  # fmt: skip
        try:
            _run_against(server, venv, tmp_path)
        finally:
            server.terminate()


def _run_against(server: subprocess.Popen[str], venv: Path, tmp_path: Path) -> None:
    """Wait for the served URLs, then run a job on the gateway through the CLI."""
    assert server.stdout is not None
    urls = {}
    while "gateway" not in urls:
        line = server.stdout.readline()
        assert line, "the emulator stopped before listing the gateway dialect"
        if line.startswith("{"):
            record = json.loads(line)
            urls[record["dialect"]] = record
    assert urls["gateway"]["base_url"].endswith("/gateway/v2")
    lines = [
        {"custom_id": f"q{i}", "body": {"model": "gw-small-1", "messages": [
            {"role": "user", "content": "hi" + (" [[emulator:error]]" if i == 2 else "")}
        ]}}
        for i in range(4)
    ]  # fmt: skip
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [venv, "-m", "omnibatch.cli", "--provider", "gateway", "run", source, "-o", output,
         "--poll-interval", "0.05"],
        env=clean_env(
            OMNIBATCH_EMULATOR_URL=urls["gateway"]["root"],
            OMNIBATCH_HOME=str(tmp_path / "home"),
        ),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 succeeded, 1 errored" in proc.stdout
    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["custom_id"] for r in written] == ["q0", "q1", "q2", "q3"]
    assert [r["status"] for r in written] == ["succeeded", "succeeded", "errored", "succeeded"]
    assert written[2]["error"]["code"] == "bad_request"
