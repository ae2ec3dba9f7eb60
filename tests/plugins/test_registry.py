"""Registry guard rails, from the outside: fake distributions on sys.path, discovered through the
real ``importlib.metadata`` entry points, next to the built-in providers."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnibatch import PluginError, UnknownProviderError
from omnibatch._plugins import DISABLE_ENV, LOAD_ENV, Registry, build_registry, get_registry

from ._fakes import (
    BAD_DIALECT,
    DUP_DIALECT,
    EXTRA_ARGUMENT,
    GOOD,
    IMPORT_FAILS,
    MISSING_METHOD,
    MISSPELLED_HOOK,
    RAISES,
    UNMAPPED_STATUS,
    make_dist,
)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for fake distributions; the blocking variables start unset."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    monkeypatch.delenv(LOAD_ENV, raising=False)
    yield root
    importlib.invalidate_caches()


def problems_of(registry: Registry, distribution: str) -> list[str]:
    return [str(p) for p in registry.problems if p.origin.distribution == distribution]


def test_a_third_party_provider_is_found_with_its_distribution(site: Path) -> None:
    module = make_dist(site, "omnibatch-fake", GOOD, version="1.2.3")
    registry = build_registry()
    adapter = registry.provider("fake")
    assert adapter.__module__ == module and adapter.name == "fake"
    origin = registry.origin_of("fake")
    assert (origin.plugin, origin.distribution, origin.version) == (
        "fake",
        "omnibatch-fake",
        "1.2.3",
    )
    assert not origin.builtin
    assert str(origin) == "plugin 'fake' from omnibatch-fake 1.2.3"
    assert registry.origin_of("openai").builtin  # the built-ins take the same road
    assert registry.problems == []


def test_a_duplicate_name_names_both_distributions_and_spares_the_others(site: Path) -> None:
    make_dist(site, "omnibatch-dup", GOOD, plugin="dup", provider="openai", version="0.0.1")
    registry = build_registry()
    with pytest.raises(PluginError) as caught:
        registry.provider("openai")
    message = str(caught.value)
    assert "omnibatch 0.1.0" in message and "omnibatch-dup 0.0.1" in message
    assert DISABLE_ENV in message  # says how to fix it
    assert registry.provider("mistral").name == "mistral"
    assert any("already registered" in p for p in problems_of(registry, "omnibatch-dup"))


def test_two_third_party_plugins_with_one_name_conflict(site: Path) -> None:
    make_dist(site, "omnibatch-one", GOOD, plugin="one", provider="same")
    make_dist(site, "omnibatch-two", GOOD, plugin="two", provider="same")
    registry = build_registry()
    with pytest.raises(PluginError, match=r"omnibatch-one 1\.2\.3 and plugin 'two'"):
        registry.provider("same")
    assert registry.provider("openai").name == "openai"


def test_a_missing_method_is_named_with_the_distribution(site: Path) -> None:
    make_dist(site, "omnibatch-half", MISSING_METHOD)
    registry = build_registry()
    (problem,) = problems_of(registry, "omnibatch-half")
    assert problem.startswith("plugin 'half' from omnibatch-half 1.2.3:")
    assert "does not implement cancel, create, list_batches" in problem
    with pytest.raises(UnknownProviderError) as caught:
        registry.provider("half")
    assert "omnibatch-half" in str(caught.value)  # the lookup points at the broken plugin
    assert registry.provider("openai").name == "openai"


def test_an_unmapped_documented_status_is_refused(site: Path) -> None:
    make_dist(site, "omnibatch-partial", UNMAPPED_STATUS)
    registry = build_registry()
    (problem,) = problems_of(registry, "omnibatch-partial")
    assert "does not map documented status(es) ['paused']; add each to status_map" in problem
    assert "partial" not in registry.providers


def test_raising_during_registration_breaks_nothing_else(site: Path) -> None:
    make_dist(site, "omnibatch-boom", RAISES)
    make_dist(site, "omnibatch-fine", GOOD)
    registry = build_registry()
    (problem,) = problems_of(registry, "omnibatch-boom")
    assert "raised during registration" in problem and "boom while registering" in problem
    assert registry.provider("fine").name == "fine"
    assert registry.provider("mistral").name == "mistral"


def test_an_import_error_is_reported_not_raised(site: Path) -> None:
    module = make_dist(site, "omnibatch-needs-more", IMPORT_FAILS, plugin="needs")
    registry = build_registry()
    (problem,) = problems_of(registry, "omnibatch-needs-more")
    assert f"could not import {module}" in problem and "not installed" in problem
    assert registry.provider("openai").name == "openai"


def test_a_misspelled_hook_fails_loudly_with_the_right_names(site: Path) -> None:
    make_dist(site, "omnibatch-typo", MISSPELLED_HOOK)
    registry = build_registry()
    (problem,) = problems_of(registry, "omnibatch-typo")
    assert "register_provider" in problem
    assert "hooks are: register_emulator_dialects, register_providers" in problem


def test_a_hook_with_an_unknown_argument_is_refused(site: Path) -> None:
    make_dist(site, "omnibatch-extra", EXTRA_ARGUMENT)
    registry = build_registry()
    (problem,) = problems_of(registry, "omnibatch-extra")
    assert "invalid hook implementation" in problem and "model_aliases" in problem
    assert registry.provider("openai").name == "openai"


def test_a_second_plugin_with_the_same_entry_point_name_is_skipped(site: Path) -> None:
    make_dist(site, "omnibatch-first", GOOD, plugin="twin", provider="first")
    make_dist(site, "omnibatch-second", GOOD, plugin="twin", provider="second")
    registry = build_registry()
    assert ("first" in registry.providers) != ("second" in registry.providers)
    problems = [str(p) for p in registry.problems]
    assert len(problems) == 1 and "plugin name 'twin' is already used by" in problems[0]


def test_a_broken_emulator_dialect_is_refused(site: Path) -> None:
    make_dist(site, "omnibatch-nodialect", BAD_DIALECT)
    registry = build_registry()
    (problem,) = problems_of(registry, "omnibatch-nodialect")
    assert "NoPrefix.prefix must be a path" in problem
    assert "nodialect" not in registry.dialects and "openai" in registry.dialects


def test_a_builtin_emulator_dialect_is_never_shadowed(site: Path) -> None:
    make_dist(site, "omnibatch-shadow", DUP_DIALECT)
    registry = build_registry()
    assert registry.dialects["openai"].origin.builtin
    assert registry.dialects["openai"].dialect.prefix == "/openai"
    (problem,) = problems_of(registry, "omnibatch-shadow")
    assert "emulator dialect 'openai' is already registered by plugin 'openai' from omnibatch" in (
        problem
    )


@pytest.mark.parametrize("blocked", ["fake", "omnibatch-fake", " other , fake "])
def test_disable_by_plugin_or_distribution(
    site: Path, monkeypatch: pytest.MonkeyPatch, blocked: str
) -> None:
    module = make_dist(site, "omnibatch-fake", GOOD)
    monkeypatch.setenv(DISABLE_ENV, blocked)
    registry = build_registry()
    assert "fake" not in registry.providers
    assert registry.problems == []
    assert module not in __import__("sys").modules  # a blocked plugin is never imported
    assert {"openai", "mistral"} <= set(registry.providers)


def test_disable_star_blocks_every_third_party_plugin_but_no_builtin(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(site, "omnibatch-fake", GOOD)
    make_dist(site, "omnibatch-boom", RAISES)
    monkeypatch.setenv(DISABLE_ENV, "*")
    registry = build_registry()
    assert {"openai", "mistral"} <= set(registry.providers)
    assert "fake" not in registry.providers and registry.problems == []


def test_load_allow_list(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dist(site, "omnibatch-fake", GOOD)
    make_dist(site, "omnibatch-other", GOOD)
    monkeypatch.setenv(LOAD_ENV, "omnibatch-other")
    registry = build_registry()
    assert "other" in registry.providers and "fake" not in registry.providers
    assert {"openai", "mistral"} <= set(registry.providers)  # built-ins always load
    monkeypatch.setenv(LOAD_ENV, "")
    registry = build_registry()
    assert not {"other", "fake"} & set(registry.providers)
    assert {"openai", "mistral"} <= set(registry.providers)


def test_the_process_registry_is_built_once_and_on_demand(site: Path) -> None:
    make_dist(site, "omnibatch-fake", GOOD)
    first = get_registry()
    assert get_registry() is first
    assert first.provider("fake").name == "fake"
