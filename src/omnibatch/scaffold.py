"""Render the provider plugin template (``omnibatch plugin new NAME``).

The template ships in the package (``omnibatch/plugin_template/``) as plain files ending in
``.tmpl``. Rendering replaces ``{{placeholder}}`` in file contents and paths, drops ``.tmpl``,
and turns a leading ``dot-`` into ``.`` (hidden files are kept out of the wheel's way). The
result is a package that installs and passes its own contract suite before any edit.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["TEMPLATE_PACKAGE", "plugin_context", "render_plugin", "render_text"]

TEMPLATE_PACKAGE = "omnibatch"
TEMPLATE_DIR = "plugin_template"
COMPAT_DIR = "plugin_template_compat"
"""Overlay for ``--openai-compatible``: facts, adapter and dialect on the OpenAI-compatible
base replace the generic template's adapter, status map, dialect and adapter tests."""
_GENERIC_ONLY = (
    "src/{{module}}/adapter.py.tmpl",
    "src/{{module}}/dialect.py.tmpl",
    "src/{{module}}/status.py.tmpl",
    "tests/test_adapter.py.tmpl",
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


def plugin_context(name: str, display_name: str | None = None) -> dict[str, str]:
    """The placeholder values for provider ``name``; raises ``ValueError`` for a bad name."""
    if not _NAME.match(name):
        raise ValueError(
            f"provider name {name!r} is not valid: use lower-case letters, digits and '_', "
            "starting with a letter (e.g. 'acme' or 'acme_cloud'), at most 20 characters"
        )
    from omnibatch import __version__
    from omnibatch.plugin import PLUGIN_API_VERSION

    major, minor = (int(part) for part in __version__.split(".")[:2])
    # Before 1.0 a minor release may break plugins: pin to the current minor series.
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    words = name.split("_")
    return {
        "name": name,
        "module": f"omnibatch_{name}",
        "distribution": f"omnibatch-{name.replace('_', '-')}",
        "class_prefix": "".join(word.capitalize() for word in words),
        "display_name": display_name or " ".join(word.capitalize() for word in words),
        "env_prefix": name.upper(),
        "omnibatch_requirement": f"omnibatch>={major}.{minor},<{upper}",
        "plugin_api_version": PLUGIN_API_VERSION,
    }


def render_text(text: str, context: dict[str, str], *, where: str = "template") -> str:
    """Replace every ``{{key}}``; an unknown key is an error naming it and ``where``."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in context:
            known = ", ".join(sorted(context))
            raise KeyError(f"{where}: unknown placeholder {{{{{key}}}}} (known: {known})")
        return context[key]

    return _PLACEHOLDER.sub(value, text)


def _target(relative: str, context: dict[str, str]) -> str:
    parts = []
    for part in relative.split("/"):
        part = render_text(part, context, where=relative)
        if part.startswith("dot-"):
            part = "." + part[len("dot-") :]
        parts.append(part.removesuffix(".tmpl"))
    return "/".join(parts)


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        relative = f"{prefix}{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                found.extend(_walk(child, relative + "/"))
        elif child.name.endswith(".tmpl"):
            found.append((relative, child))
    return found


def template_files(*, openai_compatible: bool = False) -> list[tuple[str, Traversable]]:
    """Every template file as ``(path relative to the template, resource)``."""
    found = _walk(files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR))
    if not openai_compatible:
        return found
    kept = [(rel, res) for rel, res in found if rel not in _GENERIC_ONLY]
    return kept + _walk(files(TEMPLATE_PACKAGE).joinpath(COMPAT_DIR))


def render_plugin(
    name: str,
    dest: Path,
    *,
    display_name: str | None = None,
    force: bool = False,
    check_installed: bool = True,
    openai_compatible: bool = False,
) -> Path:
    """Render a new provider package for ``name`` into ``dest/omnibatch-<name>``; returns it.
    With ``openai_compatible`` the provider is a facts object on the OpenAI-compatible base.

    Refuses (``FileExistsError``) to write into a non-empty folder unless ``force``, and
    (``ValueError``) a name that is invalid or, with ``check_installed``, already used by an
    installed provider.
    """
    context = plugin_context(name, display_name)
    if check_installed:
        from omnibatch._plugins import get_registry

        registry = get_registry()
        if name in registry.providers:
            raise ValueError(
                f"a provider named {name!r} is already installed "
                f"({registry.origin_of(name)}); choose another name"
            )
    root = Path(dest) / context["distribution"]
    if root.exists() and any(root.iterdir()) and not force:
        raise FileExistsError(f"{root} already exists and is not empty; pass --force to overwrite")
    for relative, resource in template_files(openai_compatible=openai_compatible):
        target = root / _target(relative, context)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_text(resource.read_text("utf-8"), context, where=relative))
    return root
