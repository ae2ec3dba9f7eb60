"""Daily-use details of the command line: ``-o -``, short flags, input messages a person can act
on, and ``emulator serve -v``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from .conftest import OMNIBATCH, EmulatorProcess, clean_env, run_cli, write_input


def test_output_dash_writes_results_to_stdout(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 3)
    proc = run_cli("run", str(source), "-o", "-", "-p", "openai", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["succeeded"] * 3  # only results on stdout
    assert "wrote 3 result line(s) to stdout" in proc.stderr
    assert not (tmp_path / "-").exists()
    job = json.loads(run_cli("--json", "jobs", env=env, cwd=tmp_path).stdout)["jobs"][0]["job"]
    again = run_cli("results", job, "-o", "-", env=env, cwd=tmp_path)
    assert again.returncode == 0 and len(again.stdout.splitlines()) == 3
    assert not list(home.glob("stdout-*"))  # the scratch copy is gone
    both = run_cli("results", job, "-o", "-", "--json", env=env, cwd=tmp_path)
    assert both.returncode == 2 and "--json" in both.stderr


def test_short_provider_and_model_flags(tmp_path: Path, home: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 2)
    proc = run_cli(
        "--json", "validate", str(source), "-p", "mistral", "-m", "mistral-small-latest",
        env=clean_env(home), cwd=tmp_path,
    )  # fmt: skip
    data = json.loads(proc.stdout)
    assert data["provider"] == "mistral" and data["model"] == "mistral-small-latest"


def test_invalid_utf8_line_gets_its_own_message(tmp_path: Path, home: Path) -> None:
    good = write_input(tmp_path / "good.jsonl", 1).read_bytes()
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(good + good.replace(b"req-", b"caf\xe9-"))
    proc = run_cli("validate", str(bad), env=clean_env(home), cwd=tmp_path)
    assert proc.returncode == 1
    assert f"{bad}:2: not valid UTF-8 (byte 0xe9 at position" in proc.stdout
    assert "save the file as UTF-8" in proc.stdout and "surrogates" not in proc.stdout


def test_empty_input_says_empty_file(tmp_path: Path, home: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    proc = run_cli("validate", str(empty), env=clean_env(home), cwd=tmp_path)
    assert proc.returncode == 1 and f"{empty}: empty file" in proc.stdout
    run = run_cli("run", str(empty), "-o", "out.jsonl", env=clean_env(home), cwd=tmp_path)
    assert run.returncode == 1 and "input: empty file" in run.stderr
    assert "line 0" not in run.stderr


def test_emulator_serve_verbose_logs_requests_redacted(tmp_path: Path, home: Path) -> None:
    key = "sk-serve-secret-key-123"
    proc = subprocess.Popen(
        [*OMNIBATCH, "emulator", "serve", "--port", "0", "-v", "--api-key", key],
        env=clean_env(home),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        root = None
        for line in proc.stdout:
            name, _, url = line.strip().partition(" ")
            if name == "openai":
                root = url.strip()
                break
        assert root is not None
        headers = {"Authorization": f"Bearer {key}"}
        httpx.get(f"{root}/batches", params={"limit": 1}, headers=headers).raise_for_status()
        httpx.get(f"{root}/batches/batch_nope", headers=headers)
        time.sleep(0.3)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "emulator: GET /openai/v1/batches?limit=1 -> 200" in err
    assert "emulator: GET /openai/v1/batches/batch_nope -> 404" in err
    assert key not in err


# --- consistent words ---------------------------------------------------------------------------


def test_plugin_new_errors_like_every_verb(tmp_path: Path, home: Path) -> None:
    proc = run_cli("plugin", "new", "Bad Name", env=clean_env(home), cwd=tmp_path)
    assert proc.returncode == 2
    assert "error: provider name 'Bad Name' is not valid" in proc.stderr
    assert "Error:" not in proc.stderr
    usage = run_cli("jobs", "--no-such-flag", env=clean_env(home), cwd=tmp_path)
    assert usage.returncode == 2 and "error: No such option" in usage.stderr


def test_unknown_provider_gets_did_you_mean(tmp_path: Path, home: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 1)
    proc = run_cli("validate", str(source), "-p", "mistrall", env=clean_env(home), cwd=tmp_path)
    assert proc.returncode == 3
    assert "no provider named 'mistrall' (did you mean 'mistral'?)" in proc.stderr


def test_convert_json_reports_the_model(tmp_path: Path, home: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 2)
    for provider in ("openai", "anthropic", "mistral"):
        proc = run_cli(
            "--json", "convert", str(source), "--to", provider, "-o", "out.jsonl",
            "-m", "model-x", env=clean_env(home), cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["model"] == "model-x", provider


def test_results_of_a_finished_embedded_job(tmp_path: Path, home: Path) -> None:
    env = clean_env(home)
    source = write_input(tmp_path / "in.jsonl", 3)
    assert run_cli("run", str(source), "-o", "first.jsonl", env=env, cwd=tmp_path).returncode == 0
    job = json.loads(run_cli("--json", "jobs", env=env, cwd=tmp_path).stdout)["jobs"][0]["job"]
    again = run_cli("--json", "results", job, "-o", "again.jsonl", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["summary"]["succeeded"] == 3
    first = (tmp_path / "first.jsonl").read_bytes()
    assert (tmp_path / "again.jsonl").read_bytes() == first
    (tmp_path / "first.jsonl").unlink()  # the latest copy, again.jsonl, is what is read now
    third = run_cli("results", job, "-o", "third.jsonl", env=env, cwd=tmp_path)
    assert third.returncode == 0 and (tmp_path / "third.jsonl").read_bytes() == first
    for name in ("again.jsonl", "third.jsonl"):
        (tmp_path / name).unlink()
    gone = run_cli("results", job, "-o", "fourth.jsonl", env=env, cwd=tmp_path)
    assert gone.returncode == 1 and "no longer exists" in gone.stderr


def test_wait_timeout_reports_the_time_it_waited(
    slow_emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=slow_emulator.root)
    source = write_input(tmp_path / "in.jsonl", 2)
    assert run_cli("submit", str(source), env=env, cwd=tmp_path).returncode == 0
    job = json.loads(run_cli("--json", "jobs", env=env, cwd=tmp_path).stdout)["jobs"][0]["job"]
    proc = run_cli("--json", "wait", job, "--timeout", "1", env=env, cwd=tmp_path)
    assert proc.returncode == 7
    error = json.loads(proc.stdout)["error"]
    waited = error["waited_seconds"]
    assert 0.9 <= waited < 10  # it waited for the whole timeout, then said so
    assert f"waited {waited:.1f} s (--timeout 1)" in error["message"]


def test_shell_completion_as_documented(tmp_path: Path, home: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    assert 'eval "$(_OMNIBATCH_COMPLETE=bash_source omnibatch)"' in docs
    env = clean_env(home, _OMNIBATCH_COMPLETE="bash_source")
    script = subprocess.run(OMNIBATCH, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert "_omnibatch_completion" in script.stdout
    env = clean_env(
        home,
        _OMNIBATCH_COMPLETE="bash_complete",
        COMP_WORDS="omnibatch jobs --status su",
        COMP_CWORD="3",
    )
    words = subprocess.run(OMNIBATCH, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert "plain,succeeded" in words.stdout.splitlines()
