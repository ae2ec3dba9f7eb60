"""The gateway's job states and what each means in omnibatch's vocabulary.

The gateway documents nine states; ``accepted`` is only seen while its queue is long.
"""

from __future__ import annotations

from omnibatch.plugin import BatchStatus

__all__ = ["GATEWAY_STATES"]

GATEWAY_STATES: dict[str, BatchStatus] = {
    "accepted": BatchStatus.QUEUED,
    "checking": BatchStatus.VALIDATING,
    "rejected": BatchStatus.FAILED,
    "working": BatchStatus.RUNNING,
    "packaging": BatchStatus.FINALIZING,
    "done": BatchStatus.SUCCEEDED,
    "timed_out": BatchStatus.EXPIRED,
    "stopping": BatchStatus.CANCELLING,
    "stopped": BatchStatus.CANCELLED,
}
