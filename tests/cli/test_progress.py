"""The progress displays, rendered in process: rich on a (forced) terminal, plain lines
otherwise. Both show normalized and raw status, counts and elapsed time; rich adds an ETA."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from omnibatch.cli._progress import LineProgress, RichProgress, rows_of_job
from omnibatch.jobs import JobView
from omnibatch.ledger import Ledger, NewPart


def _views(tmp_path: Path) -> list[JobView]:
    ledger = Ledger(tmp_path / "home")
    job = ledger.create_job(
        job_key="k",
        provider="openai",
        base_url="http://x/v1",
        key_source=None,
        embedded=False,
        input_path="in.jsonl",
        input_hash="h",
        options={},
    )
    ledger.add_parts(
        job.id,
        [
            NewPart(i, 4, tmp_path / "p", tmp_path / "i", "/v1/chat/completions", "m")
            for i in range(2)
        ],
        8,
    )
    for part in (0, 1):
        ledger.record_batch(
            job.id,
            part,
            batch_id=f"batch_{part}",
            status="validating",
            provider_status="validating",
            counts={"total": 4},
        )
    views = [JobView(ledger.job(job.id), tuple(ledger.parts(job.id)))]
    for done, status, raw in ((3, "running", "in_progress"), (4, "succeeded", "completed")):
        for part in (0, 1):
            ledger.update_status(
                job.id,
                part,
                status=status,
                provider_status=raw,
                counts={"total": 4, "succeeded": done},
            )
        views.append(JobView(ledger.job(job.id), tuple(ledger.parts(job.id))))
    ledger.close()
    return views


def test_rich_progress(tmp_path: Path) -> None:
    views = _views(tmp_path)
    console = Console(file=io.StringIO(), force_terminal=True, width=160, color_system=None)
    display = RichProgress(console)
    display.waiting(views[0])
    display.progress(views[1])
    display.waited(views[2])
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert views[0].id in text and "batch_0" in text and "batch_1" in text
    assert "validating" in text and "running (in_progress)" in text
    assert "succeeded (completed)" in text and "8/8" in text and "4/4" in text
    assert "ETA" in text and "0:00:00" in text


def test_line_progress_prints_status_changes(tmp_path: Path) -> None:
    views = _views(tmp_path)
    lines: list[str] = []
    display = LineProgress(lines.append)
    display.waiting(views[0])
    display.progress(views[1])
    display.progress(views[1])  # nothing changed: nothing printed
    display.progress(views[2])
    assert lines[0] == f"waiting for {views[0].id}: validating, 0/8 done"
    assert lines[1].startswith("batch_0: running (in_progress), 3/4 done (elapsed 0:00:00)")
    assert len(lines) == 5 and lines[4].startswith("batch_1: succeeded (completed), 4/4 done")


def test_one_batch_is_one_row(tmp_path: Path) -> None:
    view = _views(tmp_path)[1]
    single = JobView(view.job, view.parts[:1])
    (row,) = rows_of_job(single)
    assert row.status_text == "running (in_progress)"


def _frames(text: str) -> list[str]:
    """The visible lines of a live display's output, control sequences removed."""
    import re

    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", text)
    return [line.rstrip() for line in plain.replace("\r", "\n").split("\n") if line.strip()]


def test_rich_progress_fits_80_columns_without_cutting_words(tmp_path: Path) -> None:
    views = _views(tmp_path)
    console = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    display = RichProgress(console)
    display.waiting(views[0])
    display.progress(views[1])
    display.waited(views[2])
    lines = _frames(console.file.getvalue())  # type: ignore[attr-defined]
    assert lines and all(len(line) <= 80 for line in lines), lines
    text = "\n".join(lines)
    assert "…" not in text
    assert views[0].id in text and "running (in_progress)" in text and "8/8" in text
    assert "succeeded (completed)" in text


def test_narrow_terminal_drops_columns_not_letters(tmp_path: Path) -> None:
    views = _views(tmp_path)
    display = RichProgress(Console(file=io.StringIO(), width=80))
    now = 0.0
    cells = [display.cells(row, now) for row in rows_of_job(views[1])]
    wide, wide_bar = display.columns_for(200, cells)
    assert wide == ["label", "bar", "counts", "status", "elapsed", "eta"] and wide_bar == 30
    at_80, bar_80 = display.columns_for(80, cells)
    assert {"label", "counts", "status"} <= set(at_80) and bar_80 >= 10
    narrow, bar = display.columns_for(45, cells)
    assert narrow == ["label", "counts", "status"] and bar == 0
    console = Console(file=io.StringIO(), force_terminal=True, width=45, color_system=None)
    display = RichProgress(console)
    display.waiting(views[1])
    display.waited(views[1])
    lines = _frames(console.file.getvalue())  # type: ignore[attr-defined]
    assert all(len(line) <= 45 for line in lines)
    assert any(line.startswith(views[1].id) and line.endswith("running") for line in lines)
    assert any("batch_0" in line and line.endswith("running (in_progress)") for line in lines)
