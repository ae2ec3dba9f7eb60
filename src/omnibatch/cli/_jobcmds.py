"""The job verbs: run, submit, status, wait, results, cancel, list, jobs."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from omnibatch._answers import OUTPUT_FORMATS
from omnibatch.cli._app import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    State,
    _state,
    cli,
    command,
    global_options,
)
from omnibatch.cli._output import fmt_counts, fmt_time

if TYPE_CHECKING:
    from omnibatch.config import ProviderSettings
    from omnibatch.emulator import EmulatorServer
    from omnibatch.jobs import JobObserver, JobOptions, JobRunner, JobView
    from omnibatch.ledger import JobRecord, PartRecord
    from omnibatch.models import Batch

# The embedded emulator runs this many times faster than real time, and is polled this often.
EMBEDDED_SPEED = 5.0
EMBEDDED_POLL = 0.1


def _observer(state: State) -> JobObserver:
    from omnibatch.cli._progress import LineProgress, RichProgress
    from omnibatch.jobs import JobObserver

    if state.json or state.quiet:
        return JobObserver()
    if state.out.interactive:
        return RichProgress(state.out.err_console)
    return LineProgress(state.out.note)


def _runner(
    state: State,
    *,
    poll_interval: float | None = None,
    keep_files: bool = False,
    observer: JobObserver | None = None,
) -> JobRunner:
    from omnibatch._lifecycle import PollPolicy
    from omnibatch.jobs import JobRunner

    poll = None
    if poll_interval is not None:
        poll = PollPolicy(initial=poll_interval, maximum=max(poll_interval, 60.0))
    checkpoint, transport = _crash_switch()
    return JobRunner(
        state.ledger,
        config=state.config,
        observer=observer if observer is not None else _observer(state),
        poll=poll,
        keep_files=keep_files,
        keep_data=state.keep_data,
        checkpoint=checkpoint,
        transport=transport,
    )


def _crash_switch() -> tuple[Any, Any]:
    """``$OMNIBATCH_CRASH_AT``: the kill -9 tests' switch (see omnibatch.testing.crash)."""
    if not os.environ.get("OMNIBATCH_CRASH_AT"):
        return None, None
    from omnibatch.testing.crash import CrashPlan

    plan = CrashPlan.from_env()
    assert plan is not None
    return plan, plan.transport()


def _job_options(
    model: str | None,
    max_requests: int | None,
    metadata: tuple[str, ...],
    generate_ids: bool = False,
) -> JobOptions:
    from omnibatch.jobs import JobOptions

    pairs: dict[str, str] = {}
    for item in metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--metadata")
        pairs[key] = value
    return JobOptions(
        model=model, max_requests_per_batch=max_requests, metadata=pairs, generate_ids=generate_ids
    )


def _input_path(state: State, value: str) -> tuple[Path, bool]:
    """The input file; stdin (``-``) is copied into the omnibatch home first."""
    if value != "-":
        return Path(value), False
    from omnibatch.jobs import spool_stdin

    return spool_stdin(state.ledger.home / "stdin"), True


def _target(
    state: State, runner: JobRunner, *, embedded_ok: bool
) -> tuple[ProviderSettings, EmulatorServer | None]:
    """The configured provider, or (for ``run``) an emulator served by this process."""
    from omnibatch._exceptions import ConfigurationError
    from omnibatch.config import EMULATOR_URL_ENV, resolve_provider_name

    name = resolve_provider_name(state.provider, state.config)
    emulator_url = os.environ.get(EMULATOR_URL_ENV)
    if name is None and not emulator_url:
        if not embedded_ok:
            raise ConfigurationError(
                "no provider configured: pass --provider, set OMNIBATCH_PROVIDER, or point "
                "OMNIBATCH_EMULATOR_URL at `omnibatch emulator serve` (the embedded emulator "
                "lives only as long as `omnibatch run` waits for it)"
            )
        from omnibatch.emulator import serve

        server = serve(port=0, speed=EMBEDDED_SPEED)
        target = runner.embedded(server.base_url)
        state.announce_emulator(target)
        return target, server
    target = runner.resolve(state.provider)
    state.announce_emulator(target)
    state.add_secret(target.api_key)
    return target, None


