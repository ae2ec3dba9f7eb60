"""OpenAI-compatible providers defined in the config file alone, with no code::

    [providers.mylab]
    kind = "openai-compatible"
    base_url = "https://llm.mylab.example/v1"
    api_key_env = "MYLAB_API_KEY"
    completion_windows = ["24h"]

Each such section becomes an adapter class and an emulator dialect class built on
:mod:`omnibatch.plugin.openai_compat`; the registry lists them with the config file as their
origin. Keys other than the facts below stay provider options, as in any section.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from omnibatch._exceptions import ConfigurationError

__all__ = ["COMPAT_KIND", "compat_sections", "config_adapter", "config_dialect", "config_facts"]

COMPAT_KIND = "openai-compatible"

_LISTS = ("endpoints", "completion_windows", "file_purposes")
_INTS = ("max_requests", "max_bytes", "max_metadata_pairs")
_STRS = ("display_name", "api_key_env", "auth_header", "auth_scheme", "pagination")
_BOOLS = ("metadata", "cancel", "list_files", "delete_files")


def compat_sections(providers: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The ``[providers.X]`` sections that define an OpenAI-compatible provider."""
    return {n: s for n, s in providers.items() if s.get("kind") == COMPAT_KIND}


def config_facts(name: str, section: Mapping[str, Any], path: Path | None) -> Any:
    """The :class:`~omnibatch.plugin.openai_compat.OpenAICompatFacts` a section describes."""
    from omnibatch.plugin.openai_compat import OpenAICompatFacts

    where = f"{path or 'config'}: [providers.{name}]"
    base_url = section.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f'{where} needs base_url = "https://HOST/PATH" (the API root, e.g. ending in /v1)'
        )
    values: dict[str, Any] = {}
    for key in _LISTS:
        if key in section:
            value = section[key]
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) for v in value)
            ):
                raise ConfigurationError(f'{where}: {key} must be a list of strings, e.g. ["24h"]')
            values[key] = tuple(value)
    for key, kinds in ((k, (int,)) for k in _INTS):
        if key in section:
            if not isinstance(section[key], kinds) or isinstance(section[key], bool):
                raise ConfigurationError(f"{where}: {key} must be an integer")
            values[key] = section[key]
    for key in _STRS:
        if key in section:
            if not isinstance(section[key], str):
                raise ConfigurationError(f"{where}: {key} must be a string")
            values[key] = section[key]
    for key in _BOOLS:
        if key in section:
            if not isinstance(section[key], bool):
                raise ConfigurationError(f"{where}: {key} must be true or false")
            values[key] = section[key]
    if values.get("pagination", "cursor") not in ("cursor", "none"):
        raise ConfigurationError(f'{where}: pagination must be "cursor" or "none"')
    prefix = urlsplit(base_url).path.rstrip("/") or ""
    values.setdefault("display_name", name)
    return OpenAICompatFacts(
        name=name,
        base_url=base_url.rstrip("/"),
        api_prefix=prefix,
        docs_note=f"defined in {path}" if path else "defined in the config file",
        **values,
    )


def config_adapter(facts: Any) -> type[Any]:
    """An adapter class for config-defined ``facts``."""
    from omnibatch.plugin.openai_compat import OpenAICompatAdapter

    name = "".join(part.capitalize() for part in facts.name.replace("-", "_").split("_"))
    return type(f"{name}Adapter", (OpenAICompatAdapter,), {"facts": facts, "__module__": __name__})


def config_dialect(facts: Any) -> type[Any]:
    """An emulator dialect class for config-defined ``facts`` (served at ``/<name><prefix>``)."""
    from omnibatch.plugin.openai_dialect import OpenAICompatDialect

    name = "".join(part.capitalize() for part in facts.name.replace("-", "_").split("_"))
    return type(f"{name}Dialect", (OpenAICompatDialect,), {"facts": facts, "__module__": __name__})
