"""A local emulator of the providers' batch HTTP APIs.

One provider-neutral state machine (:class:`Engine`) behind several front doors
(:class:`Dialect`), served in process (:meth:`Emulator.transport`, an
``httpx.MockTransport``) or over real HTTP (:func:`serve`, :func:`run_server`)::

    from omnibatch.emulator import Emulator, ManualClock

    emulator = Emulator(clock=ManualClock())
    client = httpx.Client(transport=emulator.transport(), base_url="http://emulator/openai/v1")

This package is not imported by ``import omnibatch``; it needs only httpx and orjson.
See ``docs/emulator.md``.
"""

from __future__ import annotations

from omnibatch.emulator.clock import Clock, ManualClock, ScaledClock
from omnibatch.emulator.config import EmulatorConfig
from omnibatch.emulator.core import Emulator, Outcome, default_dialect_classes
from omnibatch.emulator.dialect import (
    Dialect,
    FormPart,
    HTTPErrorResponse,
    bearer_token,
    content_response,
    parse_multipart,
    read_json,
)
from omnibatch.emulator.engine import (
    BatchStateConflict,
    Engine,
    Phase,
    RequestRecord,
    SimBatch,
    SimRequest,
    Snapshot,
    Stats,
    StoredFile,
    ValidationIssue,
)
from omnibatch.emulator.fakes import ERROR_MARKER
from omnibatch.emulator.faults import FAULT_KINDS, FaultDecision, FaultPlan, FaultRule
from omnibatch.emulator.server import EmulatorServer, UnsafeBindError, run_server, serve

__all__ = [
    "ERROR_MARKER",
    "FAULT_KINDS",
    "BatchStateConflict",
    "Clock",
    "Dialect",
    "Emulator",
    "EmulatorConfig",
    "EmulatorServer",
    "Engine",
    "FaultDecision",
    "FaultPlan",
    "FaultRule",
    "FormPart",
    "HTTPErrorResponse",
    "ManualClock",
    "Outcome",
    "Phase",
    "RequestRecord",
    "ScaledClock",
    "SimBatch",
    "SimRequest",
    "Snapshot",
    "Stats",
    "StoredFile",
    "UnsafeBindError",
    "ValidationIssue",
    "bearer_token",
    "content_response",
    "default_dialect_classes",
    "parse_multipart",
    "read_json",
    "run_server",
    "serve",
]
