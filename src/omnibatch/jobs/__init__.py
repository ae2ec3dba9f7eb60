"""Jobs: run a whole batch job through the ledger, so it survives crashes and never submits twice.

:class:`JobRunner` (``jobs.runner``) orchestrates the ledger over the lifecycle's flows; the
values it works with (:class:`JobOptions`, :class:`JobView`, :class:`RunResult`, a job's
identity) live in ``jobs.model``, input helpers in ``jobs.inputs``. The crash-injection switch
the kill -9 tests use lives in :mod:`omnibatch.testing.crash`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnibatch._exceptions import JobBusyError, JobNotFoundError, SubmissionUnknownError
from omnibatch.jobs.inputs import override_model, spool_stdin
from omnibatch.jobs.model import (
    JOB_METADATA_KEY,
    JobObserver,
    JobOptions,
    JobView,
    RunResult,
    hash_file,
    job_key,
    part_key,
)
from omnibatch.jobs.runner import Checkpoint, JobRunner

if TYPE_CHECKING:
    from omnibatch.testing.crash import CHECKPOINTS, CRASH_ENV, CrashPlan

__all__ = [
    "CHECKPOINTS",
    "CRASH_ENV",
    "JOB_METADATA_KEY",
    "Checkpoint",
    "CrashPlan",
    "JobBusyError",
    "JobNotFoundError",
    "JobObserver",
    "JobOptions",
    "JobRunner",
    "JobView",
    "RunResult",
    "SubmissionUnknownError",
    "hash_file",
    "job_key",
    "override_model",
    "part_key",
    "spool_stdin",
]

_TESTING = ("CHECKPOINTS", "CRASH_ENV", "CrashPlan")


def __getattr__(name: str) -> Any:
    # The crash switch moved to omnibatch.testing.crash; these names still resolve here.
    if name in _TESTING:
        from omnibatch.testing import crash

        return getattr(crash, name)
    raise AttributeError(f"module 'omnibatch.jobs' has no attribute {name!r}")
