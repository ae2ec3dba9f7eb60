"""The documentation site builds with ``mkdocs build --strict``: a broken link, a missing page in
the navigation, an API reference entry that no longer resolves or a stale generated table fails
the build, and so this test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omnibatch._docs_tables import render_page, stale_pages

from ..conftest import REPO


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    result = _build(REPO, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    reference = (tmp_path / "site" / "reference" / "client" / "index.html").read_text("utf-8")
    # mkdocstrings rendered the client's docstrings, methods included.
    assert "BatchClient" in reference and "submit" in reference
    assert (tmp_path / "site" / "providers" / "mistral" / "index.html").is_file()


def test_broken_link_and_stale_table_fail_the_build(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    for sub in ("src", "providers"):
        (root / sub).symlink_to(REPO / sub)
    page = root / "docs" / "providers" / "mistral.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("| `SUCCESS` | `succeeded` |", "| `SUCCESS` | `failed` |"))
    stale = _build(root, tmp_path / "site1")
    assert stale.returncode != 0
    assert "generated table is stale" in stale.stdout + stale.stderr
    page.write_text(text + "\nSee [nowhere](no-such-page.md).\n", encoding="utf-8")
    broken = _build(root, tmp_path / "site2")
    assert broken.returncode != 0
    assert "no-such-page.md" in broken.stdout + broken.stderr


def test_generated_tables_are_current() -> None:
    assert stale_pages(REPO / "docs") == []


def test_render_page_fills_blocks_from_the_adapter(tmp_path: Path) -> None:
    page = tmp_path / "providers" / "openai.md"
    text = "x\n<!-- generated: status-map -->\nold\n<!-- end generated -->\n"
    rendered = render_page(text, page)
    assert "old" not in rendered
    assert "| `in_progress` | `running` |" in rendered
    # A block may name its provider explicitly, on any page.
    named = render_page(text.replace("status-map", "limits anthropic"), tmp_path / "x.md")
    assert "100,000" in named and "256 MiB" in named


def test_environment_table_names_every_variable_the_code_reads() -> None:
    import re

    from omnibatch._docs_tables import ENVIRONMENT

    used: set[str] = set()
    for path in (REPO / "src" / "omnibatch").rglob("*.py"):
        used |= set(re.findall(r"\bOMNIBATCH_[A-Z_]+[A-Z]\b", path.read_text(encoding="utf-8")))
    assert used - set(ENVIRONMENT) == set(), "document these in omnibatch._docs_tables.ENVIRONMENT"
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in ENVIRONMENT:
        assert f"`{name}`" in page
