"""How commands print: data on stdout (a table, or JSON with ``--json``), notes on stderr.

Everything printed passes through :meth:`State.redact`, so a key can never reach the terminal,
a log or a script's input, even if a provider echoes it in an error message.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
import orjson

if TYPE_CHECKING:
    from rich.console import Console

    from omnibatch.cli._app import State

__all__ = ["Printer", "fmt_counts", "fmt_time"]


def fmt_time(value: float | datetime | None, *, short: bool = False) -> str:
    """A local, minute-precision timestamp for tables (``short``: without the year)."""
    if value is None:
        return "-"
    when = value if isinstance(value, datetime) else datetime.fromtimestamp(value)
    return when.astimezone().strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M")


def fmt_counts(counts: Mapping[str, int]) -> str:
    """``7/10 done (6 ok, 1 errored)``: requests that did not succeed are ``errored``, as in
    OUTPUT (``failed`` is a batch's status, never a request's)."""
    total = int(counts.get("total", 0))
    ok = int(counts.get("succeeded", 0))
    failed = int(counts.get("failed", 0))
    other = int(counts.get("cancelled", 0)) + int(counts.get("expired", 0))
    done = ok + failed + other
    text = f"{done}/{total} done"
    extra = [f"{ok} ok"] if done else []
    if failed:
        extra.append(f"{failed} errored")
    if other:
        extra.append(f"{other} not run")
    return f"{text} ({', '.join(extra)})" if extra else text


class Printer:
    """Output for one command run, honouring ``--json`` and ``-q``."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._err: Console | None = None
        self._out: Console | None = None

    @property
    def interactive(self) -> bool:
        """A live progress display makes sense: stderr is a terminal, no --json or -q."""
        return sys.stderr.isatty() and not self.state.json and not self.state.quiet

    @property
    def err_console(self) -> Console:
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False)
        return self._err

    @property
    def out_console(self) -> Console:
        if self._out is None:
            from rich.console import Console

            self._out = Console(highlight=False, soft_wrap=True)
        return self._out

    def json(self, data: Any) -> None:
        """One JSON document on stdout."""
        if self.state.emulator is not None and isinstance(data, dict):
            data = {**data, "emulator": True, "emulator_url": self.state.emulator}
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode()
        click.echo(self.state.redact(text))

    def json_line(self, data: Any) -> None:
        """One JSON object per line (for streams such as ``emulator serve``)."""
        click.echo(self.state.redact(orjson.dumps(data, default=str).decode()))

    def note(self, text: str) -> None:
        """A message for the person at the terminal (stderr; hidden by --json and -q)."""
        if not (self.state.json or self.state.quiet):
            click.echo(self.state.redact(text), err=True)

    def warn(self, text: str) -> None:
        """A warning (stderr; hidden by --json only)."""
        if not self.state.json:
            click.echo(self.state.redact(f"warning: {text}"), err=True)

    def line(self, text: str) -> None:
        """A line of the command's result (stdout; stderr when stdout carries results)."""
        click.echo(self.state.redact(text), err=self.state.stdout_is_data)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
        """A table on stdout: drawn by rich on a terminal, plain aligned columns otherwise (never
        truncated, so ids can be copied and piped)."""
        cells = [[self.state.redact(str(cell)) for cell in row] for row in rows]
        if not sys.stdout.isatty():
            widths = [len(c) for c in columns]
            for row in cells:
                widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
            for row in [list(columns), *cells]:
                click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            return
        from rich import box
        from rich.table import Table

        table = Table(title=title or None, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for index, column in enumerate(columns):
            table.add_column(column, no_wrap=index == 0, overflow="fold")
        for row in cells:
            table.add_row(*row)
        self.out_console.print(table)
