"""``omnibatch config``: the settings in effect and where each one came from.

Keys are shown by the name of the variable that holds them, never by value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omnibatch.cli._app import EXIT_OK, State, cli, command

__all__ = ["explain"]

_NO_PROVIDER = "none: `omnibatch run` uses the embedded emulator; other verbs ask for --provider"


def _where(source: str | None, config: Any, key: str) -> str:
    """A resolver source, with "the config file" made exact: the file this value came from."""
    if source is None:
        return "default"
    if config.path is not None and source == str(config.path):
        origin = config.origin(key)
        return str(origin) if origin is not None else source
    return source


def _config_files(state: State) -> list[dict[str, Any]]:
    from omnibatch.config import CONFIG_ENV, user_config_path

    config = state.config
    read = {str(p) for p in config.files}
    explicit = state.config_path or os.environ.get(CONFIG_ENV)
    if explicit:
        via = "--config" if state.config_path else f"${CONFIG_ENV}"
        return [{"path": str(Path(explicit)), "kind": f"given by {via}", "read": True}]
    files: list[dict[str, Any]] = [{"path": str(user_config_path()), "kind": "user"}]
    project = Path.cwd() / "omnibatch.toml"
    pyproject = Path.cwd() / "pyproject.toml"
    if not project.is_file() and str(pyproject) in read:
        project = pyproject
    files.append({"path": str(project), "kind": "project"})
    for entry in files:
        entry["read"] = entry["path"] in read
    return files


def explain(state: State) -> dict[str, Any]:
    """Everything ``omnibatch config`` shows, as data (from the resolver every verb uses)."""
    from omnibatch.config import EMULATOR_URL_ENV, resolve_provider, resolve_provider_name
    from omnibatch.ledger import HOME_ENV, default_home, safe_url

    config = state.config
    emulator_url = os.environ.get(EMULATOR_URL_ENV)
    name = resolve_provider_name(state.provider, config)
    data: dict[str, Any] = {"provider": {"value": None, "source": _NO_PROVIDER}}
    if name is not None:
        settings = resolve_provider(state.provider, config=config, require_key=False)
        section = config.providers.get(settings.provider, {})
        sources = settings.sources
        provider_source = sources.get("provider")
        data["provider"] = {
            "value": settings.provider,
            "source": "--provider"
            if provider_source == "argument"
            else _where(provider_source, config, "provider"),
        }
        data["base_url"] = {
            "value": safe_url(settings.base_url),
            "source": _where(
                sources.get("base_url"), config, f"providers.{settings.provider}.base_url"
            ),
        }
        from omnibatch._plugins import get_registry

        cls = get_registry().provider(settings.provider)
        key_env = section.get("api_key_env") or cls.api_key_env
        key_source = sources.get("api_key")
        if key_source is None:
            key_source = f"${key_env} is not set" if key_env else "no key needed"
        data["api_key"] = {
            "variable": key_env,
            "variable_source": (
                _where(str(config.path), config, f"providers.{settings.provider}.api_key_env")
                if "api_key_env" in section
                else "adapter default"
            ),
            "set": bool(settings.api_key),
            "source": key_source,
            # On an emulator a real key is never sent: say which one was found and left out.
            "unused": sources.get("unused_api_key"),
        }
        data["options"] = {
            key: {
                "value": value,
                "source": _where(str(config.path), config, f"providers.{settings.provider}.{key}"),
            }
            for key, value in settings.options.items()
        }
    if emulator_url:
        data["emulator"] = {"value": safe_url(emulator_url), "source": f"${EMULATOR_URL_ENV}"}
    elif name is None:
        data["emulator"] = {"value": "embedded", "source": "no provider configured (run only)"}
    else:
        data["emulator"] = {"value": None, "source": "none: the provider's own API"}
    home = default_home()
    data["ledger"] = {
        "value": str(home / "ledger.sqlite3"),
        "source": f"${HOME_ENV}" if os.environ.get(HOME_ENV) else "default (user data folder)",
    }
    data["config_files"] = _config_files(state)
    return data


@command(cli, "config")
def config_cmd(state: State) -> int:
    """Show the settings in effect and where each came from: provider, base URL, the key's
    variable (never its value), emulator, ledger and the config files read."""
    data = explain(state)
    if state.json:
        state.out.json(data)
        return EXIT_OK
    rows: list[tuple[str, str, str]] = []

    def add(label: str, value: Any, source: str) -> None:
        rows.append((label, "-" if value is None else str(value), source))

    add("provider", data["provider"]["value"], data["provider"]["source"])
    if "base_url" in data:
        add("base URL", data["base_url"]["value"], data["base_url"]["source"])
        key = data["api_key"]
        shown = f"${key['variable']}" if key["variable"] else "-"
        add("API key", f"{shown} ({'set' if key['set'] else 'not set'})", key["source"])
        for option, entry in data["options"].items():
            add(f"option {option}", entry["value"], entry["source"])
    add("emulator", data["emulator"]["value"], data["emulator"]["source"])
    add("ledger", data["ledger"]["value"], data["ledger"]["source"])
    width = max(len(r[0]) for r in rows)
    for label, value, source in rows:
        state.out.line(f"{label.ljust(width)}  {value}  ({source})")
    state.out.line("config files (lowest precedence first):")
    for entry in data["config_files"]:
        status = "read" if entry["read"] else "not found"
        state.out.line(f"  {entry['kind']}: {entry['path']} ({status})")
    return EXIT_OK
