"""Each provider's capabilities as data: what ``omnibatch providers --json`` prints and what
the generated comparison table in ``docs/providers/comparison.md`` shows (rendered by
:mod:`omnibatch._docs_tables` as the ``provider-comparison`` table)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from omnibatch.adapter import ProviderAdapter

__all__ = ["comparison_table", "provider_facts"]


def provider_facts(cls: type[ProviderAdapter]) -> dict[str, Any]:
    """The declared facts of one adapter class, as plain JSON-ready data."""
    data: dict[str, Any] = {
        "base_url": cls.default_base_url,
        "api_key_env": cls.api_key_env,
        "endpoints": sorted(cls.endpoints),
        "completion_windows": list(cls.completion_windows),
        "limits": asdict(cls.limits),
        "capabilities": asdict(cls.capabilities),
        "statuses": sorted(cls.status_map),
    }
    facts = getattr(cls, "facts", None)
    describe = getattr(facts, "describe", None)
    if callable(describe):
        data["openai_compatible"] = describe()
        data["notes"] = getattr(facts, "docs_note", "")
    return data


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value // (1024 * 1024)} MB"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def comparison_table(classes: Iterable[type[ProviderAdapter]]) -> str:
    """The Markdown page comparing ``classes`` (sorted by name)."""
    rows = [
        "| provider | endpoints | windows | max requests | max bytes | metadata (idempotency) "
        "| cancel | list | delete files | input |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cls in sorted(classes, key=lambda c: c.name):
        caps, limits = cls.capabilities, cls.limits
        keyed = caps.metadata or caps.idempotency_key
        rows.append(
            f"| `{cls.name}` ({cls.display_name or cls.name}) "
            f"| {', '.join(f'`{e}`' for e in sorted(cls.endpoints))} "
            f"| {', '.join(cls.completion_windows)} "
            f"| {limits.max_requests if limits.max_requests is not None else '-'} "
            f"| {_mib(limits.max_bytes)} "
            f"| {_yes(keyed)} "
            f"| {_yes(caps.cancel)} | {_yes(caps.list_batches)} | {_yes(caps.delete_files)} "
            f"| {'file' if caps.file_upload else 'inline'} |"
        )
    notes = [
        f"- `{cls.name}`: {cls.facts.docs_note}"  # type: ignore[attr-defined]
        for cls in sorted(classes, key=lambda c: c.name)
        if getattr(getattr(cls, "facts", None), "docs_note", "")
    ]
    tail = "\n\nNotes:\n\n" + "\n".join(notes) + "\n" if notes else "\n"
    return "\n".join(rows) + tail
