"""omnibatch provider plugin for the Example LLM Gateway.

Registered through the ``omnibatch`` entry point in pyproject.toml. The hooks import the adapter
and the dialect only when omnibatch asks for them, so an installed plugin costs nothing until
it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnibatch.plugin import hookimpl

__all__ = ["register_emulator_dialects", "register_providers"]

__version__ = "0.1.0"


@hookimpl
def register_providers(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_gateway.adapter import GatewayAdapter

    register(GatewayAdapter)


@hookimpl
def register_emulator_dialects(register: Callable[[type[Any]], None]) -> None:
    from omnibatch_gateway.dialect import GatewayDialect

    register(GatewayDialect)
