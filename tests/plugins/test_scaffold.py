"""The template renderer and ``omnibatch plugin new``, without installing anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omnibatch.scaffold import plugin_context, render_plugin, render_text, template_files


def test_every_template_file_renders_without_unknown_placeholders(tmp_path: Path) -> None:
    root = render_plugin("acme_cloud", tmp_path, display_name="Acme Cloud AI")
    rendered = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert rendered == [
        ".github/workflows/ci.yml",
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/omnibatch_acme_cloud/__init__.py",
        "src/omnibatch_acme_cloud/adapter.py",
        "src/omnibatch_acme_cloud/dialect.py",
        "src/omnibatch_acme_cloud/py.typed",
        "src/omnibatch_acme_cloud/status.py",
        "tests/test_adapter.py",
        "tests/test_contract.py",
    ]
    assert len(template_files()) == len(rendered)
    for path in root.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text().replace("${{ matrix", ""), path
    pyproject = (root / "pyproject.toml").read_text()
    assert 'acme_cloud = "omnibatch_acme_cloud"' in pyproject
    assert 'name = "omnibatch-acme-cloud"' in pyproject
    assert (
        "class AcmeCloudAdapter(ProviderAdapter)"
        in (root / "src/omnibatch_acme_cloud/adapter.py").read_text()
    )
    readme = (root / "README.md").read_text()
    assert "ACME_CLOUD_API_KEY" in readme and "Acme Cloud AI" in readme
    ci = (root / ".github/workflows/ci.yml").read_text()
    assert "${{ matrix.python-version }}" in ci and "grep -w acme_cloud" in ci


def test_the_requirement_pins_the_current_minor_series() -> None:
    from omnibatch import __version__

    major, minor = __version__.split(".")[:2]
    requirement = plugin_context("acme")["omnibatch_requirement"]
    assert requirement.startswith(f"omnibatch>={major}.{minor},<")


@pytest.mark.parametrize("name", ["Acme", "1acme", "acme-cloud", "a" * 21, ""])
def test_bad_names_are_refused_with_the_rule(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lower-case letters, digits and '_'"):
        render_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_installed_provider_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'mistral' is already installed \(plugin 'mistral' from"):
        render_plugin("mistral", tmp_path)


def test_existing_content_needs_force(tmp_path: Path) -> None:
    root = render_plugin("acme", tmp_path)
    (root / "README.md").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        render_plugin("acme", tmp_path)
    assert (root / "README.md").read_text() == "mine"
    render_plugin("acme", tmp_path, force=True)
    assert (root / "README.md").read_text().startswith("# omnibatch-acme")


def test_an_unknown_placeholder_names_itself_and_the_file() -> None:
    with pytest.raises(KeyError, match=r"x\.tmpl: unknown placeholder \{\{nope\}\}"):
        render_text("a {{nope}} b", {"name": "acme"}, where="x.tmpl")


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnibatch.cli_plugin", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_plugin_new_on_the_command_line(tmp_path: Path) -> None:
    done = cli("new", "acme", "--dest", tmp_path, "--display-name", "Acme Batch")
    assert done.returncode == 0, done.stderr
    assert f"created {tmp_path / 'omnibatch-acme'}" in done.stdout
    assert "WIRE DETAIL" in done.stdout
    assert "Acme Batch" in (tmp_path / "omnibatch-acme" / "README.md").read_text()
    again = cli("new", "acme", "--dest", tmp_path)
    assert again.returncode == 2 and "already exists and is not empty" in again.stderr
    bad = cli("new", "Acme", "--dest", tmp_path)
    assert bad.returncode == 2 and "is not valid" in bad.stderr
    help_text = cli("new", "--help")
    assert help_text.returncode == 0 and "--force" in help_text.stdout
