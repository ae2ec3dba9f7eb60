"""The hooks a provider plugin implements. Hooks only register things: they do no I/O.

A plugin is a module (or object) named by an entry point in the ``omnibatch`` group::

    [project.entry-points.omnibatch]
    mygateway = "omnibatch_mygateway"

and implements one or more of these hooks with :data:`hookimpl`::

    from omnibatch.hookspecs import hookimpl

    @hookimpl
    def register_providers(register):
        register(MyGatewayAdapter)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from omnibatch.adapter import ProviderAdapter

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "register_emulator_dialects",
    "register_providers",
]

PROJECT_NAME = "omnibatch"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    """Register provider adapter classes: call ``register(AdapterClass)`` once per provider."""


@hookspec
def register_emulator_dialects(register: Callable[[type[Any]], None]) -> None:
    """Register emulator dialects (subclasses of ``omnibatch.emulator.Dialect``) so the local
    emulator can serve the provider's HTTP API: call ``register(DialectClass)``."""
