"""Fake installed distributions: a ``*.dist-info`` folder with ``entry_points.txt`` beside a
module, in a folder that tests put on ``sys.path`` (or ``PYTHONPATH``). Nothing is installed."""

from __future__ import annotations

import itertools
from pathlib import Path
from textwrap import dedent

_counter = itertools.count()

# A valid provider: the built-in OpenAI adapter under another name.
GOOD = """
from omnibatch.plugin import hookimpl
from omnibatch_openai.adapter import OpenAIAdapter


class Adapter(OpenAIAdapter):
    name = "{provider}"
    display_name = "Fake {provider}"


@hookimpl
def register_providers(register):
    register(Adapter)
"""

MISSING_METHOD = """
from omnibatch.plugin import ProviderAdapter, BatchStatus, hookimpl


class Adapter(ProviderAdapter):
    name = "{provider}"
    default_base_url = "https://example.invalid"
    status_map = {{"done": BatchStatus.SUCCEEDED}}

    def encode_request(self, request):
        return {{}}


@hookimpl
def register_providers(register):
    register(Adapter)
"""

UNMAPPED_STATUS = """
from omnibatch.plugin import BatchStatus, hookimpl
from omnibatch_openai.adapter import OpenAIAdapter


class Adapter(OpenAIAdapter):
    name = "{provider}"
    documented_statuses = frozenset({{*OpenAIAdapter.status_map, "paused"}})


@hookimpl
def register_providers(register):
    register(Adapter)
"""

RAISES = """
from omnibatch.plugin import hookimpl


@hookimpl
def register_providers(register):
    raise RuntimeError("boom while registering")
"""

IMPORT_FAILS = """
raise ImportError("this plugin needs a package that is not installed")
"""

MISSPELLED_HOOK = """
from omnibatch.plugin import hookimpl


@hookimpl
def register_provider(register):
    pass
"""

EXTRA_ARGUMENT = """
from omnibatch.plugin import hookimpl


@hookimpl
def register_providers(register, model_aliases):
    pass
"""

BAD_DIALECT = """
from omnibatch.plugin import hookimpl


class NoPrefix:
    name = "{provider}"

    def handle(self, engine, request, path):
        raise AssertionError


@hookimpl
def register_emulator_dialects(register):
    register(NoPrefix)
"""

# An emulator dialect under a built-in dialect's name.
DUP_DIALECT = """
from omnibatch.plugin import Dialect, hookimpl


class Shadow(Dialect):
    name = "openai"
    prefix = "/shadow"


@hookimpl
def register_emulator_dialects(register):
    register(Shadow)
"""

# Importing it leaves a mark, so tests can tell whether the registry was built.
MARKS_IMPORT = (
    """
import os
from pathlib import Path

Path(os.environ["FAKE_PLUGIN_MARK"]).write_text("imported")
"""
    + GOOD
)


def make_dist(
    root: Path,
    distribution: str,
    source: str,
    *,
    plugin: str | None = None,
    provider: str | None = None,
    version: str = "1.2.3",
) -> str:
    """Write distribution ``distribution`` with one ``omnibatch`` entry point (named ``plugin``,
    default: the provider name) pointing at a new module made from ``source``; returns the
    module name (unique per call, so ``sys.modules`` never serves a stale one)."""
    provider = provider or distribution.removeprefix("omnibatch-").replace("-", "_")
    module = f"fake_plugin_{provider}_{next(_counter)}_{root.name}".replace("-", "_")
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(dedent(source).format(provider=provider))
    info = root / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text(f"[omnibatch]\n{plugin or provider} = {module}\n")
    return module