@contextmanager
def _output_file(state: State, output: str) -> Iterator[Path]:
    """Where to write OUTPUT: the file, or for ``-o -`` a scratch file copied to stdout once it
    is complete (the summary lines then go to stderr, so stdout holds only results)."""
    if output != "-":
        yield Path(output).absolute()
        return
    if state.json:
        raise click.UsageError("-o - writes the results to stdout, so --json cannot: drop one")
    state.stdout_is_data = True
    scratch = Path(tempfile.mkdtemp(prefix="stdout-", dir=state.ledger.home))
    try:
        out = scratch / "output.jsonl"
        yield out
        if out.is_file():
            with open(out, "rb") as fh:
                shutil.copyfileobj(fh, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _resume_command(state: State) -> str:
    # --new again would start yet another job instead of resuming this one.
    return shlex.join(["omnibatch", *(a for a in state.argv if a != "--new")])


def _job_line(view: JobView) -> str:
    return f"job {view.id}: {view.status}, {fmt_counts(view.counts)}"


def _batch_json(batch: Batch) -> dict[str, Any]:
    from omnibatch.jobs.model import request_words

    data = batch.model_dump(mode="json", exclude={"raw"})
    data["request_counts"] = request_words(data["request_counts"])
    return data


# --- run / submit ---------------------------------------------------------------------------------

GENERATE_IDS = click.option(
    "--generate-ids",
    is_flag=True,
    help="Give lines without custom_id generated ids (request-N) instead of an error.",
)


FORMAT = click.option(
    "--format",
    "output_format",
    type=click.Choice(OUTPUT_FORMATS),
    default="omnibatch",
    show_default=True,
    help="OUTPUT's lines: normalized (the same fields on every provider), or OpenAI's batch "
    "output file with every answer as a chat.completion.",
)


def _job_params(func: Any) -> Any:
    options = [
        click.option(
            "-m",
            "--model",
            metavar="MODEL",
            help="Run every request on this model (replaces the model in the input).",
        ),
        click.option(
            "--max-requests-per-batch",
            type=click.IntRange(min=1),
            metavar="N",
            help="Split into batches of at most N requests (default: provider limit).",
        ),
        click.option(
            "--metadata",
            multiple=True,
            metavar="KEY=VALUE",
            help="Metadata for the provider batches (repeatable).",
        ),
        click.option(
            "--new", is_flag=True, help="Start a new job even if the same one was run before."
        ),
        click.option(
            "--strict",
            is_flag=True,
            help="Refuse (exit 1, nothing sent) when a request's model does not look like the "
            "provider's; without it, a warning names the line and the model map to add.",
        ),
        GENERATE_IDS,
    ]
    for option in reversed(options):
        func = option(func)
    return func


@command(cli, "run")
@click.argument(
    "input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write one result line per input request (- for stdout).",
)
@_job_params
@FORMAT
@click.option("--no-wait", is_flag=True, help="Submit and return; run again later to collect.")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    metavar="SECONDS",
    help="First status poll delay (grows up to 60 s).",
)
@click.option("--keep-files", is_flag=True, help="Keep the uploaded input files at the provider.")
@click.option(
    "--keep-data",
    is_flag=True,
    help="Keep the job's working files (input parts, downloads) in $OMNIBATCH_HOME when it ends.",
)
def run_cmd(
    state: State,
    input_file: str,
    output: str,
    model: str | None,
    max_requests_per_batch: int | None,
    metadata: tuple[str, ...],
    new: bool,
    strict: bool,
    output_format: str,
    generate_ids: bool,
    no_wait: bool,
    poll_interval: float | None,
    keep_files: bool,
    keep_data: bool,
) -> int:
    """Run a whole job: validate, upload, create, wait, and write OUTPUT.

    OUTPUT gets exactly one line per input custom_id: {"custom_id", "status", "response"}
    or {"custom_id", "status", "error"}, status being succeeded, errored, expired or
    cancelled. Running the same command again resumes the job (after a crash, Ctrl-C or
    --no-wait) instead of submitting it twice; --new starts over.

    With no provider configured, runs on an embedded emulator (fake answers).
    """
    state.accept_empty_ledger = new
    state.keep_data = keep_data
    with _output_file(state, output) as out:
        return _run(
            state,
            input_file,
            out,
            _job_options(model, max_requests_per_batch, metadata, generate_ids),
            new=new,
            no_wait=no_wait,
            poll_interval=poll_interval,
            keep_files=keep_files,
            shown=output,
            strict=strict,
            output_format=output_format,
        )


