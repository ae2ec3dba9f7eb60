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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnibatch._exceptions import ConfigurationError, UnknownProviderError, register_secret

if TYPE_CHECKING:
    from omnibatch.adapter import ProviderAdapter

__all__ = [
    "DEFAULT_PROVIDER",
    "EMULATOR_KEY",
    "EMULATOR_URL_ENV",
    "PROVIDER_ENV",
    "FileConfig",
    "ProviderSettings",
    "embedded_settings",
    "emulator_key",
    "load_config",
    "resolve_provider",
    "resolve_provider_name",
]

PROVIDER_ENV = "OMNIBATCH_PROVIDER"
CONFIG_ENV = "OMNIBATCH_CONFIG"
EMULATOR_URL_ENV = "OMNIBATCH_EMULATOR_URL"
EMULATOR_KEY_ENV = "OMNIBATCH_EMULATOR_API_KEY"
EMULATOR_KEY = "omnibatch-emulator"
EMULATOR_KEY_SOURCE = "emulator placeholder"
EMBEDDED_KEY_SOURCE = "embedded emulator"
DEFAULT_PROVIDER = "openai"
"""The provider an emulator runs when none is configured: the one place this name is written."""


@dataclass(frozen=True)
class FileConfig:
    """The parsed config files, merged (empty when there is none).

    ``path`` is the most specific file read (the project's, else the user's); ``files`` every
    file read, lowest precedence first; ``origins`` which file each value came from, keyed
    ``provider``, ``providers.<name>.<key>`` or the top-level key.
    """

    path: Path | None = None
    provider: str | None = None
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    origins: Mapping[str, Path] = field(default_factory=dict)

    def origin(self, key: str) -> Path | None:
        """The file a value came from (``"provider"``, ``"providers.mistral.base_url"``)."""
        return self.origins.get(key, self.path if not self.origins else None)


