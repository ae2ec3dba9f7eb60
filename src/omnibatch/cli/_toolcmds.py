"""The local verbs: validate, convert, providers, emulator serve."""

from __future__ import annotations

import io
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from omnibatch.cli._app import EXIT_FAILED, EXIT_OK, State, cli, command
from omnibatch.cli._jobcmds import GENERATE_IDS

if TYPE_CHECKING:
    from omnibatch.adapter import ProviderAdapter
    from omnibatch.models import ValidationProblem


def _adapter(name: str, state: State | None = None) -> ProviderAdapter:
    """An adapter for local work (validation, translation): no key, nothing sent; with
    ``state``, the provider's settings from the config file (its model map)."""
    from omnibatch.pipeline import local_adapter

    adapter = local_adapter(name)
    section = dict(state.config.providers.get(adapter.name, {})) if state is not None else {}
    for key in ("base_url", "api_key_env"):
        section.pop(key, None)
    return type(adapter)(api_key=None, options=section) if section else adapter


def _source(source: str, workdir: Path, model: str | None) -> str:
    """The input to read: with ``--model``, a copy with every request's model replaced."""
    if not model:
        return source
    from omnibatch.jobs import override_model, spool_stdin

    path = spool_stdin(workdir) if source == "-" else Path(source)
    return str(override_model(path, model, workdir / "input-model.jsonl"))


def _problem_line(source: str, problem: ValidationProblem) -> str:
    where = f"{source}:{problem.line}" if problem.line else source
    field = f" {problem.field}:" if problem.field else ""
    fix = f" (fix: {problem.fix})" if problem.fix else ""
    return f"{where}:{field} {problem.message}{fix}"


