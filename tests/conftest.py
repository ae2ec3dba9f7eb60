"""Shared test helpers: where the reference material lives, and a clean plugin registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference material {path} is not present (it lives beside the repo in CI)")
    return path


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    """Each test sees the installed plugins as they are, unaffected by earlier tests."""
    from omnibatch._plugins import reset_registry

    reset_registry()
    yield
    reset_registry()


@pytest.fixture(autouse=True)
def _no_user_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The developer's own ~/.config/omnibatch/config.toml never reaches a test (nor the CLI
    subprocesses it starts, which inherit the environment)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "xdg-config"))
