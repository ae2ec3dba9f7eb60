"""The documentation's generated tables: each provider page's settings, limits, capabilities and
status map, rendered from the adapter so the docs cannot drift from the code.

A generated block sits between two markers in a Markdown page::

    <!-- generated: status-map -->
    | raw status | normalized |
    ...
    <!-- end generated -->

``python -m omnibatch._docs_tables`` rewrites every block in ``docs/``; ``--check`` lists the
stale ones and exits 1. The test suite and the docs build (``docs/hooks.py``) run the check, so a
stale page fails both. Any table kind added to :data:`TABLES` is available to every page.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from pathlib import Path

from omnibatch._capabilities import comparison_table
from omnibatch.adapter import Capabilities, ProviderAdapter, ProviderLimits

__all__ = ["ENVIRONMENT", "GLOBAL_TABLES", "TABLES", "render_page", "stale_pages", "table"]

_BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<kind>[a-z-]+)(?: (?P<arg>[a-z0-9_-]+))? -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- end generated -->)",
    re.S,
)
# A provider page is docs/providers/<name>.md: its blocks describe that provider.
_PROVIDER_PAGE = re.compile(r"providers/(?P<name>[a-z0-9_-]+)\.md$")


def _md(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _code(value: str | None) -> str:
    return f"`{value}`" if value else ""


def settings_table(adapter: type[ProviderAdapter]) -> str:
    key_default = "required" if adapter.requires_api_key else "not needed"
    rows = [
        ["API key", "`api_key=`", _code(adapter.api_key_env), key_default],
        ["base URL", "`base_url=`", _code(adapter.base_url_env), _code(adapter.default_base_url)],
        ["emulator path", "", f"`OMNIBATCH_EMULATOR_URL` + `{adapter.emulator_prefix}`", ""],
    ]
    return _md(("setting", "argument", "environment", "default"), rows)


_LIMIT_WORDS = {
    "max_requests": "requests per batch",
    "max_bytes": "bytes per input file",
    "max_metadata_pairs": "metadata pairs",
    "max_metadata_key_length": "metadata key length",
    "max_metadata_value_length": "metadata value length",
    "custom_id_pattern": "custom_id pattern",
}


def _size(value: int) -> str:
    if value % 2**20 == 0:
        return f"{value // 2**20:,} MiB"
    return f"{value / 1_000_000:g} MB"


def limits_table(adapter: type[ProviderAdapter]) -> str:
    limits: ProviderLimits = adapter.limits
    rows = []
    for item in fields(ProviderLimits):
        value = getattr(limits, item.name)
        if isinstance(value, int):
            shown = f"{value:,}"
            if item.name == "max_bytes":
                shown += f" ({_size(value)})"
        else:
            shown = _code(value) or "no limit"
        rows.append([_LIMIT_WORDS.get(item.name, item.name), shown])
    rows.append(["endpoints", ", ".join(f"`{e}`" for e in sorted(adapter.endpoints))])
    return _md(("limit", "value"), rows)


def capabilities_table(adapter: type[ProviderAdapter]) -> str:
    caps: Capabilities = adapter.capabilities
    rows = [[f"`{f.name}`", "yes" if getattr(caps, f.name) else "no"] for f in fields(Capabilities)]
    return _md(("capability", "supported"), rows)


def status_table(adapter: type[ProviderAdapter]) -> str:
    rows = [[f"`{raw}`", f"`{status.value}`"] for raw, status in adapter.status_map.items()]
    return _md(("raw status", "normalized"), rows)


TABLES: dict[str, Callable[[type[ProviderAdapter]], str]] = {
    "settings": settings_table,
    "limits": limits_table,
    "capabilities": capabilities_table,
    "status-map": status_table,
}


def builtin_adapters() -> list[type[ProviderAdapter]]:
    """The providers shipped with omnibatch, by name: what the docs describe (third-party
    plugins installed beside omnibatch document themselves)."""
    from omnibatch._plugins import get_registry

    registry = get_registry()
    return [
        entry.adapter for name, entry in sorted(registry.providers.items()) if entry.origin.builtin
    ]


# omnibatch's own variables; the providers' come from their adapters. A test checks that every
# OMNIBATCH_* name in the source is here.
ENVIRONMENT = {
    "OMNIBATCH_PROVIDER": "the provider when none is passed (`--provider`, `provider=`)",
    "OMNIBATCH_CONFIG": "the config file to read instead of the project's and the user's",
    "OMNIBATCH_EMULATOR_URL": "root URL of an `omnibatch emulator serve`: every provider then "
    "talks to it (at its emulator path), with the emulator's key, never a real one",
    "OMNIBATCH_EMULATOR_API_KEY": "the key `omnibatch emulator serve --api-key` accepts, and "
    "the one sent to it",
    "OMNIBATCH_HOME": "the data folder: the ledger of jobs and their working files",
    "OMNIBATCH_DISABLE_PLUGINS": "plugin names not to load (`*`: every plugin not shipped "
    "with omnibatch)",
    "OMNIBATCH_LOAD_PLUGINS": "when set, only these third-party plugins load",
    "OMNIBATCH_CRASH_AT": "tests only: make the job runner crash at a named step",
}


def environment_table() -> str:
    rows = [[f"`{name}`", meaning] for name, meaning in ENVIRONMENT.items()]
    for adapter in builtin_adapters():
        names = [n for n in (adapter.api_key_env, adapter.base_url_env) if n]
        if names:
            shown = adapter.display_name or adapter.name
            rows.append(
                [
                    ", ".join(f"`{n}`" for n in names),
                    f"{shown}: key and base URL (default `{adapter.default_base_url}`)",
                ]
            )
    return _md(("variable", "meaning"), rows)


def status_overview_table() -> str:
    """Every built-in provider's raw statuses per normalized status."""
    from omnibatch._status import BatchStatus

    adapters = builtin_adapters()
    header = ["normalized", "terminal", *(a.display_name or a.name for a in adapters)]
    rows = []
    for status in BatchStatus:
        cells = [f"`{status.value}`", "yes" if status.is_terminal else "no"]
        for adapter in adapters:
            raws = [raw for raw, mapped in adapter.status_map.items() if mapped is status]
            cells.append(", ".join(f"`{r}`" for r in raws))
        rows.append(cells)
    return _md(header, rows)


