"""``import omnibatch`` stays light: no plugin loading, emulator, CLI or rich at import."""

from __future__ import annotations

import json
import subprocess
import sys

import omnibatch


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_is_lazy() -> None:
    loaded = _modules_after("import omnibatch")
    assert not {
        m for m in loaded if m.startswith(("omnibatch.", "httpx", "pydantic", "rich", "pluggy"))
    }


def test_client_import_does_not_load_plugins_or_emulator() -> None:
    loaded = _modules_after("from omnibatch import BatchClient, AsyncBatchClient")
    assert "omnibatch.client" in loaded
    # (httpx itself imports rich when it is installed, so rich is not ours to forbid here.)
    forbidden = {
        "omnibatch._plugins",
        "omnibatch.emulator",
        "omnibatch.cli",
        "omnibatch_openai",
        "omnibatch_mistral",
        "pluggy",
        "sqlite3",
    }
    assert not loaded & forbidden


def test_public_names_are_exported_and_sorted() -> None:
    public = [n for n in omnibatch.__all__ if not n.startswith("_")]
    assert public == sorted(public)
    assert set(omnibatch.__all__) == set(omnibatch._EXPORTS) | {"__version__"}
    for name in omnibatch.__all__:
        assert getattr(omnibatch, name) is not None
