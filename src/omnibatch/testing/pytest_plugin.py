"""pytest plugin: the omnibatch emulator as fixtures (entry point ``pytest11: omnibatch``).

Fixtures
--------
``omnibatch_emulator``
    An in-process :class:`~omnibatch.emulator.Emulator` with a
    :class:`~omnibatch.emulator.ManualClock` (time only moves when you call
    ``omnibatch_emulator.advance(seconds)``) and no faults. Use
    ``omnibatch_emulator.transport()`` with ``httpx.Client`` / ``httpx.AsyncClient``.
``omnibatch_emulator_server``
    The same emulator served over HTTP on a free ``127.0.0.1`` port; yields an
    :class:`~omnibatch.emulator.EmulatorServer` with ``.base_url`` (the root),
    ``.url("openai")`` (an SDK base URL) and ``.emulator``.
``omnibatch_emulator_config`` / ``omnibatch_emulator_dialects``
    Override these in your ``conftest.py`` to change the configuration (default
    ``EmulatorConfig(seed=0)``) or the dialects (default: the registered ones).

Importing this module is cheap: the emulator is imported only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from omnibatch.emulator import Emulator, EmulatorConfig, EmulatorServer

__all__ = [
    "omnibatch_emulator",
    "omnibatch_emulator_config",
    "omnibatch_emulator_dialects",
    "omnibatch_emulator_server",
]


@pytest.fixture
def omnibatch_emulator_config() -> EmulatorConfig:
    """The configuration of ``omnibatch_emulator`` (seeded, so ids repeat across runs)."""
    from omnibatch.emulator import EmulatorConfig

    return EmulatorConfig(seed=0)


@pytest.fixture
def omnibatch_emulator_dialects() -> Any:
    """The dialects of ``omnibatch_emulator``; ``None`` means the registered ones."""
    return None


@pytest.fixture
def omnibatch_emulator(
    omnibatch_emulator_config: EmulatorConfig, omnibatch_emulator_dialects: Any
) -> Emulator:
    """An in-process emulator driven by a ``ManualClock``."""
    from omnibatch.emulator import Emulator, ManualClock

    return Emulator(
        dialects=omnibatch_emulator_dialects,
        config=omnibatch_emulator_config,
        clock=ManualClock(),
    )


@pytest.fixture
def omnibatch_emulator_server(omnibatch_emulator: Emulator) -> Iterator[EmulatorServer]:
    """``omnibatch_emulator`` served on a free 127.0.0.1 port for the test's duration."""
    from omnibatch.emulator import serve

    with serve(emulator=omnibatch_emulator) as server:
        yield server
