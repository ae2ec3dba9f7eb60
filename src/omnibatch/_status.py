"""The normalized batch status model shared by every provider.

Providers keep their own vocabularies; adapters declare a ``status_map`` from each documented raw
value to one of these members and the core applies it. The raw value is always kept beside the
normalized one (``Batch.provider_status``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from enum import StrEnum

__all__ = ["BatchStatus", "UnknownStatusWarning", "normalize_status"]


class UnknownStatusWarning(UserWarning):
    """A provider returned a status value its adapter does not know."""


class BatchStatus(StrEnum):
    """Where a provider batch is in its lifecycle, in one vocabulary for all providers."""

    QUEUED = "queued"
    VALIDATING = "validating"
    RUNNING = "running"
    FINALIZING = "finalizing"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True once the provider will not change the batch any more."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {BatchStatus.SUCCEEDED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
)


def normalize_status(
    raw: str | None, status_map: Mapping[str, BatchStatus], *, provider: str
) -> BatchStatus:
    """Map a raw provider status onto :class:`BatchStatus`.

    Matching is case-insensitive (Azure has answered ``Validating`` where OpenAI says
    ``validating``). An unknown value becomes ``UNKNOWN`` with a warning instead of an exception,
    so a provider adding a state never breaks a polling loop, and never silently looks "running".
    """
    if raw is None:
        warnings.warn(f"{provider}: batch has no status", UnknownStatusWarning, stacklevel=2)
        return BatchStatus.UNKNOWN
    found = status_map.get(raw)
    if found is None:
        folded = raw.casefold()
        for key, value in status_map.items():
            if key.casefold() == folded:
                return value
        warnings.warn(
            f"{provider}: unknown batch status {raw!r}; reported as 'unknown'",
            UnknownStatusWarning,
            stacklevel=2,
        )
        return BatchStatus.UNKNOWN
    return found
