"""Progress while waiting: a live rich display on a terminal, plain status lines otherwise.

Both show, per batch and for the whole job, the normalized and raw status, request counts,
elapsed time and (rich) an ETA. They receive :class:`Row` values, built from a ledger job
(:func:`rows_of_job`) or from a bare provider batch (:func:`rows_of_batch`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omnibatch.jobs import JobObserver, JobView

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from omnibatch.models import Batch

__all__ = ["LineProgress", "RichProgress", "Row", "rows_of_batch", "rows_of_job"]

# More parts than this and only the job's total row is drawn.
MAX_ROWS = 8


@dataclass(frozen=True)
class Row:
    """One line of progress: a batch, or the whole job (``key`` = "job")."""

    key: str
    label: str
    status: str
    provider_status: str
    done: int
    total: int
    ok: int = 0
    failed: int = 0

    @property
    def status_text(self) -> str:
        raw = self.provider_status
        return f"{self.status} ({raw})" if raw and raw.lower() != self.status else self.status


def _done(counts: Any) -> int:
    return sum(int(counts.get(k, 0)) for k in ("succeeded", "failed", "cancelled", "expired"))


def rows_of_job(view: JobView) -> list[Row]:
    """The job's total row, then one per batch (one row only for a single batch; only the
    total beyond MAX_ROWS batches)."""
    counts = view.counts
    raw = view.parts[0].provider_status or "" if len(view.parts) == 1 else ""
    job = Row(
        "job",
        view.id,
        view.status,
        raw,
        _done(counts),
        counts["total"],
        counts["succeeded"],
        counts["failed"],
    )
    if len(view.parts) <= 1 or len(view.parts) > MAX_ROWS:
        return [job]
    rows = [job]
    for part in view.parts:
        c = part.counts
        rows.append(
            Row(
                f"part-{part.part}",
                f"  {part.batch_id or f'part {part.part + 1}'}",
                part.status or "submitting",
                part.provider_status or "",
                _done(c),
                int(c.get("total") or part.requests),
                int(c.get("succeeded", 0)),
                int(c.get("failed", 0)),
            )
        )
    return rows


def rows_of_batch(batch: Batch) -> list[Row]:
    c = batch.request_counts
    return [
        Row(
            "batch",
            batch.id,
            batch.status.value,
            batch.provider_status,
            c.done,
            c.total,
            c.succeeded,
            c.failed,
        )
    ]


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class LineProgress(JobObserver):
    """Plain lines on stderr: one when a status changes, and a heartbeat every ``every`` s."""

    def __init__(self, echo: Callable[[str], None], *, every: float = 30.0) -> None:
        self._echo = echo
        self._every = every
        self._last: dict[str, str] = {}
        self._start = time.monotonic()
        self._beat = 0.0

    def message(self, text: str) -> None:
        self._echo(text)

    def waiting(self, view: JobView) -> None:
        self.start(rows_of_job(view))

    def progress(self, view: JobView) -> None:
        self.update(rows_of_job(view))

    def waited(self, view: JobView) -> None:
        self.stop(rows_of_job(view))

    def start(self, rows: Sequence[Row]) -> None:
        self._start = time.monotonic()
        self._beat = self._start
        job = rows[0]
        self._echo(f"waiting for {job.label}: {job.status_text}, {job.done}/{job.total} done")

    def update(self, rows: Sequence[Row]) -> None:
        now = time.monotonic()
        elapsed = _clock(now - self._start)
        changed = False
        for row in rows:
            if row.key == "job" and len(rows) > 1:
                continue
            state = f"{row.status_text}"
            if self._last.get(row.key) != state:
                self._last[row.key] = state
                changed = True
                self._echo(
                    f"{row.label.strip()}: {row.status_text}, {row.done}/{row.total} done "
                    f"(elapsed {elapsed})"
                )
        if not changed and now - self._beat >= self._every:
            job = rows[0]
            self._echo(
                f"{job.label}: {job.status_text}, {job.done}/{job.total} done (elapsed {elapsed})"
            )
        if changed or now - self._beat >= self._every:
            self._beat = now

    def stop(self, rows: Sequence[Row]) -> None:
        """Nothing to tear down for plain lines."""


class RichProgress(JobObserver):
    """A live display on a terminal: a bar per batch and one for the job, with the status,
    counts, elapsed time and ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def waiting(self, view: JobView) -> None:
        self.start(rows_of_job(view))

    def progress(self, view: JobView) -> None:
        self.update(rows_of_job(view))

    def waited(self, view: JobView) -> None:
        self.stop(rows_of_job(view))

    def start(self, rows: Sequence[Row]) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            refresh_per_second=4,
        )
        self.update(rows)  # every row exists before the first frame is drawn
        self._progress.start()

    def update(self, rows: Sequence[Row]) -> None:
        if self._progress is None:
            return
        for row in rows:
            task = self._tasks.get(row.key)
            if task is None:
                task = self._progress.add_task(
                    row.label, total=max(row.total, 1), status=row.status_text
                )
                self._tasks[row.key] = task
            self._progress.update(
                task,
                completed=row.done,
                total=max(row.total, 1),
                status=row.status_text,
                description=row.label,
            )
        if self._progress.live.is_started:
            self._progress.refresh()  # draw each poll round now, not at the next tick

    def stop(self, rows: Sequence[Row]) -> None:
        if self._progress is not None:
            self.update(rows)
            self._progress.stop()
            self._progress = None
            self._tasks.clear()
