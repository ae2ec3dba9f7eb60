"""The built-in Anthropic provider plugin: the adapter and its emulator dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnibatch.plugin import hookimpl

__all__ = ["register_emulator_dialects", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_anthropic.adapter import AnthropicAdapter

    register(AnthropicAdapter)


@hookimpl
def register_emulator_dialects(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_anthropic.dialect import AnthropicDialect

    register(AnthropicDialect)
