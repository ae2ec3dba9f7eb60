"""Plugin discovery: the lazily built registry of providers and emulator dialects.

Nothing here runs at ``import omnibatch``: the registry is built the first time a provider or
dialect is asked for. Built-in providers come through the same ``omnibatch`` entry-point group
as third-party ones. A broken plugin is recorded as a problem naming its distribution and never
stops the other plugins from loading.

Environment:
    OMNIBATCH_DISABLE_PLUGINS  comma-separated plugin (entry-point) names not to load;
                               ``*`` blocks every plugin not shipped with omnibatch itself.
    OMNIBATCH_LOAD_PLUGINS     when set, only these third-party plugins load (built-ins always
                               do); set it empty to load none.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from omnibatch import hookspecs
from omnibatch._exceptions import ConfigurationError, PluginError, UnknownProviderError
from omnibatch._status import BatchStatus
from omnibatch.adapter import ProviderAdapter
from omnibatch.config import FileConfig, load_config

__all__ = [
    "DISABLE_ENV",
    "LOAD_ENV",
    "PluginOrigin",
    "PluginProblem",
    "ProviderEntry",
    "Registry",
    "build_registry",
    "emulator_dialects",
    "get_registry",
    "reset_registry",
]

DISABLE_ENV = "OMNIBATCH_DISABLE_PLUGINS"
LOAD_ENV = "OMNIBATCH_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = "omnibatch"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class PluginOrigin:
    """Where a plugin comes from: its entry-point name and distribution."""

    plugin: str
    distribution: str | None = None
    version: str | None = None
    config_file: str | None = None
    """Set for a provider defined in a config file (``kind = "openai-compatible"``)."""

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    def __str__(self) -> str:
        if self.config_file:
            return f"[providers.{self.plugin}] of {self.config_file}"
        if self.distribution:
            return f"plugin '{self.plugin}' from {self.distribution} {self.version or ''}".strip()
        return f"plugin '{self.plugin}' (registered in-process)"


@dataclass(frozen=True)
class PluginProblem:
    origin: PluginOrigin
    message: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.message}"


@dataclass(frozen=True)
class ProviderEntry:
    adapter: type[ProviderAdapter]
    origin: PluginOrigin


@dataclass(frozen=True)
class DialectEntry:
    dialect: type[Any]
    origin: PluginOrigin


@dataclass
class Registry:
    """The providers and emulator dialects the installed plugins registered."""

    providers: dict[str, ProviderEntry] = field(default_factory=dict)
    dialects: dict[str, DialectEntry] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)
    conflicts: dict[str, list[PluginOrigin]] = field(default_factory=dict)
    plugins: dict[str, PluginOrigin] = field(default_factory=dict)

    def provider(self, name: str) -> type[ProviderAdapter]:
        """The adapter class registered as ``name``."""
        key = name.strip().lower()
        if key in self.conflicts:
            origins = " and ".join(str(o) for o in self.conflicts[key])
            raise PluginError(
                f"provider name {key!r} is registered by both {origins}; uninstall one of them "
                f"or block it with {DISABLE_ENV}=<plugin name>"
            )
        entry = self.providers.get(key)
        if entry is None:
            installed = ", ".join(sorted(self.providers)) or "none"
            broken = [str(p) for p in self.problems]
            hint = f"; plugin problems: {'; '.join(broken)}" if broken else ""
            from difflib import get_close_matches

            close = get_close_matches(name.lower(), list(self.providers), n=1, cutoff=0.6)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownProviderError(
                f"no provider named {name!r}{guess}; installed providers: {installed}{hint}"
            )
        return entry.adapter

    def origin_of(self, name: str) -> PluginOrigin:
        return self.providers[name].origin

    def add_config(self, config: FileConfig) -> None:
        """Add the OpenAI-compatible providers (and their emulator dialects) that ``config``
        defines; a name a plugin already registered stays the plugin's, and is reported."""
        from omnibatch._compat_config import (
            compat_sections,
            config_adapter,
            config_dialect,
            config_facts,
        )

        for name, section in compat_sections(config.providers).items():
            origin = PluginOrigin(name, config_file=str(config.path) if config.path else "config")
            existing = self.providers.get(name)
            if existing is not None and existing.origin.config_file is None:
                self.problems.append(
                    PluginProblem(
                        origin,
                        f"provider name {name!r} is already registered by "
                        f"{existing.origin}; rename the section",
                    )
                )
                continue
            if not _NAME_RE.match(name):
                self.problems.append(
                    PluginProblem(origin, "the section name must be a lower-case identifier")
                )
                continue
            try:
                facts = config_facts(name, section, config.path)
            except ConfigurationError as exc:
                self.problems.append(PluginProblem(origin, str(exc)))
                continue
            self.providers[name] = ProviderEntry(config_adapter(facts), origin)
            self.dialects[name] = DialectEntry(config_dialect(facts), origin)


