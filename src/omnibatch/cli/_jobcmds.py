"""The job verbs: run, submit, status, wait, results, cancel, list, jobs."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from omnibatch.cli._app import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, State, cli, command
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


def _resume_command(state: State) -> str:
    # --new again would start yet another job instead of resuming this one.
    return shlex.join(["omnibatch", *(a for a in state.argv if a != "--new")])


def _job_line(view: JobView) -> str:
    return f"job {view.id}: {view.status}, {fmt_counts(view.counts)}"


def _batch_json(batch: Batch) -> dict[str, Any]:
    return batch.model_dump(mode="json", exclude={"raw"})


# --- run / submit ---------------------------------------------------------------------------------

GENERATE_IDS = click.option(
    "--generate-ids",
    is_flag=True,
    help="Give lines without custom_id generated ids (request-N) instead of an error.",
)


def _job_params(func: Any) -> Any:
    options = [
        click.option(
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
    help="Where to write one result line per input request.",
)
@_job_params
@click.option("--no-wait", is_flag=True, help="Submit and return; run again later to collect.")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    metavar="SECONDS",
    help="First status poll delay (grows up to 60 s).",
)
@click.option("--keep-files", is_flag=True, help="Keep the uploaded input files at the provider.")
def run_cmd(
    state: State,
    input_file: str,
    output: str,
    model: str | None,
    max_requests_per_batch: int | None,
    metadata: tuple[str, ...],
    new: bool,
    generate_ids: bool,
    no_wait: bool,
    poll_interval: float | None,
    keep_files: bool,
) -> int:
    """Run a whole job: validate, upload, create, wait, and write OUTPUT.

    OUTPUT gets exactly one line per input custom_id: {"custom_id", "status", "response"}
    or {"custom_id", "status", "error"}, status being succeeded, errored, expired or
    cancelled. Running the same command again resumes the job (after a crash, Ctrl-C or
    --no-wait) instead of submitting it twice; --new starts over.

    With no provider configured, runs on an embedded emulator (fake answers).
    """
    options = _job_options(model, max_requests_per_batch, metadata, generate_ids)
    state.accept_empty_ledger = new
    runner = _runner(state, poll_interval=poll_interval, keep_files=keep_files)
    server = None
    try:
        target, server = _target(state, runner, embedded_ok=not no_wait)
        if server is not None and poll_interval is None:
            from omnibatch._lifecycle import PollPolicy

            runner.poll = PollPolicy(initial=EMBEDDED_POLL, maximum=2.0)
        path, spooled = _input_path(state, input_file)
        try:
            result = runner.run(
                path, Path(output).absolute(), target, options, new=new, wait=not no_wait
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
            f"{result.summary.total} results again to {output}; --new submits again"
        )
    elif no_wait:
        state.out.line(_job_line(view))
        state.out.note(f"submitted; collect later with: {_resume_command(state)}")
    else:
        state.out.line(_job_line(view))
        if result.summary is not None:
            s = result.summary
            state.out.line(
                f"wrote {s.total} result line(s) to {output}: {s.succeeded} succeeded, "
                f"{s.errored} errored, {s.expired} expired, {s.cancelled} cancelled"
            )
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
    generate_ids: bool,
) -> int:
    """Validate, upload and create the batches of a job, then return.

    Follow it with `omnibatch wait JOB` and `omnibatch results JOB -o FILE`. Submitting the
    same input again returns the same job (--new starts another).
    """
    options = _job_options(model, max_requests_per_batch, metadata, generate_ids)
    state.accept_empty_ledger = new
    runner = _runner(state)
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
    help="Where to write one result line per request.",
)
def results_cmd(state: State, ident: str, output: str) -> int:
    """Download the results of an ended job (or provider batch) into OUTPUT."""
    runner = _runner(state)
    out = Path(output).absolute()
    try:
        resolved = _resolve(state, runner, ident)
        if resolved.batch_id is None:
            assert resolved.view is not None
            with state.ledger.lock(resolved.view.job):
                view, summary = runner.collect(
                    runner.view(resolved.view.id), out, target=resolved.target
                )
            ok = view.status == "succeeded"
        else:
            summary, ok = _batch_results(state, runner, resolved, out)
    finally:
        runner.close()
    if state.json:
        state.out.json({"output": str(out), "summary": vars(summary)})
    else:
        state.out.line(
            f"wrote {summary.total} result line(s) to {out}: {summary.succeeded} succeeded, "
            f"{summary.errored} errored, {summary.expired} expired, {summary.cancelled} cancelled"
        )
    return EXIT_OK if ok else EXIT_FAILED


def _batch_results(
    state: State, runner: JobRunner, resolved: _Resolved, out: Path
) -> tuple[Any, bool]:
    """Results of one provider batch: in input order when the ledger knows its part (see
    :func:`omnibatch.results.write_output` for big parts), else in the order of the provider's
    files."""
    import orjson

    from omnibatch.results import OutputSummary, PartResults, write_output

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
        return write_output([part], out), ok
    summary = OutputSummary()
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as fh:
        for result in results:
            summary.count(result)
            fh.write(orjson.dumps(result.to_output_line()) + b"\n")
    tmp.replace(out)
    return summary, ok


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


@command(cli, "jobs")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many jobs to show, newest first.",
)
def jobs_cmd(state: State, limit: int) -> int:
    """List the jobs in the local ledger ($OMNIBATCH_HOME), newest first."""
    from omnibatch.jobs import JobView

    ledger = state.ledger
    views = [JobView(job, tuple(ledger.parts(job.id))) for job in ledger.list_jobs(limit)]
    if state.json:
        state.out.json({"ledger": str(ledger.path), "jobs": [v.to_dict() for v in views]})
        return EXIT_OK
    rows = [
        (
            v.id,
            v.job.provider + (" (embedded)" if v.job.embedded else ""),
            v.status,
            fmt_counts(v.counts),
            fmt_time(v.job.created_at),
            v.job.input_path,
        )
        for v in views
    ]
    state.out.table(("job", "provider", "status", "requests", "created", "input"), rows)
    if not views:
        state.out.note(f"no jobs yet in {ledger.path}")
    return EXIT_OK