def _run(
    state: State,
    input_file: str,
    out: Path,
    options: JobOptions,
    *,
    new: bool,
    no_wait: bool,
    poll_interval: float | None,
    keep_files: bool,
    shown: str,
    strict: bool = False,
    output_format: str = "omnibatch",
) -> int:
    runner = _runner(state, poll_interval=poll_interval, keep_files=keep_files)
    runner.strict = strict
    server = None
    try:
        target, server = _target(state, runner, embedded_ok=not no_wait)
        if server is not None and poll_interval is None:
            from omnibatch._lifecycle import PollPolicy

            runner.poll = PollPolicy(initial=EMBEDDED_POLL, maximum=2.0)
        path, spooled = _input_path(state, input_file)
        try:
            result = runner.run(
                path, out, target, options, new=new, wait=not no_wait, format=output_format
            )
        except KeyboardInterrupt:
            return _interrupted(state, runner.current, target.embedded)
        finally:
            if spooled and runner.current and runner.current.job.input_path != str(path.resolve()):
                path.unlink(missing_ok=True)  # resumed: the job keeps its own copy
    finally:
        runner.close()
        if server is not None:
            server.close()
    view = result.view
    if state.json:
        data = view.to_dict()
        data.update(
            resumed=result.resumed,
            rewritten=result.rewritten,
            waited=not no_wait,
            summary=vars(result.summary) if result.summary else None,
        )
        state.out.json(data)
    elif result.rewritten and result.summary is not None:
        state.out.line(
            f"job {view.id} finished at {fmt_time(view.job.updated_at)}; wrote its "
            f"{result.summary.total} results again to {_shown(shown)}; --new submits again"
        )
    elif no_wait:
        state.out.line(_job_line(view))
        state.out.note(f"submitted; collect later with: {_resume_command(state)}")
    else:
        state.out.line(_job_line(view))
        if result.summary is not None:
            s = result.summary
            state.out.line(
                f"wrote {s.total} result line(s) to {_shown(shown)}: {s.succeeded} succeeded, "
                f"{s.errored} errored, {s.expired} expired, {s.cancelled} cancelled"
            )
            state.out.line(f"cost: {view.cost_label()}")
        if not result.succeeded:
            state.out.note("the job did not fully succeed; run with --new to submit it again")
    if no_wait:
        return EXIT_OK
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _interrupted(state: State, view: JobView | None, embedded: bool) -> int:
    if view is None:
        state.out.warn("interrupted before the job was recorded; nothing was sent")
        return EXIT_INTERRUPTED
    if embedded:
        click.echo(
            f"interrupted: job {view.id} ran on the embedded emulator, which stops with this "
            "process; running the same command again starts a fresh job",
            err=True,
        )
        return EXIT_INTERRUPTED
    click.echo(
        f"interrupted: job {view.id} is saved; its batches keep running at the provider.\n"
        f"resume with: {_resume_command(state)}",
        err=True,
    )
    return EXIT_INTERRUPTED


