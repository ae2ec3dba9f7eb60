"""The ``omnibatch`` command group: global options, shared state, exit codes, error reporting.

Only click and the standard library are imported here; every command imports what it needs
(the client, the emulator, rich) when it runs, so ``omnibatch --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import update_wrapper
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from omnibatch import __version__

if TYPE_CHECKING:
    from omnibatch.cli._output import Printer
    from omnibatch.config import FileConfig, ProviderSettings
    from omnibatch.ledger import Ledger

__all__ = [
    "EXIT_BUSY",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PROVIDER",
    "EXIT_TERMINATED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "State",
    "cli",
    "command",
    "exit_code_for",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1  # input validation problems, or a batch ended failed / expired / cancelled
EXIT_USAGE = 2  # bad command line (click's own code)
EXIT_CONFIG = 3  # configuration: no provider or key, unknown provider, bad config, ledger
EXIT_PROVIDER = 4  # the provider or the network failed (after retries)
EXIT_NOT_FOUND = 5  # no such job in the ledger, or no such batch at the provider
EXIT_BUSY = 6  # another omnibatch process is running this job
EXIT_TIMEOUT = 7  # wait --timeout ran out before the batches ended
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM (handled like Ctrl-C: progress saved, resume command printed)

F = TypeVar("F", bound=Callable[..., Any])

# Environment variables whose values are secrets, whatever provider they belong to.
_SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET")


@dataclass
class State:
    """What the global options set, shared by every command."""

    argv: list[str] = field(default_factory=list)
    provider: str | None = None
    config_path: str | None = None
    json: bool = False
    verbose: int = 0
    quiet: bool = False
    # ``-o -``: stdout carries the results, so what would be printed there goes to stderr.
    stdout_is_data: bool = False
    # ``run --keep-data``: keep the job's working files when it ends.
    keep_data: bool = False
    secrets: set[str] = field(default_factory=set)
    emulator: str | None = None
    """The emulator URL this command talks to, once announced (``--json`` says so too)."""
    accept_empty_ledger: bool = False
    """``--new``: an empty ledger beside job folders is accepted (see Ledger)."""
    _config: FileConfig | None = None
    _ledger: Ledger | None = None
    _printer: Printer | None = None

    def __post_init__(self) -> None:
        for name, value in os.environ.items():
            if name.endswith(_SECRET_SUFFIXES) and len(value) >= 6:
                self.secrets.add(value)

    def announce_emulator(self, settings: ProviderSettings) -> None:
        """Say, before anything else, that this command talks to an emulator: which one and
        where its URL came from. In bold when a real key was found and is not sent, so a
        leftover ``OMNIBATCH_EMULATOR_URL`` can never pass a fake run off as a real one."""
        if not settings.emulated or self.emulator is not None:
            return
        self.emulator = settings.base_url
        if settings.embedded:
            click.echo(
                f"emulator: no provider configured: running on the embedded emulator at "
                f"{settings.base_url} (fake answers, nothing leaves this machine; pass "
                "--provider for a real one)",
                err=True,
            )
            return
        where = settings.sources.get("base_url", "the configuration")
        text = (
            f"emulator: {settings.provider} is the omnibatch emulator at {settings.base_url} "
            f"(from {where}); answers are fake and nothing reaches {settings.provider}"
        )
        unused = settings.sources.get("unused_api_key")
        if unused and self.provider:
            text += f"; your {unused} key is not used: unset {where.lstrip('$')} for a real run"
            click.echo(
                click.style(self.redact(text), bold=True),
                err=True,
                color=not os.environ.get("NO_COLOR"),
            )
            return
        click.echo(self.redact(text), err=True)

    def add_secret(self, value: str | None) -> None:
        if value and len(value) >= 6:
            self.secrets.add(value)

    def redact(self, text: str) -> str:
        """``text`` with every known secret (and any URL password, bearer token or API key
        header value) replaced by ``***``."""
        from omnibatch._exceptions import redact

        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        result: str = redact(text)
        return result

    @property
    def config(self) -> FileConfig:
        if self._config is None:
            from omnibatch.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            from omnibatch.ledger import Ledger

            self._ledger = Ledger(accept_empty=self.accept_empty_ledger)
        return self._ledger

    @property
    def out(self) -> Printer:
        if self._printer is None:
            from omnibatch.cli._output import Printer

            self._printer = Printer(self)
        return self._printer

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def setup_logging(self) -> None:
        """``-v``: info from omnibatch's loggers, ``-vv``: debug (HTTP requests, retries).
        Every record passes through the redacting filter, so no key reaches the log."""
        root = logging.getLogger("omnibatch")
        for handler in list(root.handlers):
            if getattr(handler, "_omnibatch_cli", False):
                root.removeHandler(handler)
        if self.verbose <= 0:
            root.setLevel(logging.WARNING)
        else:
            root.setLevel(logging.INFO if self.verbose == 1 else logging.DEBUG)
        handler = logging.StreamHandler(sys.stderr)
        handler._omnibatch_cli = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler.addFilter(_RedactFilter(self))
        root.addHandler(handler)
        root.propagate = False


class _RedactFilter(logging.Filter):
    def __init__(self, state: State) -> None:
        super().__init__()
        self._state = state

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._state.redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


def _state(ctx: click.Context) -> State:
    state = ctx.find_object(State)
    if state is None:  # invoked without main() (e.g. click's test runner)
        state = ctx.ensure_object(State)
    return state


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        state = _state(ctx)
        if name == "verbose":
            state.verbose += int(value or 0)
        elif value not in (None, False):
            setattr(state, name, value)

    return callback


def global_options(func: F) -> F:
    """``--provider``, ``--config``, ``--json``, ``-v``, ``-q``: accepted before the verb
    (``omnibatch --json jobs``) and after it (``omnibatch jobs --json``)."""
    options = [
        click.option(
            "-p",
            "--provider",
            metavar="NAME",
            expose_value=False,
            callback=_set("provider"),
            help="Provider to use (default: $OMNIBATCH_PROVIDER or the config file).",
        ),
        click.option(
            "--config",
            "config_path",
            metavar="FILE",
            expose_value=False,
            callback=_set("config_path"),
            help="Config file (default: ./omnibatch.toml or [tool.omnibatch]).",
        ),
        click.option(
            "--json",
            "json",
            is_flag=True,
            expose_value=False,
            callback=_set("json"),
            help="Print machine-readable JSON on stdout.",
        ),
        click.option(
            "-v",
            "--verbose",
            count=True,
            expose_value=False,
            callback=_set("verbose"),
            help="Log what happens (-vv: every request).",
        ),
        click.option(
            "-q",
            "--quiet",
            is_flag=True,
            expose_value=False,
            callback=_set("quiet"),
            help="Print only results and errors.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added, not alphabetical


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.version_option(__version__, prog_name="omnibatch")
def cli() -> None:
    """Run LLM batch jobs on any provider: validate, upload, create, wait, collect.

    \b
    Start here (no provider needed, runs on a built-in emulator):
      omnibatch run examples/requests.jsonl -o results.jsonl

    \b
    Exit codes: 0 ok, 1 validation problems or a batch did not succeed,
    2 usage, 3 configuration, 4 provider or network, 5 not found,
    6 job busy in another process, 7 wait timed out, 130 interrupted (143 on SIGTERM).
    """


def command(group: click.Group, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Declare a verb: global options, logging set up, the State passed first, and the return
    value as the exit code."""

    def decorate(func: F) -> F:
        def run(*args: Any, **kw: Any) -> int:
            ctx = click.get_current_context()
            state = _state(ctx)
            state.setup_logging()
            result = func(state, *args, **kw)
            return int(result or 0)

        own = list(getattr(func, "__click_params__", []))
        update_wrapper(run, func)
        run.__click_params__ = []  # type: ignore[attr-defined]
        global_options(run)
        # click lists parameters in reverse: the verb's own options first, then the global ones.
        run.__click_params__ = run.__click_params__ + own  # type: ignore[attr-defined]
        return cast(F, group.command(name, **kwargs)(run))

    return decorate


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an omnibatch error."""
    from omnibatch._exceptions import (
        BatchStateError,
        ConfigurationError,
        InputValidationError,
        NotFoundError,
        PluginError,
        ProviderError,
        StorageError,
        UnsupportedOperationError,
        WaitTimeoutError,
    )
    from omnibatch.ledger import JobBusyError, JobNotFoundError, LedgerError

    if isinstance(exc, InputValidationError):
        return EXIT_FAILED
    if isinstance(exc, JobBusyError):
        return EXIT_BUSY
    if isinstance(exc, WaitTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, NotFoundError | JobNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(
        exc,
        ConfigurationError | PluginError | LedgerError | StorageError | UnsupportedOperationError,
    ):
        return EXIT_CONFIG
    if isinstance(exc, ProviderError):
        return EXIT_PROVIDER
    if isinstance(exc, BatchStateError):
        return EXIT_FAILED
    return EXIT_FAILED


def _vanished_hint(exc: BaseException) -> str | None:
    """What to say when a provider no longer knows a batch or file: on an emulator, which
    keeps its state in memory unless told otherwise, the usual cause is a restart."""
    from omnibatch._exceptions import NotFoundError
    from omnibatch.config import EMULATOR_URL_ENV

    if not isinstance(exc, NotFoundError) or not os.environ.get(EMULATOR_URL_ENV):
        return None
    return (
        "the emulator may have restarted: it keeps batches and files in memory unless served "
        "with `omnibatch emulator serve --state-dir DIR`; run the command again with --new to "
        "submit the job anew"
    )


def _report(state: State, exc: BaseException, code: int) -> None:
    from omnibatch._exceptions import InputValidationError, WaitTimeoutError

    kind = type(exc).__name__
    hint = _vanished_hint(exc)
    if state.json:
        payload: dict[str, Any] = {"type": kind, "message": str(exc), "exit_code": code}
        if isinstance(exc, InputValidationError):
            payload["problems"] = [p.model_dump() for p in exc.problems]
        if hint is not None:
            payload["hint"] = hint
        if isinstance(exc, WaitTimeoutError) and exc.waited_seconds is not None:
            payload["waited_seconds"] = exc.waited_seconds
        state.out.json({"error": payload})
        return
    click.echo(state.redact(f"error: {exc}"), err=True)
    if hint is not None:
        click.echo(f"hint: {hint}", err=True)
    if isinstance(exc, InputValidationError) and len(exc.problems) > 20 and exc.source:
        click.echo(f"run `omnibatch validate {exc.source}` to see every problem", err=True)


def _on_sigterm() -> list[int]:
    """Make SIGTERM behave like Ctrl-C (``kill``, a stopping service, a CI timeout): the verb
    saves its progress and prints how to resume. The list is non-empty once it arrived."""
    import signal

    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
    return received


def _show_click_error(exc: click.ClickException) -> None:
    """A usage error as every verb reports errors: ``error: ...`` on stderr, after the usage
    hint click gives."""
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        hint = f"Try '{exc.ctx.command_path} {exc.ctx.help_option_names[0]}' for help."
        click.echo(f"{exc.ctx.get_usage()}\n{hint}\n", err=True)
    click.echo(f"error: {exc.format_message()}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``omnibatch`` console script; returns the exit code."""
    from omnibatch._exceptions import BatchError

    args = list(sys.argv[1:] if argv is None else argv)
    state = State(argv=args)
    terminated = _on_sigterm()
    try:
        result = cli.main(args=args, prog_name="omnibatch", standalone_mode=False, obj=state)
        if terminated and result == EXIT_INTERRUPTED:
            return EXIT_TERMINATED
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except click.ClickException as exc:
        _show_click_error(exc)
        return exc.exit_code
    except BatchError as exc:
        code = exit_code_for(exc)
        _report(state, exc, code)
        return code
    except Exception as exc:
        from omnibatch.ledger import damage_error

        damage = damage_error(exc, state._ledger.path if state._ledger else None)
        if damage is None:
            raise
        code = exit_code_for(damage)
        _report(state, damage, code)
        return code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        state.close()
    return result if isinstance(result, int) else EXIT_OK


# Importing the verbs registers them on ``cli``; ``omnibatch plugin`` (plugin authors' tools)
# is a group of its own.
from omnibatch.cli import _configcmd, _jobcmds, _toolcmds  # noqa: E402, F401
from omnibatch.cli_plugin import plugin as _plugin_group  # noqa: E402

cli.add_command(_plugin_group)
