"""The built-in OpenRouter provider plugin: the adapter and its emulator dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnibatch.plugin import hookimpl

__all__ = ["register_emulator_dialects", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_openrouter.adapter import OpenRouterAdapter

    register(OpenRouterAdapter)


@hookimpl
def register_emulator_dialects(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_openrouter.dialect import OpenRouterDialect

    register(OpenRouterDialect)
