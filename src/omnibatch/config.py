"""Where settings come from: arguments, then environment, then a config file, then defaults.

Config file (``omnibatch.toml`` in the working directory, ``[tool.omnibatch]`` in
``pyproject.toml``, or the file named by ``--config`` / ``OMNIBATCH_CONFIG``)::

    provider = "mistral"              # the default provider

    [providers.mistral]
    base_url = "https://api.mistral.ai"
    api_key_env = "MISTRAL_API_KEY"   # which variable holds the key (keys don't belong in files)
    model = "mistral-small-latest"    # provider options: anything else is passed to the adapter

Environment:
    OMNIBATCH_PROVIDER       the provider when none is given as an argument
    OMNIBATCH_CONFIG         the config file
    OMNIBATCH_EMULATOR_URL   root URL of an ``omnibatch emulator serve``: every provider's base
                             URL becomes ROOT + its emulator prefix, with a placeholder key
    <PROVIDER>_API_KEY, <PROVIDER>_BASE_URL   as each adapter declares (OPENAI_API_KEY, ...)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibatch._exceptions import ConfigurationError

__all__ = [
    "EMULATOR_KEY",
    "EMULATOR_URL_ENV",
    "PROVIDER_ENV",
    "FileConfig",
    "ProviderSettings",
    "load_config",
    "resolve_provider_name",
    "resolve_settings",
]

PROVIDER_ENV = "OMNIBATCH_PROVIDER"
CONFIG_ENV = "OMNIBATCH_CONFIG"
EMULATOR_URL_ENV = "OMNIBATCH_EMULATOR_URL"
EMULATOR_KEY = "omnibatch-emulator"


@dataclass(frozen=True)
class FileConfig:
    """The parsed config file (empty when there is none)."""

    path: Path | None = None
    provider: str | None = None
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderSettings:
    """Resolved settings for one provider. The key is kept out of ``repr``."""

    provider: str
    base_url: str | None
    api_key: str | None = field(repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    emulated: bool = False
    sources: Mapping[str, str] = field(default_factory=dict)


def load_config(
    path: str | os.PathLike[str] | None = None, cwd: Path | None = None, *, register: bool = True
) -> FileConfig:
    """Read the config file: ``path``, else ``$OMNIBATCH_CONFIG``, else ./omnibatch.toml, else
    ``[tool.omnibatch]`` of ./pyproject.toml. With ``register``, the OpenAI-compatible
    providers it defines (``kind = "openai-compatible"``) join the provider registry."""
    config = _load_config(path, cwd)
    if register and any(s.get("kind") == "openai-compatible" for s in config.providers.values()):
        from omnibatch._plugins import get_registry

        get_registry().add_config(config)
    return config


def _load_config(path: str | os.PathLike[str] | None, cwd: Path | None) -> FileConfig:
    explicit = path or os.environ.get(CONFIG_ENV)
    base = cwd or Path.cwd()
    if explicit:
        file = Path(explicit)
        if not file.is_file():
            raise ConfigurationError(f"config file {file} does not exist")
        data = _read_toml(file)
        if file.name == "pyproject.toml":
            data = data.get("tool", {}).get("omnibatch", {})
        return _to_config(file, data)
    candidate = base / "omnibatch.toml"
    if candidate.is_file():
        return _to_config(candidate, _read_toml(candidate))
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        section = _read_toml(pyproject).get("tool", {}).get("omnibatch")
        if isinstance(section, dict):
            return _to_config(pyproject, section)
    return FileConfig()


def _read_toml(file: Path) -> dict[str, Any]:
    import tomllib  # only when a config file exists: keeps `from omnibatch import ...` fast

    try:
        with open(file, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{file} is not valid TOML: {exc}") from exc


def _to_config(file: Path, data: Mapping[str, Any]) -> FileConfig:
    providers = data.get("providers", {})
    if not isinstance(providers, dict) or not all(isinstance(v, dict) for v in providers.values()):
        raise ConfigurationError(f"{file}: [providers.<name>] sections must be tables")
    provider = data.get("provider")
    if provider is not None and not isinstance(provider, str):
        raise ConfigurationError(f"{file}: 'provider' must be a string")
    if "api_key" in data:
        raise ConfigurationError(
            f"{file}: put the key in an environment variable and name it with api_key_env"
        )
    settings = {k: v for k, v in data.items() if k not in {"provider", "providers"}}
    return FileConfig(file, provider, providers, settings)


def resolve_provider_name(provider: str | None, config: FileConfig) -> str | None:
    """The provider to use: the argument, ``$OMNIBATCH_PROVIDER``, the config file, or None."""
    return provider or os.environ.get(PROVIDER_ENV) or config.provider


def resolve_settings(
    provider: str,
    *,
    api_key_env: str | None,
    base_url_env: str | None,
    emulator_prefix: str,
    api_key: str | None = None,
    base_url: str | None = None,
    options: Mapping[str, Any] | None = None,
    config: FileConfig | None = None,
) -> ProviderSettings:
    """Merge arguments > environment > config file for one provider."""
    config = config or FileConfig()
    section = dict(config.providers.get(provider, {}))
    sources: dict[str, str] = {}
    key_env = section.pop("api_key_env", None) or api_key_env
    section_url = section.pop("base_url", None)
    if "api_key" in section:
        raise ConfigurationError(
            f"{config.path}: [providers.{provider}] holds an api_key; keys must come from the "
            f'environment (set api_key_env = "VARIABLE_NAME")'
        )
    emulator_root = os.environ.get(EMULATOR_URL_ENV)
    emulated = False
    if base_url:
        sources["base_url"] = "argument"
    elif base_url_env and os.environ.get(base_url_env):
        base_url, sources["base_url"] = os.environ[base_url_env], f"${base_url_env}"
    elif emulator_root:
        base_url = emulator_root.rstrip("/") + emulator_prefix
        sources["base_url"] = f"${EMULATOR_URL_ENV}"
        emulated = True
    elif section_url:
        base_url, sources["base_url"] = str(section_url), str(config.path)
    if api_key:
        sources["api_key"] = "argument"
    elif key_env and os.environ.get(key_env):
        api_key, sources["api_key"] = os.environ[key_env], f"${key_env}"
    elif emulated:
        api_key, sources["api_key"] = EMULATOR_KEY, "emulator placeholder"
    merged = {**section, **(options or {})}
    return ProviderSettings(provider, base_url, api_key, merged, emulated, sources)
