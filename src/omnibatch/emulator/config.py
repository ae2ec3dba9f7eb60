"""Settings of one emulator instance."""

from __future__ import annotations

from dataclasses import dataclass

from omnibatch.emulator.faults import FaultPlan

__all__ = ["EmulatorConfig"]


@dataclass
class EmulatorConfig:
    """How the simulated service behaves. Every duration is in *simulated* seconds.

    With the defaults a batch of 1,000 requests is terminal 3.5 simulated seconds after
    it was created (0.5 s validating, 2.5 s running at 400 requests/s, 0.5 s finalizing).

    - ``speed``: simulated seconds per wall second for the clock the emulator creates
      when none is given (a :class:`~omnibatch.emulator.ScaledClock`). It scales every
      duration, the 24 h completion window included.
    - ``api_key``: when set, only ``Authorization: Bearer <api_key>`` is accepted; when
      ``None`` any bearer token is, but a request without one still gets a 401.
    - ``request_error_rate``: share of requests that fail inside the batch (an HTTP 500
      in the result line), drawn from ``seed`` and each request's bytes, so the same
      input fails the same way on every run. Requests containing ``[[emulator:error]]``
      always fail (HTTP 400 in the result line).
    - ``seed``: makes generated ids and ``request_error_rate`` reproducible.
    - ``faults``: a :class:`~omnibatch.emulator.FaultPlan` for transport-level faults.
    - ``shuffle_output``: write result lines in a deterministic order different from
      the input, as real providers do.
    - ``embedding_dimensions``: length of the fake embedding vectors (unless the request
      asks for ``dimensions``).
    - ``request_log_size``: how many requests ``stats.requests`` remembers.
    - ``max_body_bytes``: a ceiling on every request body, below the per-route caps each
      dialect sets (``None``: the dialects' caps alone); larger bodies get a 413 unread.
    - ``idle_timeout``: wall seconds the HTTP server waits for the next byte of a request
      (or for the next request on a kept-alive connection) before closing it.
    """

    speed: float = 1.0
    validating_seconds: float = 0.5
    requests_per_second: float = 400.0
    finalizing_seconds: float = 0.5
    cancelling_seconds: float = 0.5
    api_key: str | None = None
    request_error_rate: float = 0.0
    seed: int | None = None
    faults: FaultPlan | None = None
    shuffle_output: bool = True
    embedding_dimensions: int = 16
    request_log_size: int = 10_000
    max_body_bytes: int | None = None
    idle_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if self.requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        for name in ("validating_seconds", "finalizing_seconds", "cancelling_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0.0 <= self.request_error_rate <= 1.0:
            raise ValueError("request_error_rate must be within [0, 1]")
        if self.max_body_bytes is not None and self.max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        if self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if self.embedding_dimensions < 1:
            raise ValueError("embedding_dimensions must be >= 1")
