"""``--state-dir``: files, batches and the clock survive a restart of the emulator."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import orjson

from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock
from tests.cli.conftest import (
    OMNIBATCH,
    clean_env,
    read_jsonl,
    run_cli,
    start_emulator,
    write_input,
)

LINE = (
    b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
    b'"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}\n'
)
THREE = b"".join(LINE.replace(b'"a"', f'"{c}"'.encode()) for c in "abc")


def _client(emulator: Emulator) -> httpx.Client:
    return emulator.client("openai", headers={"Authorization": "Bearer k"})


def test_a_restarted_emulator_keeps_files_batches_ids_and_time(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Emulator(config=EmulatorConfig(seed=3), clock=ManualClock(), state_dir=state)
    with _client(first) as oai:
        file_id = oai.post(
            "/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", THREE)}
        ).json()["id"]
        batch = oai.post(
            "/batches",
            json={
                "input_file_id": file_id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        ).json()
    first.advance(0.501)  # validated, running (400 requests/s)
    saved_at = first.clock.now()

    again = Emulator(config=EmulatorConfig(seed=3), clock=ManualClock(), state_dir=state)
    assert again.clock.now() == saved_at  # the clock resumes where it was, not at its start
    with _client(again) as oai:
        running = oai.get(f"/batches/{batch['id']}").json()
        assert running["status"] == "in_progress"
        assert oai.get(f"/files/{file_id}/content").content == THREE
        # The id generator resumed too: the same seed does not hand out a used id again.
        other = oai.post(
            "/files", data={"purpose": "batch"}, files={"file": ("b.jsonl", LINE)}
        ).json()["id"]
        assert other != file_id
        again.advance(60)
        done = oai.get(f"/batches/{batch['id']}").json()
        assert done["status"] == "completed" and done["request_counts"]["completed"] == 3
        output = oai.get(f"/files/{done['output_file_id']}/content").content
        assert sorted(orjson.loads(x)["custom_id"] for x in output.splitlines()) == ["a", "b", "c"]
        assert oai.delete(f"/files/{other}").json()["deleted"] is True

    third = Emulator(config=EmulatorConfig(seed=3), clock=ManualClock(), state_dir=state)
    with _client(third) as oai:
        # Results written before the restart are the same file, and a deleted file is gone.
        assert oai.get(f"/batches/{batch['id']}").json()["output_file_id"] == done["output_file_id"]
        assert oai.get(f"/files/{other}").status_code == 404
    assert len(list((state / "files").iterdir())) == 2  # input and output; the deleted one is gone


def test_without_a_state_dir_a_restart_forgets_everything() -> None:
    first = Emulator(clock=ManualClock())
    with _client(first) as oai:
        oai.post("/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", LINE)})
        assert len(oai.get("/files").json()["data"]) == 1
    with _client(Emulator(clock=ManualClock())) as oai:
        assert oai.get("/files").json()["data"] == []


def test_cli_job_started_before_a_restart_finishes_after_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # Slow enough that the job is still running when the emulator is killed.
    server = start_emulator(tmp_path, "--speed", "0.5", "--state-dir", str(state))
    home = tmp_path / "home"
    source = write_input(tmp_path / "in.jsonl", 4)
    args = ["run", str(source), "-o", "out.jsonl"]
    try:
        env = clean_env(home, OMNIBATCH_EMULATOR_URL=server.root)
        first = run_cli(*args, "--no-wait", "--json", env=env, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        submitted = orjson.loads(first.stdout)
        job_id, batch_id = submitted["job"], submitted["batches"][0]["batch_id"]
        assert submitted["status"] != "succeeded"
    finally:
        # No clean shutdown: what is on disk is what the last request left there.
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        server.http.close()
        if server.proc.stdout is not None:
            server.proc.stdout.close()
    # The same address: a job's identity includes the provider's URL.
    port = server.root.rsplit(":", 1)[1]
    restarted = start_emulator(tmp_path, "--speed", "50", "--state-dir", str(state), "--port", port)
    try:
        env = clean_env(home, OMNIBATCH_EMULATOR_URL=restarted.root)
        second = run_cli(*args, "--json", env=env, cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        data = orjson.loads(second.stdout)
        assert data["resumed"] and data["status"] == "succeeded", str(data)
        assert data["job"] == job_id and data["batches"][0]["batch_id"] == batch_id
        assert sorted(r["custom_id"] for r in read_jsonl(tmp_path / "out.jsonl")) == [
            f"req-{i}" for i in range(4)
        ]
    finally:
        restarted.stop()


def test_cli_says_a_vanished_batch_may_mean_a_restarted_emulator(tmp_path: Path) -> None:
    server = start_emulator(tmp_path, "--speed", "0.5")
    home = tmp_path / "home"
    source = write_input(tmp_path / "in.jsonl", 2)
    args = ["run", str(source), "-o", "out.jsonl"]
    try:
        env = clean_env(home, OMNIBATCH_EMULATOR_URL=server.root)
        assert run_cli(*args, "--no-wait", env=env, cwd=tmp_path).returncode == 0
    finally:
        server.stop()
    port = server.root.rsplit(":", 1)[1]
    # The same address, in memory: the job's batch is gone.
    restarted = start_emulator(tmp_path, "--speed", "50", "--port", port)
    try:
        env = clean_env(home, OMNIBATCH_EMULATOR_URL=restarted.root)
        second = run_cli(*args, env=env, cwd=tmp_path)
        assert second.returncode == 5, second.stderr
        assert "emulator may have restarted" in second.stderr
        assert "--new" in second.stderr and "--state-dir" in second.stderr
    finally:
        restarted.stop()


def test_state_dir_flag_is_in_the_serve_help(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*OMNIBATCH, "emulator", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(tmp_path),
    )
    assert "--state-dir" in proc.stdout