@command(cli, "validate")
@click.argument(
    "input_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
@click.option("-m", "--model", metavar="MODEL", help="Check as if every request used this model.")
@click.option(
    "--max-requests-per-batch",
    type=click.IntRange(min=1),
    metavar="N",
    help="Report the split for batches of at most N requests.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Count a model that does not look like the provider's as a problem.",
)
@GENERATE_IDS
def validate_cmd(
    state: State,
    input_file: str,
    model: str | None,
    max_requests_per_batch: int | None,
    strict: bool,
    generate_ids: bool,
) -> int:
    """Check an input for the provider (default openai) without sending anything.

    Prints every problem as FILE:LINE: field: message (fix: ...); exit code 1 if any.
    Warnings (a model the provider does not list) are printed the same way; --strict makes
    them problems.
    """
    from omnibatch.config import DEFAULT_PROVIDER, resolve_provider_name
    from omnibatch.pipeline import validate_input

    name = resolve_provider_name(state.provider, state.config) or DEFAULT_PROVIDER
    adapter = _adapter(name, state)
    with tempfile.TemporaryDirectory(prefix="omnibatch-validate-") as tmp:
        report = validate_input(
            _source(input_file, Path(tmp), model),
            adapter,
            model=model,
            max_requests=max_requests_per_batch,
            strict=strict,
            generate_ids=generate_ids,
        )
    if state.json:
        state.out.json(
            {
                "valid": report.ok,
                "provider": adapter.name,
                "file": input_file,
                "requests": report.total,
                "batches": len(report.parts),
                "endpoint": report.endpoint,
                "model": report.model or model,
                "problem_count": report.problem_count,
                "problems": [p.model_dump() for p in report.problems],
                "warnings": [w.model_dump() for w in report.warnings],
            }
        )
        return EXIT_OK if report.ok else EXIT_FAILED
    if not strict:
        for warning in report.warnings:
            state.out.warn(_problem_line(input_file, warning))
    if not report.ok:
        for problem in report.problems:
            state.out.line(_problem_line(input_file, problem))
        state.out.note(f"{report.problem_count} problem(s) for {adapter.name}; nothing was sent")
        return EXIT_FAILED
    state.out.line(
        f"{input_file}: {report.total} request(s) valid for {adapter.name} "
        f"({len(report.parts)} batch(es), endpoint {report.endpoint}, "
        f"model {report.model or '-'})"
    )
    return EXIT_OK


@command(cli, "convert")
@click.argument(
    "input_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
@click.option(
    "--to",
    "to_provider",
    required=True,
    metavar="PROVIDER",
    help="The provider whose input format to write.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the provider's JSONL.",
)
@click.option("-m", "--model", metavar="MODEL", help="Run every request on this model.")
@GENERATE_IDS
def convert_cmd(
    state: State,
    input_file: str,
    to_provider: str,
    output: str,
    model: str | None,
    generate_ids: bool,
) -> int:
    """Translate an input (OpenAI batch format) into PROVIDER's batch input format."""
    from omnibatch._exceptions import InputValidationError
    from omnibatch.pipeline import convert_input

    adapter = _adapter(to_provider)
    out = Path(output)
    with tempfile.TemporaryDirectory(prefix="omnibatch-convert-") as tmp:
        try:
            prepared = convert_input(
                _source(input_file, Path(tmp), model),
                adapter,
                out,
                model=model,
                generate_ids=generate_ids,
            )
        except InputValidationError as exc:
            if not state.json:
                for problem in exc.problems:
                    state.out.line(_problem_line(input_file, problem))
            raise InputValidationError(
                exc.problems, source=input_file, provider=exc.provider
            ) from None
    job_level = adapter.capabilities.model_at_job_level
    if state.json:
        state.out.json(
            {
                "output": str(out),
                "provider": adapter.name,
                "requests": prepared.total,
                "endpoint": prepared.endpoint,
                "model": prepared.model or model,
                "model_at_batch_level": job_level,
            }
        )
        return EXIT_OK
    state.out.line(f"wrote {prepared.total} {adapter.name} request line(s) to {out}")
    if job_level and prepared.model:
        state.out.note(
            f"{adapter.name} takes the model per batch, not per line: create the batch with "
            f"model {prepared.model!r}"
        )
    limits = adapter.limits
    part = prepared.parts[0]
    if (limits.max_requests and part.count > limits.max_requests) or (
        limits.max_bytes and part.size_bytes > limits.max_bytes
    ):
        state.out.warn(
            f"this is more than one {adapter.name} batch can take; `omnibatch run` splits "
            "automatically"
        )
    return EXIT_OK


@command(cli, "providers")
def providers_cmd(state: State) -> int:
    """List the installed providers, where each comes from, and any plugin problems."""
    from omnibatch._capabilities import provider_facts
    from omnibatch._plugins import get_registry

    registry = get_registry()
    entries = sorted(registry.providers.items())
    if state.json:
        state.out.json(
            {
                "providers": [
                    {
                        "name": name,
                        "display_name": entry.adapter.display_name or name,
                        "plugin": entry.origin.plugin,
                        "distribution": entry.origin.distribution,
                        "version": entry.origin.version,
                        "builtin": entry.origin.builtin,
                        "base_url": entry.adapter.default_base_url,
                        "api_key_env": entry.adapter.api_key_env,
                        "origin": str(entry.origin),
                        "config_file": entry.origin.config_file,
                        **provider_facts(entry.adapter),
                    }
                    for name, entry in entries
                ],
                "problems": [
                    {
                        "plugin": p.origin.plugin,
                        "distribution": p.origin.distribution,
                        "message": p.message,
                    }
                    for p in registry.problems
                ],
            }
        )
        return EXIT_OK
    rows = [
        (
            name,
            entry.adapter.display_name or name,
            (f"config {entry.origin.config_file}" if entry.origin.config_file else "")
            or " ".join(filter(None, (entry.origin.distribution, entry.origin.version)))
            or "in-process",
            entry.adapter.api_key_env or "-",
            entry.adapter.default_base_url,
        )
        for name, entry in entries
    ]
    state.out.table(("provider", "name", "from", "key variable", "base URL"), rows)
    for problem in registry.problems:
        state.out.warn(f"plugin problem: {problem}")
    return EXIT_OK


@cli.group("emulator", context_settings={"help_option_names": ["-h", "--help"]})
def emulator_group() -> None:
    """The local emulator of the providers' batch APIs (fake answers, real HTTP)."""


class _ServeOutput(io.StringIO):
    """Receives run_server's "<dialect> <base URL>" lines; prints them (as JSON lines with
    --json) and, once, the root URL to export."""

    def __init__(self, state: State) -> None:
        super().__init__()
        self._state = state
        self._buffer = ""
        self._hinted = False

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line)
        return len(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def _line(self, line: str) -> None:
        fields = line.split()
        if len(fields) != 2 or not fields[1].startswith("http"):
            if line.strip():
                self._state.out.line(line)
            return
        name, url = fields
        parts = urlsplit(url)
        root = f"{parts.scheme}://{parts.netloc}"
        if self._state.json:
            self._state.out.json_line({"dialect": name, "base_url": url, "root": root})
        else:
            self._state.out.line(line)
        if not self._hinted:
            self._hinted = True
            self._state.out.note(
                f"emulator listening at {root}; point omnibatch at it with: "
                f"export OMNIBATCH_EMULATOR_URL={root}   (Ctrl-C stops it)"
            )


class _LoggedRequests(deque[Any]):
    """The emulator's request log (``stats.requests``), also printing each record as it is
    appended. The records hold no secret header values; the line is redacted all the same."""

    def __init__(self, records: deque[Any], state: State) -> None:
        super().__init__(records, maxlen=records.maxlen)
        self._state = state

    def append(self, record: Any) -> None:
        super().append(record)
        query = f"?{record.query}" if record.query else ""
        fault = f" fault={record.fault}" if record.fault else ""
        status = record.status if record.status is not None else "-"
        line = f"{record.method} {record.path}{query} -> {status}{fault}"
        click.echo(self._state.redact(f"emulator: {line}"), err=True)


def _serve_logged(
    state: State,
    host: str,
    port: int,
    speed: float,
    fault_rate: float,
    seed: int | None,
    api_key: str | None,
    fault_config: str | None,
    state_dir: str | None,
) -> int:
    """``emulator serve -v``: the same server, with its request log echoed to stderr."""
    import threading

    from omnibatch.emulator import serve
    from omnibatch.emulator.server import _signals

    server = serve(
        host, port, speed, fault_rate, seed, api_key, fault_config=fault_config, state_dir=state_dir
    )
    stats = server.emulator.stats
    stats.requests = _LoggedRequests(stats.requests, state)
    stop = threading.Event()
    out = _ServeOutput(state)
    with server, _signals(stop):
        width = max((len(name) for name in server.urls), default=0)
        for name, url in server.urls.items():
            out.write(f"{name.ljust(width)}   {url}\n")
        while not stop.wait(0.2):
            pass
    return 0


@command(emulator_group, "serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port (0 picks a free one).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests that fail (429, 5xx, resets, ...).",
)
@click.option("--seed", type=int, help="Makes ids and faults reproducible.")
@click.option(
    "--api-key",
    envvar="OMNIBATCH_EMULATOR_API_KEY",
    metavar="KEY",
    help="Accept only this key (env: OMNIBATCH_EMULATOR_API_KEY).",
)
@click.option(
    "--fault-config",
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="A TOML fault plan.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Keep files, batches and the clock in DIR, so a restart continues its batches "
    "(default: in memory only).",
)
def serve_cmd(
    state: State,
    host: str,
    port: int,
    speed: float,
    fault_rate: float,
    seed: int | None,
    api_key: str | None,
    fault_config: str | None,
    state_dir: str | None,
) -> int:
    """Serve the emulator over HTTP until Ctrl-C; prints each dialect's base URL.

    With -v, logs every request it answers on stderr (method, path, status, fault; secret
    headers are never printed).
    """
    from omnibatch._exceptions import ConfigurationError
    from omnibatch.emulator import UnsafeBindError, run_server

    state.add_secret(api_key)
    try:
        if state.verbose:
            code: Any = _serve_logged(
                state, host, port, speed, fault_rate, seed, api_key, fault_config, state_dir
            )
        else:
            code = run_server(
                host,
                port,
                speed,
                fault_rate,
                seed,
                api_key,
                fault_config,
                out=_ServeOutput(state),
                state_dir=state_dir,
            )
    except UnsafeBindError as exc:
        raise ConfigurationError(str(exc)) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a malformed fault config
        raise ConfigurationError(f"emulator: {exc}") from None
    return int(code or 0)


@command(cli, "estimate")
@click.argument("input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", metavar="MODEL", help="Estimate as if every request used this model.")
def estimate_cmd(state: State, input_file: str, model: str | None) -> int:
    """Count an input's requests and estimate its tokens and cost, sending nothing.

    Input tokens are estimated without a tokenizer (characters / 4, plus a few per message:
    about ±25 % for English prose); output is bounded by each request's max_tokens. Costs are
    ranges (no output .. every max_tokens used) at the provider's batch and synchronous prices
    from genai-prices, after the model map of the config file and --model.
    """
    from omnibatch._estimate import estimate_input
    from omnibatch.config import DEFAULT_PROVIDER, resolve_provider_name

    name = resolve_provider_name(state.provider, state.config) or DEFAULT_PROVIDER
    estimate = estimate_input(input_file, _adapter(name, state), model=model)
    if state.json:
        state.out.json({"file": input_file, **estimate.as_dict()})
        return EXIT_OK

    def usd(pair: tuple[float | None, float | None]) -> str:
        low, high = (f"${v:.4f}" if v is not None else "unknown" for v in pair)
        return f"{low} .. {high}"

    bound = estimate.output_tokens_max
    state.out.line(f"{input_file}: {estimate.requests} request(s) for {estimate.provider}")
    state.out.line(f"  input tokens:  ~{estimate.input_tokens} (estimated)")
    state.out.line(
        "  output tokens: at most "
        + (
            str(bound)
            if bound is not None
            else f"unbounded ({estimate.unbounded_requests} request(s) without max_tokens)"
        )
    )
    state.out.line(f"  cost at batch prices:       {usd(estimate.batch_cost_usd)}")
    state.out.line(f"  cost at synchronous prices: {usd(estimate.sync_cost_usd)}")
    if estimate.unpriced_models:
        state.out.note(
            f"no {estimate.provider} price in genai-prices for: "
            + ", ".join(estimate.unpriced_models)
            + " (map the model in omnibatch.toml, or pass --model)"
        )
    state.out.note(estimate.method)
    return EXIT_OK
