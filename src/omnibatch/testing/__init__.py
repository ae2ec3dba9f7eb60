"""Test kit for omnibatch providers: the provider contract suite.

``from omnibatch.testing import ProviderContract`` (needs pytest). The job runner's crash switch
(``OMNIBATCH_CRASH_AT``) is :mod:`omnibatch.testing.crash`. Nothing here is imported until
asked for, so pytest's loading of ``omnibatch.testing.pytest_plugin`` stays cheap.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

if "pytest" in sys.modules:
    # Under pytest, rewrite the suite's asserts so a failing scenario shows both sides.
    sys.modules["pytest"].register_assert_rewrite("omnibatch.testing.contract")

if TYPE_CHECKING:
    from omnibatch.testing.contract import ContractDriver, ContractHarness, ProviderContract

__all__ = ["ContractDriver", "ContractHarness", "ProviderContract"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(import_module("omnibatch.testing.contract"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'omnibatch.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