def _split_env(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _is_blocked(origin: PluginOrigin) -> bool:
    disabled = _split_env(DISABLE_ENV) or set()
    if origin.plugin in disabled or (origin.distribution or "") in disabled:
        return True
    if origin.builtin:
        return False
    if "*" in disabled:
        return True
    allowed = _split_env(LOAD_ENV)
    return allowed is not None and not (
        origin.plugin in allowed or (origin.distribution or "") in allowed
    )


def check_adapter_class(cls: Any) -> list[str]:
    """Everything wrong with a class offered as a provider adapter (empty when it is fine)."""
    if not (inspect.isclass(cls) and issubclass(cls, ProviderAdapter)):
        return [f"{cls!r} is not a subclass of omnibatch.adapter.ProviderAdapter"]
    errors: list[str] = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        errors.append(
            f"{cls.__name__}.name must be a lower-case identifier like 'mygateway' (got {name!r})"
        )
    if not isinstance(getattr(cls, "default_base_url", None), str):
        errors.append(f"{cls.__name__}.default_base_url must be set to the API root URL")
    status_map = getattr(cls, "status_map", None)
    if not isinstance(status_map, Mapping) or not status_map:
        errors.append(f"{cls.__name__}.status_map must map raw statuses to BatchStatus members")
    else:
        bad = [k for k, v in status_map.items() if not isinstance(v, BatchStatus)]
        if bad:
            errors.append(f"{cls.__name__}.status_map values must be BatchStatus (check {bad})")
        unmapped = sorted(set(cls.documented_statuses) - set(status_map))
        if unmapped:
            errors.append(
                f"{cls.__name__}.status_map does not map documented status(es) {unmapped}; "
                "add each to status_map"
            )
    if inspect.isabstract(cls):
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        errors.append(f"{cls.__name__} does not implement {', '.join(missing)}")
    return errors


def _check_dialect_class(cls: Any) -> list[str]:
    if not inspect.isclass(cls):
        return [f"{cls!r} is not a class"]
    errors = []
    if not isinstance(getattr(cls, "name", None), str):
        errors.append(f"{cls.__name__}.name must be a string")
    prefix = getattr(cls, "prefix", None)
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        errors.append(f"{cls.__name__}.prefix must be a path such as '/mygateway'")
    if not callable(getattr(cls, "handle", None)):
        errors.append(f"{cls.__name__} must implement handle(engine, request, path)")
    return errors


class _Builder:
    def __init__(self) -> None:
        self.registry = Registry()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)

    def add_plugin(self, plugin: object, origin: PluginOrigin) -> None:
        reg = self.registry
        if origin.plugin in reg.plugins:
            first = reg.plugins[origin.plugin]
            reg.problems.append(
                PluginProblem(origin, f"plugin name '{origin.plugin}' is already used by {first}")
            )
            return
        try:
            self.pm.register(plugin, name=origin.plugin)
        except pluggy.PluginValidationError as exc:
            reg.problems.append(PluginProblem(origin, f"invalid hook implementation: {exc}"))
            return
        except ValueError as exc:
            reg.problems.append(PluginProblem(origin, str(exc)))
            return
        reg.plugins[origin.plugin] = origin

    def finish(self) -> Registry:
        reg = self.registry
        # check_pending makes a misspelled hook (e.g. register_provider) fail loudly; the
        # offending plugin is dropped and named, the others go on.
        while True:
            try:
                self.pm.check_pending()
                break
            except pluggy.PluginValidationError as exc:
                name = self.pm.get_name(exc.plugin) or "?"
                self.pm.unregister(exc.plugin)
                origin = reg.plugins.pop(name, PluginOrigin(name))
                known = ", ".join(sorted(n for n in vars(hookspecs) if n.startswith("register_")))
                reg.problems.append(
                    PluginProblem(origin, f"{exc.args[0] if exc.args else exc}; hooks are: {known}")
                )
        self._call(self.pm.hook.register_providers, self._add_provider)
        self._call(self.pm.hook.register_emulator_dialects, self._add_dialect)
        return reg

    def _call(self, hook: Any, add: Callable[[Any, PluginOrigin], None]) -> None:
        for impl in hook.get_hookimpls():
            origin = self.registry.plugins.get(impl.plugin_name, PluginOrigin(impl.plugin_name))

            def register(item: Any, _origin: PluginOrigin = origin) -> None:
                add(item, _origin)

            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except Exception as exc:  # a broken plugin must never break the others
                self.registry.problems.append(
                    PluginProblem(origin, f"raised during registration: {exc!r}")
                )

    def _add_provider(self, cls: Any, origin: PluginOrigin) -> None:
        reg = self.registry
        errors = check_adapter_class(cls)
        if errors:
            reg.problems.append(PluginProblem(origin, "; ".join(errors)))
            return
        name = cls.name
        if name in reg.conflicts:
            reg.conflicts[name].append(origin)
            return
        if name in reg.providers:
            first = reg.providers.pop(name).origin
            reg.conflicts[name] = [first, origin]
            # Hooks run newest-registered first: blame the third-party side, never a built-in.
            culprit, other = (first, origin) if origin.builtin else (origin, first)
            reg.problems.append(
                PluginProblem(culprit, f"provider name {name!r} is already registered by {other}")
            )
            return
        reg.providers[name] = ProviderEntry(cls, origin)

    def _add_dialect(self, cls: Any, origin: PluginOrigin) -> None:
        errors = _check_dialect_class(cls)
        if errors:
            self.registry.problems.append(PluginProblem(origin, "; ".join(errors)))
            return
        name = cls.name
        if name in self.registry.dialects:
            first = self.registry.dialects[name].origin
            culprit, other = (first, origin) if origin.builtin else (origin, first)
            self.registry.problems.append(
                PluginProblem(
                    culprit, f"emulator dialect {name!r} is already registered by {other}"
                )
            )
            if not origin.builtin:
                return
        # A built-in dialect is never shadowed by a third-party one of the same name.
        self.registry.dialects[name] = DialectEntry(cls, origin)