def user_config_path() -> Path:
    """The user's config file: ``config.toml`` in the platform's config directory
    (``~/.config/omnibatch/config.toml`` on Linux, honouring ``$XDG_CONFIG_HOME``)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("omnibatch", appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class ProviderSettings:
    """Where and how to reach one provider, fully resolved. The key is kept out of ``repr``.

    ``sources`` says where each setting came from (``provider``, ``base_url``, ``api_key``:
    ``argument``, ``$VARIABLE``, the config file's path, ...), never the key itself; on an
    emulator, ``unused_api_key`` names a real key that was found and not sent.
    ``emulated``: the base URL is an omnibatch emulator (``$OMNIBATCH_EMULATOR_URL``, or one this
    process serves: ``embedded``).
    """

    provider: str
    base_url: str
    api_key: str | None = field(repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    emulated: bool = False
    embedded: bool = False
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def key_source(self) -> str | None:
        """Where the key came from (``$OPENAI_API_KEY``, ``emulator placeholder``, ...)."""
        return self.sources.get("api_key")


def load_config(
    path: str | os.PathLike[str] | None = None,
    cwd: Path | None = None,
    *,
    user_file: Path | None = None,
    register: bool = True,
) -> FileConfig:
    """Read the config: ``path`` (or ``$OMNIBATCH_CONFIG``) alone when given; otherwise the
    project's file (./omnibatch.toml, else ``[tool.omnibatch]`` of ./pyproject.toml) over the
    user's (:func:`user_config_path`, or ``user_file``), value by value. With ``register``,
    the OpenAI-compatible providers it defines (``kind = "openai-compatible"``) join the
    provider registry."""
    config = _load_config(path, cwd, user_file)
    if register and any(s.get("kind") == "openai-compatible" for s in config.providers.values()):
        from omnibatch._plugins import get_registry

        get_registry().add_config(config)
    return config


def _load_config(
    path: str | os.PathLike[str] | None, cwd: Path | None, user_file: Path | None
) -> FileConfig:
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
    layers: list[FileConfig] = []
    user = user_file if user_file is not None else user_config_path()
    if user.is_file():
        layers.append(_to_config(user, _read_toml(user)))
    project = _project_config(base)
    if project is not None:
        layers.append(project)
    if not layers:
        return FileConfig()
    if len(layers) == 1:
        return layers[0]
    return _merge(*layers)


def _project_config(base: Path) -> FileConfig | None:
    candidate = base / "omnibatch.toml"
    if candidate.is_file():
        return _to_config(candidate, _read_toml(candidate))
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        section = _read_toml(pyproject).get("tool", {}).get("omnibatch")
        if isinstance(section, dict):
            return _to_config(pyproject, section)
    return None


def _merge(low: FileConfig, high: FileConfig) -> FileConfig:
    """``high`` over ``low``, value by value (a provider section merges key by key)."""
    providers = {name: dict(section) for name, section in low.providers.items()}
    for name, section in high.providers.items():
        providers.setdefault(name, {}).update(section)
    return FileConfig(
        path=high.path,
        provider=high.provider or low.provider,
        providers=providers,
        settings={**low.settings, **high.settings},
        files=(*low.files, *high.files),
        origins={**low.origins, **high.origins},
    )


def _read_toml(file: Path) -> dict[str, Any]:
    import tomllib  # only when a config file exists: keeps `from omnibatch import ...` fast

    try:
        with open(file, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{file} is not valid TOML: {exc}") from exc


TOP_LEVEL_KEYS: tuple[str, ...] = ("provider", "providers")
"""The keys a config file may hold at its top level; anything else is a mistake, named."""
PROVIDER_KEYS: tuple[str, ...] = ("base_url", "api_key_env")
"""Keys of a ``[providers.<name>]`` section the core reads; the others are adapter options."""


def nearest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``choices``, or nothing."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _to_config(file: Path, data: Mapping[str, Any]) -> FileConfig:
    for key in data:
        if key not in TOP_LEVEL_KEYS and key != "api_key":
            raise ConfigurationError(
                f"{file}: unknown setting {key!r}{nearest(key, TOP_LEVEL_KEYS)}; valid top-level "
                f"settings: {', '.join(TOP_LEVEL_KEYS)} (provider options go in "
                f"[providers.<name>])"
            )
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
    settings = {k: v for k, v in data.items() if k not in TOP_LEVEL_KEYS}
    origins = {key: file for key in settings}
    if provider is not None:
        origins["provider"] = file
    for name, section in providers.items():
        origins.update({f"providers.{name}.{key}": file for key in section})
    return FileConfig(file, provider, providers, settings, (file,), origins)


def resolve_provider_name(provider: str | None, config: FileConfig) -> str | None:
    """The provider to use: the argument, ``$OMNIBATCH_PROVIDER``, the config file, or None."""
    return _provider_name(provider, config)[0]


def _provider_name(provider: str | None, config: FileConfig) -> tuple[str | None, str | None]:
    """The provider's name and where it came from."""
    if provider:
        return provider, "argument"
    if os.environ.get(PROVIDER_ENV):
        return os.environ[PROVIDER_ENV], f"${PROVIDER_ENV}"
    if config.provider:
        return config.provider, str(config.origin("provider") or config.path)
    if os.environ.get(EMULATOR_URL_ENV):
        return DEFAULT_PROVIDER, f"the default on ${EMULATOR_URL_ENV}"
    return None, None


def emulator_key() -> str:
    """The key sent to an emulator: its own (``$OMNIBATCH_EMULATOR_API_KEY``) or a placeholder,
    never a provider's real key."""
    return os.environ.get(EMULATOR_KEY_ENV) or EMULATOR_KEY


def _adapter_class(name: str, source: str | None) -> type[ProviderAdapter]:
    """The installed adapter class for ``name``; an unknown name says where it came from."""
    from omnibatch._plugins import get_registry

    registry = get_registry()
    try:
        return registry.provider(name)
    except UnknownProviderError as exc:
        if source is None:
            raise
        origin = "--provider / provider=" if source == "argument" else source
        raise UnknownProviderError(
            f"{exc.message}; the name came from {origin}"
            f"{nearest(name.strip().lower(), registry.providers)}"
        ) from None


def resolve_provider(
    provider: str | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    options: Mapping[str, Any] | None = None,
    config: FileConfig | None = None,
    require_key: bool = True,
) -> ProviderSettings:
    """The one resolver: arguments > environment > config file > defaults, for one provider.

    The name is ``provider``, else ``$OMNIBATCH_PROVIDER``, else the config file, else (when
    ``$OMNIBATCH_EMULATOR_URL`` is set) :data:`DEFAULT_PROVIDER`. The base URL is the argument,
    else ``$<PROVIDER>_BASE_URL``, else the emulator's, else the config file's, else the
    adapter's default. On an emulator the key is always the emulator's (see
    :func:`emulator_key`), so a real key never leaves for it. Raises
    :class:`ConfigurationError` when no provider is configured or (``require_key``) no key is
    found, naming what to set.
    """
    config = config if config is not None else FileConfig()
    name, name_source = _provider_name(provider, config)
    if name is None:
        raise ConfigurationError(
            "no provider configured: pass --provider (provider=...), set OMNIBATCH_PROVIDER, or "
            'put provider = "..." in omnibatch.toml'
        )
    cls = _adapter_class(name, name_source)
    section = dict(config.providers.get(cls.name, {}))
    sources: dict[str, str] = {"provider": name_source or "argument"}
    named_env = section.pop("api_key_env", None)
    if named_env is not None and not isinstance(named_env, str):
        raise ConfigurationError(
            f"{config.path}: [providers.{cls.name}] api_key_env must be a variable name (a string)"
        )
    key_env = named_env or cls.api_key_env
    section_url = section.pop("base_url", None)
    if "api_key" in section:
        raise ConfigurationError(
            f"{config.path}: [providers.{cls.name}] holds an api_key; keys must come from the "
            f'environment (set api_key_env = "VARIABLE_NAME")'
        )
    emulator_root = os.environ.get(EMULATOR_URL_ENV)
    emulated = False
    url: str | None = None
    if base_url:
        url, sources["base_url"] = base_url, "argument"
    elif cls.base_url_env and os.environ.get(cls.base_url_env):
        url, sources["base_url"] = os.environ[cls.base_url_env], f"${cls.base_url_env}"
    elif emulator_root:
        url = emulator_root.rstrip("/") + cls.emulator_prefix
        sources["base_url"] = f"${EMULATOR_URL_ENV}"
        emulated = True
    elif section_url:
        origin = config.origin(f"providers.{cls.name}.base_url") or config.path
        url, sources["base_url"] = str(section_url), str(origin)
    else:
        url, sources["base_url"] = cls.default_base_url, "default"
    key: str | None = None
    if emulated:
        key, sources["api_key"] = emulator_key(), EMULATOR_KEY_SOURCE
        # A real key was there and is not sent: worth a loud warning (the name, never the key).
        if api_key:
            sources["unused_api_key"] = "argument"
        elif key_env and os.environ.get(key_env):
            sources["unused_api_key"] = f"${key_env}"
    elif api_key:
        key, sources["api_key"] = api_key, "argument"
    elif key_env and os.environ.get(key_env):
        key, sources["api_key"] = os.environ[key_env], f"${key_env}"
    if key is None and require_key and cls.requires_api_key:
        where = f"set ${key_env}" if key_env else "configure a key"
        if named_env:
            origin = config.origin(f"providers.{cls.name}.api_key_env") or config.path
            where += f" (named by api_key_env in {origin})"
        raise ConfigurationError(
            f"no API key for {cls.name}: {where} (or pass api_key=...)", provider=cls.name
        )
    register_secret(key)
    merged = {**section, **(options or {})}
    return ProviderSettings(cls.name, url.rstrip("/"), key, merged, emulated, False, sources)


def embedded_settings(root_url: str) -> ProviderSettings:
    """:data:`DEFAULT_PROVIDER` on an emulator this process serves at ``root_url``."""
    cls = _adapter_class(DEFAULT_PROVIDER, None)
    return ProviderSettings(
        provider=cls.name,
        base_url=root_url.rstrip("/") + cls.emulator_prefix,
        api_key=EMULATOR_KEY,
        emulated=True,
        embedded=True,
        sources={
            "provider": "the embedded emulator",
            "base_url": "the embedded emulator",
            "api_key": EMBEDDED_KEY_SOURCE,
        },
    )