@command(cli, "submit")
@click.argument(
    "input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
@_job_params
def submit_cmd(
    state: State,
    input_file: str,
    model: str | None,
    max_requests_per_batch: int | None,
    metadata: tuple[str, ...],
    new: bool,
    strict: bool,
    generate_ids: bool,
) -> int:
    """Validate, upload and create the batches of a job, then return.

    Follow it with `omnibatch wait JOB` and `omnibatch results JOB -o FILE`. Submitting the
    same input again returns the same job (--new starts another).
    """
    options = _job_options(model, max_requests_per_batch, metadata, generate_ids)
    state.accept_empty_ledger = new
    runner = _runner(state)
    runner.strict = strict
    try:
        target, _ = _target(state, runner, embedded_ok=False)
        path, _spooled = _input_path(state, input_file)
        try:
            result = runner.run(path, None, target, options, new=new, wait=False)
        except KeyboardInterrupt:
            return _interrupted(state, runner.current, False)
    finally:
        runner.close()
    view = result.view
    if state.json:
        data = view.to_dict()
        data["resumed"] = result.resumed
        state.out.json(data)
        return EXIT_OK
    state.out.line(_job_line(view))
    for part in view.parts:
        state.out.line(f"  batch {part.batch_id} ({part.requests} requests): {part.status}")
    state.out.note(
        f"next: omnibatch wait {view.id}   then: omnibatch results {view.id} -o results.jsonl"
    )
    return EXIT_OK


# --- verbs on an existing job or batch ------------------------------------------------------------


@dataclass
class _Resolved:
    """What an ID names: a ledger job, or a provider batch (maybe a part of a ledger job)."""

    view: JobView | None = None
    target: ProviderSettings | None = None
    batch_id: str | None = None
    part: PartRecord | None = None


def _resolve(state: State, runner: JobRunner, ident: str) -> _Resolved:
    from omnibatch.ledger import JobNotFoundError

    job = state.ledger.find_job(ident)
    if job is not None:
        return _Resolved(view=runner.view(job), target=_settings_for(state, runner, job))
    known = state.ledger.find_batch(ident)
    if known is not None:
        job, part = known
        target = _settings_for(state, runner, job)
        return _Resolved(target=target, batch_id=ident, part=part, view=runner.view(job))
    if ident.startswith("job-"):
        raise JobNotFoundError(
            f"no job {ident!r} in the ledger {state.ledger.path} (`omnibatch jobs` lists them)"
        )
    target = runner.resolve(state.provider)
    state.announce_emulator(target)
    state.add_secret(target.api_key)
    return _Resolved(target=target, batch_id=ident)


def _settings_for(state: State, runner: JobRunner, job: JobRecord) -> ProviderSettings:
    target = runner.settings_for(job)
    state.announce_emulator(target)
    state.add_secret(target.api_key)
    return target


def _batch_client(state: State, runner: JobRunner, target: ProviderSettings) -> Any:
    return runner.client_for(target, state.ledger.home / "downloads")


def _show_job(state: State, view: JobView, note: str | None = None) -> None:
    if state.json:
        state.out.json(view.to_dict())
        return
    job = view.job
    state.out.line(f"{_job_line(view)}  [{job.provider}]")
    state.out.line(f"  input:   {job.input_path}")
    state.out.line(f"  output:  {job.output_path or '-'}")
    state.out.line(f"  created: {fmt_time(job.created_at)}   phase: {job.phase}")
    state.out.line(f"  cost:    {view.cost_label()}")
    rows = [
        (
            p.part + 1,
            p.batch_id or "-",
            f"{p.status or '-'} ({p.provider_status or '-'})",
            fmt_counts({**p.counts, "total": p.counts.get("total") or p.requests}),
        )
        for p in view.parts
    ]
    if rows:
        state.out.table(("part", "batch", "status (provider)", "requests"), rows)
    if note:
        state.out.note(note)


def _show_batch(state: State, batch: Batch) -> None:
    if state.json:
        state.out.json(_batch_json(batch))
        return
    c = batch.request_counts
    counts = {
        "total": c.total,
        "succeeded": c.succeeded,
        "failed": c.failed,
        "cancelled": c.cancelled,
        "expired": c.expired,
    }
    state.out.line(
        f"batch {batch.id}: {batch.status} ({batch.provider_status}), {fmt_counts(counts)}"
        f"  [{batch.provider}]"
    )
    state.out.line(f"  created: {fmt_time(batch.created_at)}   ended: {fmt_time(batch.ended_at)}")
    if batch.output_file_ids or batch.error_file_ids:
        files = ", ".join([*batch.output_file_ids, *batch.error_file_ids])
        state.out.line(f"  result files: {files}")
    for error in batch.errors:
        where = f"line {error.line}: " if error.line else ""
        state.out.line(f"  error: {where}{error.message}")


def _store_known(runner: JobRunner, resolved: _Resolved, batch: Batch) -> None:
    if resolved.view is not None and resolved.part is not None:
        runner.record_status(resolved.view.job, resolved.part, batch)


@command(cli, "status")
@click.argument("ident", metavar="ID")
def status_cmd(state: State, ident: str) -> int:
    """Show a job (from the ledger, refreshed from the provider) or a provider batch."""
    from omnibatch._exceptions import BatchStateError

    runner = _runner(state, observer=None)
    try:
        resolved = _resolve_for_status(state, runner, ident)
        if resolved.batch_id is None:
            assert resolved.view is not None
            view, note = resolved.view, None
            if not view.ended and view.job.phase != "abandoned":
                try:
                    view = runner.refresh(view, resolved.target)
                except BatchStateError as exc:
                    note = f"not refreshed: {exc}"
            _show_job(state, view, note)
            return EXIT_OK
        assert resolved.target is not None
        batch = _batch_client(state, runner, resolved.target).retrieve(resolved.batch_id)
        _store_known(runner, resolved, batch)
        _show_batch(state, batch)
        return EXIT_OK
    finally:
        runner.close()


def _resolve_for_status(state: State, runner: JobRunner, ident: str) -> _Resolved:
    from omnibatch._exceptions import BatchStateError

    job = state.ledger.find_job(ident)
    if job is not None:
        view = runner.view(job)
        if view.ended or job.phase == "abandoned" or job.embedded:
            return _Resolved(view=view)  # shown from the ledger: the provider is not asked
        return _Resolved(view=view, target=_settings_for(state, runner, job))
    try:
        return _resolve(state, runner, ident)
    except BatchStateError:
        known = state.ledger.find_batch(ident)
        if known is None:
            raise
        return _Resolved(view=runner.view(known[0]))  # embedded: show what the ledger has


@command(cli, "wait")
@click.argument("ident", metavar="ID")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Give up after this long (exit code 7); the batches keep running.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    metavar="SECONDS",
    help="First status poll delay (grows up to 60 s).",
)
def wait_cmd(state: State, ident: str, timeout: float | None, poll_interval: float | None) -> int:
    """Wait until a job's batches (or one provider batch) have ended, showing progress."""
    from omnibatch._exceptions import WaitTimeoutError

    started = time.monotonic()
    try:
        return _wait(state, ident, timeout, poll_interval)
    except WaitTimeoutError as exc:
        waited = time.monotonic() - started
        error = WaitTimeoutError(
            f"{exc.message}: waited {waited:.1f} s (--timeout {timeout:g}); the batches keep "
            f"running, wait again with `omnibatch wait {ident}`",
            batch=exc.batch,
            provider=exc.provider,
        )
        error.waited_seconds = round(waited, 3)
        raise error from None


