"""The built-in Mistral provider plugin: the adapter and its emulator dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnibatch.plugin import hookimpl

__all__ = ["register_emulator_dialects", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_mistral.adapter import MistralAdapter

    register(MistralAdapter)


@hookimpl
def register_emulator_dialects(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_mistral.dialect import MistralDialect

    register(MistralDialect)