def build_registry(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    *,
    plugins: Iterable[tuple[str, object]] = (),
) -> Registry:
    """Load plugins from entry points (default: the installed ``omnibatch`` group) plus
    in-process ``(name, plugin)`` pairs, honouring the blocking environment variables."""
    builder = _Builder()
    eps = (
        importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME)
        if entry_points is None
        else entry_points
    )
    for ep in eps:
        dist = getattr(ep, "dist", None)
        origin = PluginOrigin(
            ep.name,
            dist.metadata["Name"] if dist is not None else None,
            dist.version if dist is not None else None,
        )
        if _is_blocked(origin):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            builder.registry.problems.append(
                PluginProblem(origin, f"could not import {ep.value}: {exc!r}")
            )
            continue
        builder.add_plugin(plugin, origin)
    for name, plugin in plugins:
        origin = PluginOrigin(name)
        if not _is_blocked(origin):
            builder.add_plugin(plugin, origin)
    return builder.finish()


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                registry = build_registry()
                try:
                    config = load_config(register=False)
                except ConfigurationError as exc:
                    registry.problems.append(PluginProblem(PluginOrigin("config"), str(exc)))
                else:
                    registry.add_config(config)
                _registry = registry
    return _registry


def reset_registry(registry: Registry | None = None) -> None:
    """Forget (or replace) the process-wide registry, e.g. after installing a plugin."""
    global _registry
    with _lock:
        _registry = registry


def emulator_dialects() -> dict[str, type[Any]]:
    """Dialect classes registered by plugins, by name (used by the emulator)."""
    return {name: entry.dialect for name, entry in get_registry().dialects.items()}
