"""Clocks: the emulator never reads the system time directly, it asks one of these.

Simulated time is Unix seconds (a ``float``). Every simulated duration in the emulator
(validation, processing rate, finalizing, the 24 h completion window, Retry-After) is
measured on this clock, so a faster clock makes the whole service faster.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_START", "Clock", "ManualClock", "ScaledClock"]

#: Start of a :class:`ManualClock` when none is given (2025-06-15T14:40:00Z), so tests
#: see the same timestamps on every run.
DEFAULT_START = 1_750_000_000.0


@runtime_checkable
class Clock(Protocol):
    """What the emulator needs from a clock."""

    @property
    def speed(self) -> float:
        """Simulated seconds per wall-clock second (used to scale ``Retry-After``)."""
        ...

    def now(self) -> float:
        """The current simulated time, in Unix seconds."""
        ...

    def advance(self, seconds: float) -> None:
        """Jump ``seconds`` of simulated time forward."""
        ...


class ManualClock:
    """A clock that only moves when told to: ``clock.advance(60)``.

    Use it in tests so a 24-hour batch runs in microseconds and deterministically.
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return 1.0

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds

    def set(self, timestamp: float) -> None:
        """Move to an absolute simulated time (never backwards)."""
        with self._lock:
            if timestamp < self._now:
                raise ValueError("a clock cannot go backwards")
            self._now = float(timestamp)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"


class ScaledClock:
    """Wall-clock time running ``speed`` times faster, starting at the current time.

    ``ScaledClock(1000)`` makes the emulator's 24 h completion window last 86.4 s of
    wall time. :meth:`advance` adds a fixed offset on top (handy for demos and tests).
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = float(speed)
        self._start = time.time() if start is None else float(start)
        self._origin = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._start + (time.monotonic() - self._origin) * self._speed + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._offset += seconds

    def __repr__(self) -> str:
        return f"ScaledClock(speed={self._speed!r})"