def _wait(state: State, ident: str, timeout: float | None, poll_interval: float | None) -> int:
    runner = _runner(state, poll_interval=poll_interval)
    try:
        resolved = _resolve(state, runner, ident)
        try:
            if resolved.batch_id is None:
                assert resolved.view is not None
                view = runner.wait(resolved.view, timeout=timeout, target=resolved.target)
                if state.json:
                    state.out.json(view.to_dict())
                else:
                    state.out.line(_job_line(view))
                    state.out.note(f"next: omnibatch results {view.id} -o results.jsonl")
                return EXIT_OK if view.status == "succeeded" else EXIT_FAILED
            assert resolved.target is not None
            batch = _wait_batch(state, runner, resolved, timeout)
        except KeyboardInterrupt:
            click.echo(f"interrupted; resume with: {_resume_command(state)}", err=True)
            return EXIT_INTERRUPTED
    finally:
        runner.close()
    _show_batch(state, batch)
    return EXIT_OK if batch.status.value == "succeeded" else EXIT_FAILED


def _wait_batch(
    state: State, runner: JobRunner, resolved: _Resolved, timeout: float | None
) -> Batch:
    from omnibatch.cli._progress import LineProgress, RichProgress, rows_of_batch

    assert resolved.target is not None and resolved.batch_id is not None
    observer = _observer(state)
    display = observer if isinstance(observer, LineProgress | RichProgress) else None
    client = _batch_client(state, runner, resolved.target)
    started = False

    def on_progress(batch: Batch) -> None:
        nonlocal started
        _store_known(runner, resolved, batch)
        if display is None:
            return
        if not started:
            display.start(rows_of_batch(batch))
            started = True
        else:
            display.update(rows_of_batch(batch))

    try:
        batch: Batch = client.wait(resolved.batch_id, timeout=timeout, on_progress=on_progress)
    finally:
        if display is not None and started:
            display.stop([])
    return batch


