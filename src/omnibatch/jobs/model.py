"""The values a job is made of: its options, its identity, its view and what a run returns."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from omnibatch._status import BatchStatus
from omnibatch.config import ProviderSettings
from omnibatch.ledger import JobRecord, PartRecord, safe_url
from omnibatch.models import Batch, RequestCounts
from omnibatch.results import OutputSummary

__all__ = [
    "JOB_METADATA_KEY",
    "JobObserver",
    "JobOptions",
    "JobView",
    "RunResult",
    "hash_file",
    "job_key",
    "part_key",
    "request_words",
]

JOB_METADATA_KEY = "omnibatch_job"
"""Metadata key naming the ledger job a batch belongs to (next to the idempotency key)."""

_WAITING_ORDER = (
    BatchStatus.UNKNOWN,
    BatchStatus.QUEUED,
    BatchStatus.VALIDATING,
    BatchStatus.RUNNING,
    BatchStatus.FINALIZING,
)
_ENDED_ORDER = (BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED)


@dataclass(frozen=True)
class JobOptions:
    """The options that, with the input and the provider, identify a job."""

    model: str | None = None
    max_requests_per_batch: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    completion_window: str = "24h"
    generate_ids: bool = False
    """Lines without ``custom_id`` get generated ids (``request-N``) instead of an error."""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "max_requests_per_batch": self.max_requests_per_batch,
            "metadata": dict(sorted(self.metadata.items())),
            "completion_window": self.completion_window,
        }
        if self.generate_ids:  # only when set: the identity of existing jobs stays the same
            data["generate_ids"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobOptions:
        return cls(
            model=data.get("model"),
            max_requests_per_batch=data.get("max_requests_per_batch"),
            metadata=dict(data.get("metadata") or {}),
            completion_window=data.get("completion_window") or "24h",
            generate_ids=bool(data.get("generate_ids")),
        )


def counts_of(batch: Batch) -> dict[str, int]:
    c = batch.request_counts
    return {
        "total": c.total,
        "succeeded": c.succeeded,
        "failed": c.failed,
        "cancelled": c.cancelled,
        "expired": c.expired,
    }


def status_of(value: str | None) -> BatchStatus:
    try:
        return BatchStatus(value) if value else BatchStatus.UNKNOWN
    except ValueError:
        return BatchStatus.UNKNOWN


@dataclass(frozen=True)
class JobView:
    """A job and its parts as the ledger has them, with the derived status and counts."""

    job: JobRecord
    parts: tuple[PartRecord, ...]

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def created(self) -> bool:
        """Every part has a provider batch."""
        return bool(self.parts) and all(p.batch_id for p in self.parts)

    @property
    def ended(self) -> bool:
        """Every part's batch reached a terminal status."""
        return self.created and all(status_of(p.status).is_terminal for p in self.parts)

    @property
    def status(self) -> str:
        """One normalized status for the job: the least advanced of its running batches, or
        ``succeeded`` when all succeeded, else the worst ending (failed > expired > cancelled).
        Before every batch exists it is the job's phase (``preparing``, ``submitting``)."""
        if self.job.phase == "abandoned":
            return "abandoned"
        if not self.created:
            return self.job.phase if self.job.phase in ("preparing", "submitting") else "submitting"
        statuses = [status_of(p.status) for p in self.parts]
        if BatchStatus.CANCELLING in statuses:
            return BatchStatus.CANCELLING.value
        running = [s for s in statuses if not s.is_terminal]
        if running:
            return min(running, key=_WAITING_ORDER.index).value
        for ending in _ENDED_ORDER:
            if ending in statuses:
                return ending.value
        return BatchStatus.SUCCEEDED.value

    @property
    def counts(self) -> dict[str, int]:
        total = dict.fromkeys(("total", "succeeded", "failed", "cancelled", "expired"), 0)
        for p in self.parts:
            for key in total:
                total[key] += int(p.counts.get(key, 0))
            if not p.counts.get("total"):
                total["total"] += p.requests
        return total

    @property
    def cost(self) -> dict[str, Any]:
        """``cost_usd`` (unrounded; None until the results are read or when unknown),
        ``cost_source`` and ``cost_reason``, as the ledger recorded them."""
        summary = self.job.summary or {}
        if "cost_reason" not in summary:
            return {"cost_usd": None, "cost_source": None, "cost_reason": "results not read yet"}
        return {k: summary.get(k) for k in ("cost_usd", "cost_source", "cost_reason")}

    def cost_label(self) -> str:
        cost = self.cost
        if cost["cost_usd"] is None:
            return f"unknown ({cost['cost_reason']})"
        where = "reported by the provider" if cost["cost_source"] == "provider" else "batch prices"
        return f"${cost['cost_usd']:.6f} ({where})"

    def to_dict(self) -> dict[str, Any]:
        job = self.job
        return {
            "job": job.id,
            "provider": job.provider,
            "base_url": job.base_url,
            "embedded": job.embedded,
            "status": self.status,
            "phase": job.phase,
            "counts": request_words(self.counts),
            "requests": job.total,
            "input": job.input_path,
            "output": job.output_path,
            "options": dict(job.options),
            "summary": dict(job.summary) if job.summary else None,
            **self.cost,
            "created_at": datetime.fromtimestamp(job.created_at, UTC).isoformat(),
            "updated_at": datetime.fromtimestamp(job.updated_at, UTC).isoformat(),
            "batches": [
                {
                    "part": p.part + 1,  # numbered from 1, as every message says "part 1/3"
                    "requests": p.requests,
                    "batch_id": p.batch_id,
                    "status": p.status,
                    "provider_status": p.provider_status,
                    "counts": request_words(p.counts),
                    "input_file_id": p.file_id,
                    "output_file_ids": list(p.output_file_ids),
                    "error_file_ids": list(p.error_file_ids),
                }
                for p in self.parts
            ],
        }


