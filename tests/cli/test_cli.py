"""Every verb of ``omnibatch``, run as a real subprocess: output (human and --json), the
README's two flows, and the documented exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import (
    OMNIBATCH,
    EmulatorProcess,
    clean_env,
    only_job_id,
    read_jsonl,
    run_cli,
    write_input,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "requests.jsonl"


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


# --- startup --------------------------------------------------------------------------------------


def test_help_is_fast_and_loads_nothing_heavy(tmp_path: Path) -> None:
    best = min(_timed([*OMNIBATCH, "--help"], tmp_path) for _ in range(3))
    assert best < 0.3, f"omnibatch --help took {best:.3f}s"
    code = (
        "import sys\nfrom omnibatch.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('httpx', 'pydantic', 'rich', 'sqlite3', 'omnibatch.client', "
        "'omnibatch.emulator', 'omnibatch._plugins', 'omnibatch.jobs')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def _timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, capture_output=True, check=True)
    return time.perf_counter() - start


def test_every_verb_has_help(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    verbs = [
        "run",
        "submit",
        "status",
        "wait",
        "results",
        "cancel",
        "list",
        "jobs",
        "validate",
        "convert",
        "providers",
    ]
    top = run_cli("--help", env=env, cwd=tmp_path)
    for verb in verbs:
        assert f"  {verb} " in top.stdout
    for verb in [*verbs, "emulator serve"]:
        proc = run_cli(*verb.split(), "--help", env=env, cwd=tmp_path)
        assert proc.returncode == 0 and "--json" in proc.stdout, verb


# --- the README's flows ---------------------------------------------------------------------------


def test_readme_first_command_runs_on_the_embedded_emulator(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    shutil.copytree(EXAMPLE.parent, tmp_path / "examples")
    proc = run_cli("run", "examples/requests.jsonl", "-o", "results.jsonl", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "embedded emulator" in line]
    assert len(notices) == 1 and "no provider configured" in notices[0]
    expected = [json.loads(line)["custom_id"] for line in EXAMPLE.read_text().splitlines()]
    lines = read_jsonl(tmp_path / "results.jsonl")
    assert [line["custom_id"] for line in lines] == expected
    assert all(line["status"] == "succeeded" and line["response"]["choices"] for line in lines)
    # Embedded jobs cannot be resumed (their emulator is gone): the same command starts afresh.
    again = run_cli("run", "examples/requests.jsonl", "-o", "results.jsonl", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "resuming" not in again.stderr
    jobs = _json(run_cli("jobs", "--json", env=env, cwd=tmp_path))["jobs"]
    assert len(jobs) == 2 and all(j["embedded"] and j["status"] == "succeeded" for j in jobs)


def test_an_interrupted_embedded_job_is_shown_then_abandoned(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    args = ["run", str(EXAMPLE), "-o", "out.jsonl"]
    killed = run_cli(*args, env={**env, "OMNIBATCH_CRASH_AT": "poll"}, cwd=tmp_path)
    assert killed.returncode == -9
    job_id = only_job_id(home)
    status = run_cli("status", job_id, env=env, cwd=tmp_path)
    assert status.returncode == 0 and "0/10 done" in status.stdout
    assert "not refreshed" in status.stderr and "embedded emulator" in status.stderr
    waited = run_cli("wait", job_id, env=env, cwd=tmp_path)
    assert waited.returncode == 1 and "Run the same command again" in waited.stderr
    assert run_cli(*args, env=env, cwd=tmp_path).returncode == 0
    jobs = {
        j["job"]: j["status"]
        for j in _json(run_cli("jobs", "--json", env=env, cwd=tmp_path))["jobs"]
    }
    assert jobs.pop(job_id) == "abandoned" and list(jobs.values()) == ["succeeded"]


def test_interrupt_messages(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from omnibatch.cli._app import State
    from omnibatch.cli._jobcmds import _interrupted
    from omnibatch.jobs import JobView
    from omnibatch.ledger import Ledger

    with Ledger(tmp_path) as ledger:
        job = ledger.create_job(
            job_key="k",
            provider="openai",
            base_url="http://x",
            key_source=None,
            embedded=True,
            input_path="in",
            input_hash="h",
            options={},
        )
    view = JobView(job, ())
    state = State(argv=["run", "in.jsonl", "-o", "o.jsonl", "--new"])
    assert _interrupted(state, view, embedded=True) == 130
    assert "starts a fresh job" in capsys.readouterr().err
    assert _interrupted(state, view, embedded=False) == 130
    assert "resume with: omnibatch run in.jsonl -o o.jsonl\n" in capsys.readouterr().err
    assert _interrupted(state, None, embedded=False) == 130
    assert "nothing was sent" in capsys.readouterr().err


def test_readme_same_job_on_mistral_at_emulator_serve(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    proc = run_cli(
        "run",
        str(EXAMPLE),
        "-o",
        "results-mistral.jsonl",
        "--provider",
        "mistral",
        "--model",
        "mistral-small-latest",
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(read_jsonl(tmp_path / "results-mistral.jsonl")) == 10
    job_id = only_job_id(home)
    listing = _json(
        run_cli("list", "--provider", "mistral", "--json", "--limit", "5", env=env, cwd=tmp_path)
    )
    mine = [b for b in listing["batches"] if b["metadata"].get("omnibatch_job") == job_id]
    assert len(mine) == 1 and mine[0]["model"] == "mistral-small-latest"
    assert mine[0]["provider_status"] == "SUCCESS"


# --- run, submit, wait, results, status, cancel ---------------------------------------------------


def test_run_no_wait_then_the_same_command_collects(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 5)
    args = ["run", str(source), "-o", "out.jsonl", "--max-requests-per-batch", "2"]
    first = run_cli(*args, "--no-wait", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "submitted; collect later with: omnibatch run" in first.stderr
    assert not (tmp_path / "out.jsonl").exists()
    second = run_cli(*args, "--json", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    data = _json(second)
    assert data["resumed"] and data["status"] == "succeeded" and len(data["batches"]) == 3
    assert data["summary"]["succeeded"] == 5
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 5
    assert len(emulator.batches(data["job"])) == 3


def test_submit_wait_results_status_by_job_and_by_batch(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 4)
    submitted = _json(
        run_cli(
            "--json", "submit", str(source), "--max-requests-per-batch", "2", env=env, cwd=tmp_path
        )
    )
    job_id = submitted["job"]
    assert [b["requests"] for b in submitted["batches"]] == [2, 2]
    waited = run_cli("wait", job_id, "--poll-interval", "0.02", env=env, cwd=tmp_path)
    assert waited.returncode == 0, waited.stderr
    assert f"job {job_id}: succeeded" in waited.stdout
    results = run_cli("results", job_id, "-o", "res.jsonl", env=env, cwd=tmp_path)
    assert results.returncode == 0 and "wrote 4 result line(s)" in results.stdout
    assert [r["custom_id"] for r in read_jsonl(tmp_path / "res.jsonl")] == [
        "req-0",
        "req-1",
        "req-2",
        "req-3",
    ]
    status = _json(run_cli("status", job_id, "--json", env=env, cwd=tmp_path))
    assert status["status"] == "succeeded" and status["phase"] == "done"
    human = run_cli("status", job_id[:9], env=env, cwd=tmp_path)  # a unique prefix works
    assert human.returncode == 0 and "succeeded (completed)" in human.stdout
    # One batch of the job, by its provider id: results in input order, from the ledger's ids.
    batch_id = submitted["batches"][1]["batch_id"]
    batch = _json(run_cli("status", batch_id, "--json", env=env, cwd=tmp_path))
    assert batch["id"] == batch_id and batch["request_counts"]["succeeded"] == 2
    one = run_cli("results", batch_id, "-o", "one.jsonl", env=env, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert [r["custom_id"] for r in read_jsonl(tmp_path / "one.jsonl")] == ["req-2", "req-3"]


def test_batch_unknown_to_the_ledger_by_provider_id(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    other_home = tmp_path / "other"
    env = clean_env(tmp_path / "home", OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 2)
    job = _json(
        run_cli(
            "submit",
            str(source),
            "--json",
            env=clean_env(other_home, OMNIBATCH_EMULATOR_URL=emulator.root),
            cwd=tmp_path,
        )
    )
    batch_id = job["batches"][0]["batch_id"]
    waited = run_cli(
        "wait", batch_id, "--provider", "openai", "--poll-interval", "0.02", env=env, cwd=tmp_path
    )
    assert waited.returncode == 0, waited.stderr
    assert f"batch {batch_id}: succeeded (completed)" in waited.stdout
    res = run_cli(
        "results", batch_id, "-o", "r.jsonl", "--provider", "openai", env=env, cwd=tmp_path
    )
    assert res.returncode == 0
    assert sorted(r["custom_id"] for r in read_jsonl(tmp_path / "r.jsonl")) == ["req-0", "req-1"]


def test_cancel_a_job(slow_emulator: EmulatorProcess, tmp_path: Path, home: Path) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=slow_emulator.root)
    source = write_input(tmp_path / "in.jsonl", 3)
    job_id = _json(run_cli("submit", str(source), "--json", env=env, cwd=tmp_path))["job"]
    cancelled = _json(run_cli("cancel", job_id, "--json", env=env, cwd=tmp_path))
    assert cancelled.get("status") in ("cancelling", "cancelled"), cancelled
    waited = run_cli("wait", job_id, "--poll-interval", "0.05", env=env, cwd=tmp_path)
    assert waited.returncode == 1  # documented: the job did not succeed
    assert "cancelled" in waited.stdout
    results = run_cli("results", job_id, "-o", "r.jsonl", env=env, cwd=tmp_path)
    assert results.returncode == 1
    assert {r["status"] for r in read_jsonl(tmp_path / "r.jsonl")} == {"cancelled"}


def test_stdin_input_resumes_by_content(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    data = write_input(tmp_path / "in.jsonl", 3).read_bytes()
    first = run_cli("run", "-", "-o", "o.jsonl", env=env, cwd=tmp_path, stdin=data)
    second = run_cli("run", "-", "-o", "o.jsonl", env=env, cwd=tmp_path, stdin=data)
    assert first.returncode == second.returncode == 0, second.stderr
    # The same job, found by content, its results written again.
    assert "finished at" in second.stdout + second.stderr
    assert len(list((home / "stdin").iterdir())) == 1  # the rerun's copy was dropped


# --- listings -------------------------------------------------------------------------------------


def test_list_pages_through_the_provider(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 3)
    assert (
        run_cli(
            "submit", str(source), "--max-requests-per-batch", "1", env=env, cwd=tmp_path
        ).returncode
        == 0
    )
    everything = _json(run_cli("list", "--all", "--limit", "2", "--json", env=env, cwd=tmp_path))
    ids = [b["id"] for b in everything["batches"]]
    assert everything["next_cursor"] is None and len(ids) >= 3
    first = _json(run_cli("list", "--limit", "2", "--json", env=env, cwd=tmp_path))
    assert [b["id"] for b in first["batches"]] == ids[:2] and first["next_cursor"]
    second = _json(
        run_cli(
            "list", "--limit", "2", "--after", first["next_cursor"], "--json", env=env, cwd=tmp_path
        )
    )
    assert [b["id"] for b in second["batches"]] == ids[2:4]
    human = run_cli("list", "--limit", "2", env=env, cwd=tmp_path)
    assert f"more: omnibatch list --provider openai --after {first['next_cursor']}" in human.stderr
    assert ids[0] in human.stdout  # ids are never truncated when piped


def test_jobs_lists_the_ledger(emulator: EmulatorProcess, tmp_path: Path, home: Path) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 2)
    assert run_cli("run", str(source), "-o", "o.jsonl", env=env, cwd=tmp_path).returncode == 0
    data = _json(run_cli("--json", "jobs", env=env, cwd=tmp_path))
    assert data["ledger"] == str(home / "ledger.sqlite3")
    (job,) = data["jobs"]
    assert job["provider"] == "openai" and job["status"] == "succeeded"
    assert job["counts"]["succeeded"] == 2 and job["input"] == str(source)
    human = run_cli("jobs", env=env, cwd=tmp_path).stdout.splitlines()
    assert human[0].split()[:4] == ["job", "provider", "status", "requests"]
    assert human[1].startswith(job["job"]) and " 2/2 " in human[1]
    assert all(len(line) <= 80 for line in human)  # file name, not the full path
    assert human[1].rstrip().endswith("in.jsonl") and str(tmp_path) not in human[1]
    # --provider and --status filter.
    for args, count in (
        (("-p", "openai"), 1),
        (("--provider", "mistral"), 0),
        (("--status", "succeeded"), 1),
        (("--status", "failed", "--status", "running"), 0),
    ):
        listed = _json(run_cli("--json", "jobs", *args, env=env, cwd=tmp_path))["jobs"]
        assert len(listed) == count, args
    empty = run_cli("jobs", "--status", "failed", env=env, cwd=tmp_path)
    assert empty.returncode == 0 and "no jobs matching the filters" in empty.stderr


# --- local verbs ----------------------------------------------------------------------------------


def test_validate_reports_every_problem_with_its_line(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    good = json.dumps({"custom_id": "ok", "body": {"model": "m", "messages": []}})
    bad_lines = [good, "{nope", json.dumps({"custom_id": "x"}), good]
    bad_lines += [
        json.dumps({"custom_id": f"n{i}", "method": "GET", "body": {"model": "m", "messages": []}})
        for i in range(25)
    ]
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join(bad_lines) + "\n")
    proc = run_cli("validate", "bad.jsonl", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("bad.jsonl:2: not valid JSON")
    assert lines[1].startswith("bad.jsonl:3: body: missing or not an object")
    assert lines[2].startswith("bad.jsonl:4: custom_id: duplicate custom_id 'ok'")
    assert len(lines) == 3 + 25 and lines[-1].startswith("bad.jsonl:29: method: must be POST")
    data = _json(run_cli("validate", "bad.jsonl", "--json", env=env, cwd=tmp_path))
    assert data["valid"] is False and len(data["problems"]) == 28
    assert data["problems"][0] == {
        "line": 2,
        "field": None,
        "message": data["problems"][0]["message"],
        "fix": "write one JSON object per line",
    }
    ok = run_cli("validate", str(EXAMPLE), "--max-requests-per-batch", "4", env=env, cwd=tmp_path)
    assert ok.returncode == 0
    assert "10 request(s) valid for openai (3 batch(es)" in ok.stdout


def test_run_with_invalid_input_sends_nothing(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = tmp_path / "bad.jsonl"
    source.write_text('{"custom_id": "a", "method": "GET", "body": {"model": "m"}}\n')
    files_before = len(emulator.input_files("job-"))
    proc = run_cli("run", str(source), "-o", "o.jsonl", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert "line 1, field 'method': must be POST" in proc.stderr
    # Nothing sent, and no job left behind in the ledger.
    assert len(emulator.input_files("job-")) == files_before
    assert _json(run_cli("--json", "jobs", env=env, cwd=tmp_path))["jobs"] == []


def test_convert_to_mistral(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    proc = run_cli(
        "convert", str(EXAMPLE), "--to", "mistral", "-o", "m.jsonl", env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote 10 mistral request line(s)" in proc.stdout
    assert "model 'gpt-4o-mini'" in proc.stderr
    lines = read_jsonl(tmp_path / "m.jsonl")
    assert set(lines[0]) == {"custom_id", "body"} and "model" not in lines[0]["body"]
    data = _json(
        run_cli(
            "convert",
            str(EXAMPLE),
            "--to",
            "mistral",
            "-o",
            "m2.jsonl",
            "--json",
            "--model",
            "mistral-small-latest",
            env=env,
            cwd=tmp_path,
        )
    )
    assert data["model"] == "mistral-small-latest" and data["model_at_batch_level"] is True


def test_providers_lists_origins(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    data = _json(run_cli("providers", "--json", env=env, cwd=tmp_path))
    by_name = {p["name"]: p for p in data["providers"]}
    assert by_name["openai"]["distribution"] == "omnibatch" and by_name["openai"]["builtin"]
    assert by_name["mistral"]["api_key_env"] == "MISTRAL_API_KEY"
    assert isinstance(data["problems"], list)
    human = run_cli("providers", env=env, cwd=tmp_path)
    assert human.returncode == 0 and "OPENAI_API_KEY" in human.stdout
    blocked = run_cli(
        "providers", "--json", env={**env, "OMNIBATCH_DISABLE_PLUGINS": "mistral"}, cwd=tmp_path
    )
    assert "mistral" not in {p["name"] for p in _json(blocked)["providers"]}


def test_emulator_serve_json_lines(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    proc = subprocess.Popen(
        [*OMNIBATCH, "emulator", "serve", "--port", "0", "--json"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert set(first) == {"dialect", "base_url", "root"}
        assert first["base_url"].startswith(first["root"])
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and err == ""


# --- exit codes -----------------------------------------------------------------------------------


def test_usage_errors_exit_2(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    assert run_cli("run", str(EXAMPLE), env=env, cwd=tmp_path).returncode == 2  # no -o
    assert run_cli("frobnicate", env=env, cwd=tmp_path).returncode == 2
    bad = run_cli("run", str(EXAMPLE), "-o", "o", "--metadata", "novalue", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


def test_configuration_errors_exit_3(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    no_key = run_cli(
        "run", str(EXAMPLE), "-o", "o.jsonl", "--provider", "openai", env=env, cwd=tmp_path
    )
    assert no_key.returncode == 3 and "OPENAI_API_KEY" in no_key.stderr
    unknown = run_cli("list", "--provider", "nope", env=env, cwd=tmp_path)
    assert unknown.returncode == 3 and "installed providers" in unknown.stderr
    submit = run_cli("submit", str(EXAMPLE), env=env, cwd=tmp_path)
    assert submit.returncode == 3 and "no provider configured" in submit.stderr
    (tmp_path / "omnibatch.toml").write_text("provider = 3\n")
    broken = run_cli("list", env=env, cwd=tmp_path)
    assert broken.returncode == 3 and "must be a string" in broken.stderr
    (tmp_path / "omnibatch.toml").write_text('provdier = "mistral"\n')
    typo = run_cli("list", env=env, cwd=tmp_path)
    assert typo.returncode == 3 and "unknown setting 'provdier'" in typo.stderr
    assert "did you mean 'provider'?" in typo.stderr and "Traceback" not in typo.stderr


def test_config_file_selects_the_provider(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    (tmp_path / "omnibatch.toml").write_text('provider = "mistral"\n')
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    data = _json(
        run_cli(
            "submit", str(write_input(tmp_path / "i.jsonl", 1)), "--json", env=env, cwd=tmp_path
        )
    )
    assert data["provider"] == "mistral"
    other = tmp_path / "other.toml"
    other.write_text('provider = "openai"\n')
    data = _json(
        run_cli(
            "--config",
            str(other),
            "submit",
            str(tmp_path / "i.jsonl"),
            "--json",
            env=env,
            cwd=tmp_path,
        )
    )
    assert data["provider"] == "openai"


def test_not_found_exits_5(emulator: EmulatorProcess, tmp_path: Path, home: Path) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    missing = run_cli("status", "job-000000000000", env=env, cwd=tmp_path)
    assert missing.returncode == 5 and "omnibatch jobs" in missing.stderr
    as_json = run_cli("--json", "status", "job-000000000000", env=env, cwd=tmp_path)
    assert as_json.returncode == 5 and as_json.stderr == ""
    error = _json(as_json)["error"]
    assert error["type"] == "JobNotFoundError" and error["exit_code"] == 5
    batch = run_cli("status", "batch_doesnotexist", "--provider", "openai", env=env, cwd=tmp_path)
    assert batch.returncode == 5 and "HTTP 404" in batch.stderr


def test_busy_job_exits_6(emulator: EmulatorProcess, tmp_path: Path, home: Path) -> None:
    from omnibatch.ledger import Ledger

    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 2)
    args = ["run", str(source), "-o", "o.jsonl"]
    assert run_cli(*args, "--no-wait", env=env, cwd=tmp_path).returncode == 0
    with Ledger(home) as ledger, ledger.lock(ledger.list_jobs()[0]):
        busy = run_cli(*args, env=env, cwd=tmp_path)
    assert busy.returncode == 6 and "is being run by omnibatch pid" in busy.stderr
    assert run_cli(*args, env=env, cwd=tmp_path).returncode == 0


def test_wait_timeout_exits_7(slow_emulator: EmulatorProcess, tmp_path: Path, home: Path) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=slow_emulator.root)
    job = _json(
        run_cli(
            "submit", str(write_input(tmp_path / "i.jsonl", 1)), "--json", env=env, cwd=tmp_path
        )
    )["job"]
    proc = run_cli(
        "wait", job, "--timeout", "0.1", "--poll-interval", "0.05", env=env, cwd=tmp_path
    )
    assert proc.returncode == 7 and f"job {job} still" in proc.stderr


def test_provider_errors_exit_4(tmp_path: Path, home: Path) -> None:
    from tests.cli.conftest import start_emulator

    server = start_emulator(tmp_path, "--api-key", "sk-right-key-123")
    try:
        env = clean_env(
            home, OPENAI_BASE_URL=f"{server.root}/openai/v1", OPENAI_API_KEY="sk-wrong-key-456"
        )
        proc = run_cli("list", "--provider", "openai", env=env, cwd=tmp_path)
    finally:
        server.stop()
    assert proc.returncode == 4
    assert "Incorrect API key" in proc.stderr and "[HTTP 401]" in proc.stderr


def test_global_options_work_before_and_after_the_verb(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    before = _json(run_cli("--json", "jobs", env=env, cwd=tmp_path))
    after = _json(run_cli("jobs", "--json", env=env, cwd=tmp_path))
    assert before == after and before["jobs"] == []
    quiet = run_cli("-q", "jobs", env=env, cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.parametrize("verbose", ["-v", "-vv"])
def test_verbose_logs_to_stderr(
    verbose: str, emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    proc = run_cli(verbose, "list", "--limit", "1", env=env, cwd=tmp_path)
    assert proc.returncode == 0
    # -v: one line per request, with the answer's status and time.
    assert "omnibatch.http INFO list batches (GET" in proc.stderr
    assert "-> HTTP 200 (" in proc.stderr
    if verbose == "-v":
        assert "DEBUG" not in proc.stderr


def test_a_finished_job_run_again_says_so(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 3)
    # --keep-data keeps the downloads that the rerun writes OUTPUT from.
    first = run_cli("run", str(source), "-o", "a.jsonl", "--keep-data", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli("run", str(source), "-o", "b.jsonl", "--keep-data", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    job = only_job_id(home)
    assert f"job {job} finished at " in again.stdout
    assert "wrote its 3 results again" in again.stdout and "--new submits again" in again.stdout
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_lines_without_custom_id_need_generate_ids(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    lines = [json.loads(x) for x in write_input(tmp_path / "in.jsonl", 3).read_text().splitlines()]
    del lines[1]["custom_id"]
    source = tmp_path / "no-id.jsonl"
    source.write_text("".join(json.dumps(x) + "\n" for x in lines))
    before = len(emulator._all("/batches"))
    refused = run_cli("run", str(source), "-o", "o.jsonl", env=env, cwd=tmp_path)
    assert refused.returncode == 1 and "line 2" in refused.stderr and "custom_id" in refused.stderr
    assert len(emulator._all("/batches")) == before  # nothing was sent
    ran = run_cli("run", str(source), "-o", "o.jsonl", "--generate-ids", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    ids = [x["custom_id"] for x in read_jsonl(tmp_path / "o.jsonl")]
    assert ids == ["req-0", "request-2", "req-2"]