def emulator_dialects_table() -> str:
    rows = [
        [
            f"`{a.name}`",
            a.display_name or a.name,
            f"`http://HOST:PORT{a.emulator_prefix}`",
            f"`{a.default_base_url}`",
        ]
        for a in builtin_adapters()
    ]
    return _md(("dialect", "provider", "base URL on the emulator", "real base URL"), rows)


# Tables about omnibatch as a whole: their blocks name no provider.
GLOBAL_TABLES: dict[str, Callable[[], str]] = {
    "environment": environment_table,
    "status-overview": status_overview_table,
    "emulator-dialects": emulator_dialects_table,
    "provider-comparison": lambda: comparison_table(builtin_adapters()),
}


def table(kind: str, provider: str | None = None) -> str:
    """The Markdown of one generated table (for one installed provider, if it is per provider)."""
    from omnibatch._plugins import get_registry

    if kind in GLOBAL_TABLES:
        return GLOBAL_TABLES[kind]()
    if kind not in TABLES:
        known = ", ".join([*TABLES, *GLOBAL_TABLES])
        raise KeyError(f"unknown generated table {kind!r} (known: {known})")
    if provider is None:
        raise ValueError(f"the generated table {kind!r} needs a provider")
    return TABLES[kind](get_registry().provider(provider))


def render_page(text: str, page: Path) -> str:
    """``text`` with every generated block re-rendered. A block names its provider
    (``<!-- generated: limits openai -->``) or takes it from a ``providers/<name>.md`` page."""
    default = _PROVIDER_PAGE.search(page.as_posix())

    def replace(match: re.Match[str]) -> str:
        kind = match.group("kind")
        provider = match.group("arg") or (default.group("name") if default else None)
        if provider is None and kind not in GLOBAL_TABLES:
            raise ValueError(f"{page}: generated block {kind!r} names no provider")
        body = table(kind, provider)
        return match.group("open") + body + match.group("close")

    return _BLOCK.sub(replace, text)


def _pages(docs: Path) -> Iterator[Path]:
    yield from sorted(docs.rglob("*.md"))


def stale_pages(docs: Path) -> list[Path]:
    """The pages under ``docs`` whose generated blocks differ from the code."""
    return [
        page
        for page in _pages(docs)
        if render_page(text := page.read_text(encoding="utf-8"), page) != text
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    rest = [a for a in args if a != "--check"]
    docs = Path(rest[0]) if rest else Path("docs")
    stale = stale_pages(docs)
    if check:
        for page in stale:
            print(f"stale generated table in {page}: run python -m omnibatch._docs_tables")
        return 1 if stale else 0
    for page in stale:
        page.write_text(render_page(page.read_text(encoding="utf-8"), page), encoding="utf-8")
        print(f"regenerated {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
