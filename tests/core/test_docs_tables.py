"""Every provider page's status table says exactly what the adapter's status_map does."""

from __future__ import annotations

import re

import pytest

from omnibatch._plugins import get_registry

from ..conftest import REPO

DOCS = REPO / "docs" / "providers"


def _table(text: str) -> dict[str, str]:
    section = text[text.index("## Status mapping") :]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([^`]+)`\s*\|\s*`([^`]+)`", line)
        if match:
            rows[match.group(1)] = match.group(2)
        elif rows and not line.startswith("|"):
            break
    return rows


@pytest.mark.parametrize(
    "name",
    [
        "openai",
        "mistral",
        "anthropic",
        "gemini",
        "azure",
        "groq",
        "deepinfra",
        "dashscope",
        "together",
        "fireworks",
        "openrouter",
        "cohere",
    ],
)
def test_status_table_matches_code(name: str) -> None:
    adapter = get_registry().provider(name)
    table = _table((DOCS / f"{name}.md").read_text(encoding="utf-8"))
    assert table == {raw: status.value for raw, status in adapter.status_map.items()}