@dataclass(frozen=True)
class RunResult:
    """What :meth:`JobRunner.run` did."""

    view: JobView
    resumed: bool
    output: Path | None = None
    summary: OutputSummary | None = None
    rewritten: bool = False
    """The job had finished: OUTPUT was written again from its downloaded results, and the
    provider was not called."""

    @property
    def succeeded(self) -> bool:
        return self.view.status == BatchStatus.SUCCEEDED.value


class JobObserver:
    """Receives what a runner does; the CLI draws progress from it. Methods do nothing here."""

    def message(self, text: str) -> None:
        """A one-line note (uploaded a part, reattached a batch, ...)."""

    def waiting(self, view: JobView) -> None:
        """Waiting starts."""

    def progress(self, view: JobView) -> None:
        """A polling round stored new states."""

    def waited(self, view: JobView) -> None:
        """Waiting ended (every batch ended, or the wait was interrupted)."""


def hash_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def job_key(input_hash: str, settings: ProviderSettings, options: JobOptions) -> str:
    """A job's identity: same input bytes, provider, endpoint and options = same job.

    Everything that changes what is sent belongs here (through ``options``); the key, its
    source and anything else that does not change the batches stay out.
    """
    identity: dict[str, Any] = {
        "v": 1,
        "input": input_hash,
        "provider": settings.provider,
        "base_url": safe_url(settings.base_url),
        "options": options.as_dict(),
    }
    if settings.options:  # the model map and other provider settings; absent when empty, so
        identity["settings"] = dict(settings.options)  # the jobs recorded before keep their keys
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()


def part_key(job_key: str, part: int) -> str:
    """The idempotency key of a job's part: derived from the job's identity, so a run that lost
    its ledger still finds the batches an earlier run created (see docs/reliability.md)."""
    return hashlib.sha256(f"{job_key}:part:{part}".encode()).hexdigest()[:32]


def placeholder_batch(part: PartRecord, provider: str) -> Batch:
    """The last state the ledger has of a part, as a Batch (for WaitTimeoutError)."""
    return Batch(
        id=part.batch_id or "",
        provider=provider,
        status=status_of(part.status),
        provider_status=part.provider_status or "unknown",
        request_counts=RequestCounts(**{k: int(v) for k, v in part.counts.items()}),
    )


def request_words(counts: Mapping[str, Any]) -> dict[str, Any]:
    """Request counts in OUTPUT's words: a request that did not succeed is ``errored`` (the
    word ``failed`` belongs to a batch's status)."""
    return {("errored" if key == "failed" else key): value for key, value in counts.items()}
