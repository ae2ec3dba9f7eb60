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
    from rich.live import Live

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


# Columns of the rich display, and the order they go when the terminal is too narrow: a
# narrow terminal loses whole columns (ETA first), never letters of an id or a status.
_COLUMNS = ("label", "bar", "counts", "status", "elapsed", "eta")
_DROP_ORDER = ("eta", "elapsed", "bar", "status")
_BAR_MIN, _BAR_MAX = 10, 30
_GAP = 1


class RichProgress(JobObserver):
    """A live display on a terminal: a row per batch and one for the job, with a bar, the
    counts, the status (normalized and raw), elapsed time and ETA. Whatever the terminal's
    width, each line fits it: columns are dropped, words are never cut."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Live | None = None
        self._rows: list[Row] = []
        self._start = time.monotonic()
        self._first_done: dict[str, tuple[float, int]] = {}

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def waiting(self, view: JobView) -> None:
        self.start(rows_of_job(view))

    def progress(self, view: JobView) -> None:
        self.update(rows_of_job(view))

    def waited(self, view: JobView) -> None:
        self.stop(rows_of_job(view))

    def start(self, rows: Sequence[Row]) -> None:
        from rich.live import Live

        self._start = time.monotonic()
        self._first_done.clear()
        self._rows = list(rows)
        self._live = Live(
            get_renderable=self._renderable,
            console=self.console,
            transient=False,
            refresh_per_second=4,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start(refresh=True)  # every row exists before the first poll returns

    def update(self, rows: Sequence[Row]) -> None:
        if self._live is None:
            return
        if rows:
            self._rows = list(rows)
        self._live.refresh()  # draw each poll round now, not at the next tick

    def stop(self, rows: Sequence[Row]) -> None:
        if self._live is not None:
            if rows:
                self._rows = list(rows)
            self._live.refresh()
            self._live.stop()
            self._live = None

    # -- rendering -----------------------------------------------------------------------------

    def _eta(self, row: Row, now: float) -> str:
        if row.total and row.done >= row.total:
            return "ETA 0:00:00"
        first = self._first_done.setdefault(row.key, (now, row.done))
        gained, spent = row.done - first[1], now - first[0]
        if gained <= 0 or spent <= 0:
            return "ETA -:--:--"
        return "ETA " + _clock((row.total - row.done) * spent / gained)

    def cells(self, row: Row, now: float) -> dict[str, str]:
        """The text of each column of one row (the bar is drawn separately)."""
        return {
            "label": row.label,
            "counts": f"{row.done}/{row.total}",
            "status": row.status_text,
            "elapsed": _clock(now - self._start),
            "eta": self._eta(row, now),
        }

    def columns_for(self, width: int, rows: Sequence[dict[str, str]]) -> tuple[list[str], int]:
        """The columns that fit in ``width``, and the bar's width (0: no bar)."""
        from rich.cells import cell_len

        need = {
            name: max((cell_len(r[name]) for r in rows), default=0)
            for name in _COLUMNS
            if name != "bar"
        }
        shown = list(_COLUMNS)
        for drop in (None, *_DROP_ORDER):
            if drop is not None:
                shown.remove(drop)
            text = sum(need[c] for c in shown if c != "bar") + _GAP * (len(shown) - 1)
            if "bar" not in shown and text <= width:
                return shown, 0
            if "bar" in shown and text + _BAR_MIN <= width:
                return shown, min(_BAR_MAX, width - text)
        return shown, 0  # only the essentials left: rich folds them as a last resort

    def _renderable(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        now = time.monotonic()
        cells = [self.cells(row, now) for row in self._rows]
        shown, bar = self.columns_for(self.console.width, cells)
        grid = Table.grid(padding=(0, _GAP, 0, 0))
        for name in shown:
            grid.add_column(no_wrap=True, justify="right" if name == "counts" else "left")
        for row, cell in zip(self._rows, cells, strict=True):
            values: list[Any] = []
            for name in shown:
                if name == "bar":
                    values.append(
                        ProgressBar(total=max(row.total, 1), completed=row.done, width=bar)
                    )
                else:
                    values.append(cell[name])
            grid.add_row(*values)
        return grid
