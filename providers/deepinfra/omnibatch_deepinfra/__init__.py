"""The built-in DeepInfra provider plugin: the adapter and its emulator dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnibatch.plugin import hookimpl

__all__ = ["register_emulator_dialects", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_deepinfra.adapter import DeepInfraAdapter

    register(DeepInfraAdapter)


@hookimpl
def register_emulator_dialects(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_deepinfra.dialect import DeepInfraDialect

    register(DeepInfraDialect)