@command(cli, "results")
@click.argument("ident", metavar="ID")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write one result line per request (- for stdout).",
)
@FORMAT
def results_cmd(state: State, ident: str, output: str, output_format: str) -> int:
    """Download the results of an ended job (or provider batch) into OUTPUT."""
    with _output_file(state, output) as out:
        return _results(state, ident, out, output, output_format)


def _shown(output: str) -> str:
    return "stdout" if output == "-" else output


def _results(
    state: State, ident: str, out: Path, output: str, output_format: str = "omnibatch"
) -> int:
    runner = _runner(state)
    try:
        embedded = state.ledger.find_job(ident)
        if embedded is not None and embedded.embedded:
            view = runner.view(embedded)
            return _print_results(
                state, _saved_results(runner, view, out), out, output, view.status == "succeeded"
            )
        resolved = _resolve(state, runner, ident)
        if resolved.batch_id is None:
            assert resolved.view is not None
            with state.ledger.lock(resolved.view.job):
                view, summary = runner.collect(
                    runner.view(resolved.view.id),
                    out,
                    target=resolved.target,
                    format=output_format,
                )
            ok = view.status == "succeeded"
        else:
            summary, ok = _batch_results(state, runner, resolved, out, output_format)
    finally:
        runner.close()
    return _print_results(state, summary, out, output, ok)


def _print_results(state: State, summary: Any, out: Path, output: str, ok: bool) -> int:
    if state.json:
        state.out.json({"output": str(out), "summary": vars(summary)})
    else:
        state.out.line(
            f"wrote {summary.total} result line(s) to {'stdout' if output == '-' else out}: "
            f"{summary.succeeded} succeeded, "
            f"{summary.errored} errored, {summary.expired} expired, {summary.cancelled} cancelled"
        )
    return EXIT_OK if ok else EXIT_FAILED


def _saved_results(runner: JobRunner, view: JobView, out: Path) -> Any:
    """The results of a finished job on the embedded emulator, whose batches ended with the
    process that ran them: what that process downloaded or wrote is the copy that remains."""
    from omnibatch._exceptions import BatchStateError

    job = view.job
    if job.phase != "done" or job.summary is None:
        raise BatchStateError(
            f"job {job.id} ran on the embedded emulator and stopped before its results were "
            "written; run the same `omnibatch run` command again to start a fresh job"
        )
    summary = runner.rewrite(view, out)
    if summary is None:
        raise BatchStateError(
            f"job {job.id} ran on the embedded emulator, whose batches are gone; its results "
            f"were written to {job.output_path}, which no longer exists"
        )
    return summary


def _batch_results(
    state: State, runner: JobRunner, resolved: _Resolved, out: Path, output_format: str
) -> tuple[Any, bool]:
    """Results of one provider batch: in input order when the ledger knows its part (see
    :func:`omnibatch.results.write_output` for big parts), else in the order of the provider's
    files."""
    from omnibatch.results import PartResults, write_output

    assert resolved.target is not None and resolved.batch_id is not None
    client = _batch_client(state, runner, resolved.target)
    results = client.results(resolved.batch_id)
    _store_known(runner, resolved, results.batch)
    ok = results.batch.status.value == "succeeded"
    if resolved.part is not None:
        part = PartResults(
            client.adapter,
            resolved.batch_id,
            resolved.part.ids_path,
            results.sources,
            batch_status=results.batch.status,
        )
        return write_output([part], out, output_format=output_format), ok
    return results.write(out, format=output_format), ok


@command(cli, "cancel")
@click.argument("ident", metavar="ID")
def cancel_cmd(state: State, ident: str) -> int:
    """Ask the provider to cancel a job's batches (or one provider batch)."""
    runner = _runner(state)
    try:
        resolved = _resolve(state, runner, ident)
        if resolved.batch_id is None:
            assert resolved.view is not None
            view = runner.cancel(resolved.view, resolved.target)
            if state.json:
                state.out.json(view.to_dict())
            else:
                state.out.line(_job_line(view))
            return EXIT_OK
        assert resolved.target is not None
        batch = _batch_client(state, runner, resolved.target).cancel(resolved.batch_id)
        _store_known(runner, resolved, batch)
    finally:
        runner.close()
    _show_batch(state, batch)
    return EXIT_OK


