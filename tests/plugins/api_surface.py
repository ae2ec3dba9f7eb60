"""The plugin-facing API as data, and its recorded snapshot.

``python -m tests.plugins.api_surface --update`` rewrites ``plugin_api.json`` after an
intended change; it refuses unless ``omnibatch.plugin.PLUGIN_API_VERSION`` was bumped, and
``test_api_stability.py`` then requires a CHANGELOG.md entry naming the new version.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import sys
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("plugin_api.json")


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "<no signature>"


def _class(cls: type) -> dict[str, Any]:
    info: dict[str, Any] = {
        "kind": "class",
        "bases": [f"{b.__module__}.{b.__qualname__}" for b in cls.__bases__],
    }
    if issubclass(cls, enum.Enum):
        info["members"] = {m.name: repr(m.value) for m in cls}
        return info
    if dataclasses.is_dataclass(cls):
        info["fields"] = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    fields = getattr(cls, "model_fields", None)
    if isinstance(fields, dict):  # pydantic models
        info["fields"] = {name: str(f.annotation) for name, f in fields.items()}
    members: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass.__module__.startswith(("pydantic", "builtins", "abc")):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") and name != "__init__":
                continue
            if isinstance(value, staticmethod | classmethod):
                members[name] = _signature(value.__func__)
            elif isinstance(value, property):
                members[name] = "property"
            elif inspect.isfunction(value):
                members[name] = _signature(value)
            elif name in getattr(klass, "__annotations__", {}) or not callable(value):
                members[name] = "attribute"
    info["members"] = dict(sorted(members.items()))
    return info


def describe(obj: Any) -> dict[str, Any]:
    if inspect.isclass(obj):
        return _class(obj)
    if inspect.isfunction(obj):
        return {"kind": "function", "signature": _signature(obj)}
    if isinstance(obj, str | bytes | int | float):
        return {"kind": "constant", "value": repr(obj)}
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if " at 0x" in repr(obj):  # an instance (e.g. the hookimpl marker): its type and state
        slots = getattr(type(obj), "__slots__", ())
        names = sorted({*getattr(obj, "__dict__", {}), *slots})
        state = {k: repr(getattr(obj, k)) for k in names if not k.startswith("_")}
        return {"kind": kind, "state": state}
    return {"kind": kind, "repr": repr(obj)}  # type aliases such as Flow


SUBMODULES = ("chat", "lines", "openai_compat", "openai_dialect")
"""The plugin API's submodules (``omnibatch.plugin.<name>``), recorded as ``<name>.<member>``."""


def surface() -> dict[str, Any]:
    """Every name of ``omnibatch.plugin.__all__`` and of its submodules' ``__all__``, and
    every hook, described."""
    from importlib import import_module

    import omnibatch.plugin as api
    from omnibatch import hookspecs

    names = {name: describe(getattr(api, name)) for name in api.__all__}
    for sub in SUBMODULES:
        module = import_module(f"omnibatch.plugin.{sub}")
        names |= {f"{sub}.{name}": describe(getattr(module, name)) for name in module.__all__}
    hooks = {
        name: _signature(func)
        for name, func in vars(hookspecs).items()
        if name.startswith("register_") and inspect.isfunction(func)
    }
    return {"names": names, "hooks": hooks}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    return data


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human lines saying what changed between two surfaces."""
    lines = []
    for section in ("names", "hooks"):
        before, after = old.get(section, {}), new.get(section, {})
        lines += [f"added {section[:-1]} {n}" for n in sorted(set(after) - set(before))]
        lines += [f"removed {section[:-1]} {n}" for n in sorted(set(before) - set(after))]
        lines += [
            f"changed {section[:-1]} {n}"
            for n in sorted(set(before) & set(after))
            if before[n] != after[n]
        ]
    return lines


def update() -> int:
    from omnibatch.plugin import PLUGIN_API_VERSION

    new = surface()
    if SNAPSHOT.exists():
        old = load()
        if old["surface"] == new:
            print("the plugin API is unchanged")
            return 0
        if old["version"] == PLUGIN_API_VERSION:
            print(
                f"the plugin API changed ({'; '.join(diff(old['surface'], new))}) but "
                f"PLUGIN_API_VERSION is still {PLUGIN_API_VERSION}: bump it in "
                "src/omnibatch/plugin/__init__.py (minor for additions, major otherwise) first",
                file=sys.stderr,
            )
            return 1
    SNAPSHOT.write_text(
        json.dumps({"version": PLUGIN_API_VERSION, "surface": new}, indent=1, sort_keys=True) + "\n"
    )
    print(f"wrote {SNAPSHOT} for plugin API {PLUGIN_API_VERSION}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        print("usage: python -m tests.plugins.api_surface --update", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(update())
