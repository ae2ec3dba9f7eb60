"""The built-in providers are plugins like any other: they import only the public plugin API.

Every module under ``providers/`` (and the example third-party plugin) may import
``omnibatch.plugin`` (and its submodules) and ``omnibatch.testing``, nothing else of omnibatch.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ALLOWED = ("omnibatch.plugin", "omnibatch.testing")


def _allowed(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in ALLOWED)


def omnibatch_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of an omnibatch module that is not public."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "omnibatch":  # from omnibatch import _chat
                modules = [f"omnibatch.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            if (module == "omnibatch" or module.startswith("omnibatch.")) and not _allowed(module):
                found.append((node.lineno, module))
    return found


def _provider_files() -> list[Path]:
    return sorted((REPO / "providers").rglob("*.py")) + sorted(
        (REPO / "examples/omnibatch-gateway/src").rglob("*.py")
    )


def test_the_check_catches_every_spelling() -> None:
    source = (
        "import omnibatch._status\n"
        "from omnibatch import _chat as chat\n"
        "from omnibatch.emulator._shared import iso_time\n"
        "from omnibatch.models import Batch\n"
        "from omnibatch import plugin\n"
        "from omnibatch.plugin import Dialect\n"
        "from omnibatch.plugin.lines import split\n"
        "from omnibatch.testing import ProviderContract\n"
        "from .translate import x\n"
    )
    assert [m for _, m in omnibatch_imports(source)] == [
        "omnibatch._status",
        "omnibatch._chat",
        "omnibatch.emulator._shared",
        "omnibatch.models",
    ]


def test_there_are_provider_files_to_check() -> None:
    names = {p.parent.name for p in _provider_files() if p.suffix == ".py"}
    assert {"omnibatch_openai", "omnibatch_mistral", "omnibatch_anthropic"} <= names


@pytest.mark.parametrize("path", _provider_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_provider_modules_import_only_the_plugin_api(path: Path) -> None:
    bad = omnibatch_imports(path.read_text())
    assert not bad, f"{path.relative_to(REPO)} imports private omnibatch modules: " + ", ".join(
        f"line {line}: {module} (use omnibatch.plugin)" for line, module in bad
    )