# --- listings -------------------------------------------------------------------------------------


@command(cli, "list")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Batches per page."
)
@click.option("--after", metavar="CURSOR", help="Start after this cursor (from a previous page).")
@click.option("--all", "all_pages", is_flag=True, help="Fetch every page.")
def list_cmd(state: State, limit: int, after: str | None, all_pages: bool) -> int:
    """List the provider's batches, newest first, one page at a time."""
    runner = _runner(state)
    try:
        target = runner.resolve(state.provider)
        state.announce_emulator(target)
        state.add_secret(target.api_key)
        client = _batch_client(state, runner, target)
        cursor = after
        batches: list[Batch] = []
        while True:
            page = client.list_page(cursor=cursor, page_size=limit)
            batches.extend(page.items)
            cursor = page.next_cursor
            if not all_pages or cursor is None:
                break
    finally:
        runner.close()
    if state.json:
        state.out.json(
            {
                "provider": target.provider,
                "batches": [_batch_json(b) for b in batches],
                "next_cursor": cursor,
            }
        )
        return EXIT_OK
    from omnibatch.jobs import JOB_METADATA_KEY

    rows = [
        (
            b.id,
            f"{b.status} ({b.provider_status})",
            f"{b.request_counts.done}/{b.request_counts.total}",
            fmt_time(b.created_at),
            b.metadata.get(JOB_METADATA_KEY, ""),
        )
        for b in batches
    ]
    state.out.table(
        ("batch", "status (provider)", "done", "created", "job"),
        rows,
        title=f"{target.provider} batches",
    )
    if cursor:
        state.out.note(f"more: omnibatch list --provider {target.provider} --after {cursor}")
    return EXIT_OK


JOB_STATUSES = (
    "preparing",
    "submitting",
    "queued",
    "validating",
    "running",
    "finalizing",
    "cancelling",
    "succeeded",
    "failed",
    "expired",
    "cancelled",
    "unknown",
    "abandoned",
)


def _short_counts(counts: dict[str, int]) -> str:
    """``7/10`` with the requests that did not succeed, in a word each: fits a narrow table."""
    done = sum(int(counts.get(k, 0)) for k in ("succeeded", "failed", "cancelled", "expired"))
    text = f"{done}/{counts.get('total', 0)}"
    errored = int(counts.get("failed", 0))
    not_run = int(counts.get("cancelled", 0)) + int(counts.get("expired", 0))
    extra = [f"{errored} errored"] if errored else []
    if not_run:
        extra.append(f"{not_run} not run")
    return f"{text} ({', '.join(extra)})" if extra else text


def _short_path(path: str, width: int = 24) -> str:
    """The file's name, or its tail after an ellipsis when even that is too long."""
    name = Path(path).name or path
    return name if len(name) <= width else "…" + name[-(width - 1) :]


class _JobsGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@cli.group(
    "jobs",
    cls=_JobsGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@global_options
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many jobs to show, newest first.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(JOB_STATUSES),
    help="Only jobs with this status (repeatable).",
)
@click.pass_context
def jobs_group(ctx: click.Context, limit: int, statuses: tuple[str, ...]) -> int:
    """List the jobs in the local ledger ($OMNIBATCH_HOME), newest first; remove old ones.

    --provider NAME and --status STATUS (repeatable) filter the list.
    """
    if ctx.invoked_subcommand is not None:
        return EXIT_OK
    state = _state(ctx)
    state.setup_logging()
    return _list_jobs(state, limit, statuses)


