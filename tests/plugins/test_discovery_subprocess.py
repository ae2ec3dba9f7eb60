"""End to end in fresh interpreters: fake distributions reach ``omnibatch providers`` through
PYTHONPATH alone (nothing installed), the blocking variables work, and loading stays lazy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ._fakes import GOOD, MARKS_IMPORT, RAISES, make_dist

pytestmark = pytest.mark.slow


def run(site: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMNIBATCH_")}
    clean["PYTHONPATH"] = str(site)
    clean.update(env)
    return subprocess.run(
        [sys.executable, *args], env=clean, capture_output=True, text=True, timeout=60, check=False
    )


def providers(site: Path, **env: str) -> dict[str, Any]:
    proc = run(site, ["-m", "omnibatch.cli", "--json", "providers"], **env)
    assert proc.returncode == 0, proc.stderr
    listing: dict[str, Any] = json.loads(proc.stdout)
    return listing


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    make_dist(root, "omnibatch-fake", GOOD, version="2.0.1")
    make_dist(root, "omnibatch-other", GOOD, version="0.3.0")
    make_dist(root, "omnibatch-boom", RAISES, version="9.9.9")
    return root


def test_providers_lists_third_party_plugins_with_distribution_and_version(site: Path) -> None:
    listing = providers(site)
    by_name = {p["name"]: p for p in listing["providers"]}
    assert (by_name["fake"]["distribution"], by_name["fake"]["version"]) == (
        "omnibatch-fake",
        "2.0.1",
    )
    assert by_name["fake"]["builtin"] is False and by_name["openai"]["builtin"] is True
    (problem,) = [p for p in listing["problems"] if p["distribution"] == "omnibatch-boom"]
    assert "raised during registration" in problem["message"]


def test_the_table_shows_origin_and_warns_about_the_broken_plugin(site: Path) -> None:
    proc = run(site, ["-m", "omnibatch.cli", "providers"], COLUMNS="200")
    assert proc.returncode == 0, proc.stderr
    line = next(row for row in proc.stdout.splitlines() if row.startswith("fake "))
    assert "omnibatch-fake 2.0.1" in line
    assert "plugin 'boom' from omnibatch-boom 9.9.9" in proc.stdout + proc.stderr


def test_disable_and_allow_list_through_the_environment(site: Path) -> None:
    names = {p["name"] for p in providers(site, OMNIBATCH_DISABLE_PLUGINS="fake,boom")["providers"]}
    assert "fake" not in names and {"other", "openai", "mistral"} <= names
    listing = providers(site, OMNIBATCH_LOAD_PLUGINS="omnibatch-other")
    names = {p["name"] for p in listing["providers"]}
    assert "other" in names and "fake" not in names and "openai" in names
    assert listing["problems"] == []  # the broken plugin was never imported
    listing = providers(site, OMNIBATCH_DISABLE_PLUGINS="*")
    assert all(p["builtin"] for p in listing["providers"]) and listing["problems"] == []


def test_loading_is_lazy_and_a_broken_plugin_costs_nothing_until_used(tmp_path: Path) -> None:
    root = tmp_path / "site"
    mark = tmp_path / "imported.txt"
    make_dist(root, "omnibatch-marked", MARKS_IMPORT)
    make_dist(root, "omnibatch-boom", RAISES)
    script = """
import sys
import omnibatch, omnibatch.plugin
from omnibatch import BatchClient
from omnibatch.plugin import ProviderAdapter, hookimpl
from omnibatch import _plugins
print("built-before" if _plugins._registry is not None else "not-built")
client = BatchClient(provider="openai", api_key="sk-test", base_url="http://127.0.0.1:9")
print(client.provider)
print(sorted(p.origin.distribution for p in _plugins.get_registry().problems))
"""
    proc = run(root, ["-c", script], FAKE_PLUGIN_MARK=str(mark))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[0] == "not-built"
    assert lines[1] == "openai"  # the other providers work beside a broken plugin
    assert "omnibatch-boom" in proc.stdout
    assert mark.read_text() == "imported"  # building the registry imported it, not before

    mark.unlink()
    proc = run(
        root,
        ["-c", "import omnibatch, omnibatch.plugin; omnibatch.BatchClient"],
        FAKE_PLUGIN_MARK=str(mark),
    )
    assert proc.returncode == 0, proc.stderr
    assert not mark.exists(), "importing omnibatch must not load plugins"
