"""The plugin-facing API is one versioned module, and it never changes silently."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import omnibatch.plugin as api

from . import api_surface

REPO = Path(__file__).resolve().parents[2]
UPDATE = "python -m tests.plugins.api_surface --update"


def test_all_is_complete_and_resolves() -> None:
    assert len(set(api.__all__)) == len(api.__all__)
    assert set(api.__all__) == {*api._EXPORTS, "PLUGIN_API_VERSION"}
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert re.fullmatch(r"\d+\.\d+", api.PLUGIN_API_VERSION)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        api.Nope  # noqa: B018


def test_the_names_are_the_core_objects_themselves() -> None:
    from omnibatch.adapter import ProviderAdapter
    from omnibatch.hookspecs import hookimpl
    from omnibatch.testing import ProviderContract

    assert api.ProviderAdapter is ProviderAdapter
    assert api.hookimpl is hookimpl
    assert api.ProviderContract is ProviderContract


def test_importing_it_is_cheap() -> None:
    script = (
        "import sys, omnibatch.plugin\n"
        "heavy = [m for m in ('pydantic', 'httpx', 'pytest', 'omnibatch.emulator') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]", f"import omnibatch.plugin loaded {out.strip()}"


def test_the_surface_matches_the_recorded_snapshot() -> None:
    recorded = api_surface.load()
    changes = api_surface.diff(recorded["surface"], api_surface.surface())
    assert not changes, (
        "the plugin API changed: " + "; ".join(changes) + ". If intended, bump "
        "PLUGIN_API_VERSION in src/omnibatch/plugin/__init__.py (minor for additions, major "
        "otherwise), "
        f"add a CHANGELOG.md entry naming 'plugin API <version>', then run `{UPDATE}`."
    )


def test_the_snapshot_is_of_the_current_version() -> None:
    assert api_surface.load()["version"] == api.PLUGIN_API_VERSION, (
        f"PLUGIN_API_VERSION was bumped without recording the surface: run `{UPDATE}`"
    )


def changelog_names(text: str, version: str) -> bool:
    return re.search(rf"plugin API {re.escape(version)}\b", text, re.IGNORECASE) is not None


def test_changelog_check_recognises_an_entry() -> None:
    assert changelog_names("- Plugin API 1.2: `Dialect` helpers added.", "1.2")
    assert not changelog_names("- Plugin API 1.20: something", "1.2")
    assert not changelog_names("- plugin api: nothing versioned", "1.2")


def test_the_changelog_records_the_current_plugin_api_version() -> None:
    changelog = REPO / "CHANGELOG.md"
    assert changelog.is_file(), "CHANGELOG.md is missing"
    assert changelog_names(changelog.read_text(), api.PLUGIN_API_VERSION), (
        f"CHANGELOG.md has no entry for plugin API {api.PLUGIN_API_VERSION}: every version of "
        "omnibatch.plugin is recorded there (e.g. '- Plugin API 1.0: ...')"
    )