def _list_jobs(state: State, limit: int, statuses: tuple[str, ...]) -> int:
    from omnibatch.jobs import JobView

    ledger = state.ledger
    views: list[JobView] = []
    for job in ledger.list_jobs(None if (state.provider or statuses) else limit):
        if state.provider and job.provider != state.provider:
            continue
        view = JobView(job, tuple(ledger.parts(job.id)))
        if statuses and view.status not in statuses:
            continue
        views.append(view)
        if len(views) >= limit:
            break
    if state.json:
        state.out.json({"ledger": str(ledger.path), "jobs": [v.to_dict() for v in views]})
        return EXIT_OK
    if not views:
        filtered = " matching the filters" if state.provider or statuses else ""
        state.out.note(f"no jobs{filtered} in {ledger.path}")
        return EXIT_OK
    rows = [
        (
            v.id,
            v.job.provider + ("*" if v.job.embedded else ""),
            v.status,
            _short_counts(v.counts),
            "-" if v.cost["cost_usd"] is None else f"${v.cost['cost_usd']:.4f}",
            fmt_time(v.job.created_at, short=True),
            _short_path(v.job.input_path),
        )
        for v in views
    ]
    state.out.table(("job", "provider", "status", "requests", "cost", "created", "input"), rows)
    if any(v.job.embedded for v in views):
        state.out.note("* ran on the embedded emulator (fake answers)")
    return EXIT_OK


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_ENDED = ("succeeded", "failed", "expired", "cancelled", "abandoned")


def _duration(value: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s``: seconds."""
    number, unit = value[:-1], value[-1:].lower()
    if unit not in _UNITS or not number.replace(".", "", 1).isdigit():
        raise click.BadParameter(
            f"{value!r} is not a duration such as 30d, 12h, 90m or 2w", param_hint="--older-than"
        )
    return float(number) * _UNITS[unit]


def _forget(state: State, views: list[JobView], dry_run: bool, verb: str) -> None:
    for view in views:
        if not dry_run:
            with state.ledger.lock(view.job):
                state.ledger.delete_job(view.id)
    if state.json:
        state.out.json(
            {
                "dry_run": dry_run,
                "removed": [] if dry_run else [v.id for v in views],
                "would_remove": [v.id for v in views] if dry_run else [],
            }
        )
        return
    for view in views:
        state.out.line(f"{'would remove' if dry_run else 'removed'} {view.id} ({view.status})")
    if not views:
        state.out.note(f"no jobs to {verb}")


@command(jobs_group, "rm")
@click.argument("idents", metavar="ID...", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Also remove jobs whose batches have not ended.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
def jobs_rm_cmd(state: State, idents: tuple[str, ...], force: bool, dry_run: bool) -> int:
    """Remove jobs from the ledger, with their working files (nothing is sent to the provider).

    A job whose batches are still running is kept unless --force: without its record, a resume
    could no longer find its batches.
    """
    from omnibatch.jobs import JobView
    from omnibatch.ledger import JobNotFoundError

    ledger = state.ledger
    views: list[JobView] = []
    for ident in idents:
        job = ledger.find_job(ident)
        if job is None:
            raise JobNotFoundError(f"no job {ident!r} in the ledger {ledger.path}")
        view = JobView(job, tuple(ledger.parts(job.id)))
        if not force and view.status not in _ENDED and job.phase != "done":
            raise click.UsageError(
                f"job {view.id} is {view.status}: its batches may still run at "
                f"{job.provider}; cancel it first, or pass --force to forget it anyway"
            )
        views.append(view)
    _forget(state, views, dry_run, "remove")
    return EXIT_OK


@command(jobs_group, "prune")
@click.option(
    "--older-than",
    "older_than",
    default="30d",
    show_default=True,
    metavar="AGE",
    help="Only jobs created longer ago than this (30d, 12h, 90m, 2w).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(_ENDED),
    help="Only jobs with this status (repeatable; default: every ended job).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
def jobs_prune_cmd(state: State, older_than: str, statuses: tuple[str, ...], dry_run: bool) -> int:
    """Remove ended jobs older than AGE from the ledger, with their working files.

    Jobs whose batches have not ended are never pruned (`omnibatch jobs rm --force` removes one).
    """
    from omnibatch.jobs import JobView

    cutoff = time.time() - _duration(older_than)
    wanted = set(statuses or _ENDED)
    ledger = state.ledger
    views = []
    for job in ledger.list_jobs():
        if job.created_at > cutoff:
            continue
        view = JobView(job, tuple(ledger.parts(job.id)))
        if view.status in wanted:
            views.append(view)
    _forget(state, views, dry_run, "prune")
    return EXIT_OK
