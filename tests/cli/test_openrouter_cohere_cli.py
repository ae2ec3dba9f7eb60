"""``omnibatch run --provider openrouter|cohere`` against ``omnibatch emulator serve``, and the
clear error a provider without cancel gives."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from .conftest import EmulatorProcess, clean_env, only_job_id, read_jsonl, run_cli, write_input

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "requests.jsonl"


@pytest.mark.parametrize("provider", ["openrouter", "cohere"])
def test_run_the_example_on_the_emulator(
    provider: str, emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    proc = run_cli(
        "run", str(EXAMPLE), "-o", "out.jsonl", "--provider", provider, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    expected = [json.loads(line)["custom_id"] for line in EXAMPLE.read_text().splitlines()]
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert [line["custom_id"] for line in lines] == expected
    for line in lines:
        assert line["status"] == "succeeded", line
        assert line["response"]["choices"][0]["message"]["content"], line
    job_id = only_job_id(home)
    status = json.loads(run_cli("status", job_id, "--json", env=env, cwd=tmp_path).stdout)
    assert status["status"] == "succeeded", status


def test_openrouter_splits_over_5000_requests_and_merges(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "big.jsonl", 5_003)
    proc = run_cli(
        "run",
        str(source),
        "-o",
        "out.jsonl",
        "--provider",
        "openrouter",
        "--json",
        env=env,
        cwd=tmp_path,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert len(lines) == 5_003 and len({line["custom_id"] for line in lines}) == 5_003
    assert all(line["status"] == "succeeded" for line in lines)
    job_id = only_job_id(home)
    view = json.loads(run_cli("status", job_id, "--json", env=env, cwd=tmp_path).stdout)
    parts = view["batches"]
    assert [p["requests"] for p in parts] == [5_000, 3], parts
    assert len({p["batch_id"] for p in parts}) == 2 and view["status"] == "succeeded"


def test_cancel_on_openrouter_is_a_clear_error(
    emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    proc = run_cli("cancel", "batch_anything", "--provider", "openrouter", env=env, cwd=tmp_path)
    assert proc.returncode != 0
    assert "cannot be cancelled" in proc.stderr and "Traceback" not in proc.stderr


def _until(check: object, what: str, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def test_the_official_sdks_drive_omnibatch_emulator_serve(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    import cohere
    from cohere.batches import Batch as CohereBatch
    from openrouter import OpenRouter, components

    with OpenRouter(api_key="x", server_url=f"{emulator.root}/openrouter/api/v1") as router:
        created = router.batch.create_batches(
            endpoint="/v1/chat/completions",
            model="openai/gpt-4o-mini",
            requests=[
                {"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}
            ],
        )

        def finished() -> components.BatchObject | None:
            got = router.batch.get_batches(id=created.id)
            return got if got.status == "completed" else None

        done = _until(finished, "the OpenRouter batch completing")
        assert isinstance(done, components.BatchObject) and done.results
        assert isinstance(done.results[0].response.body, components.BodyChatCompletion)  # type: ignore[union-attr]

    co = cohere.ClientV2(api_key="x", base_url=f"{emulator.root}/cohere")
    source = write_input(tmp_path / "in.jsonl", 3)
    with open(source, "rb") as fh:
        dataset = co.datasets.create(name="served", type="batch-openai-chat-input", data=fh)
    co.wait(dataset, interval=0.05)
    batch = co.batches.create(
        request=CohereBatch(name="served", input_dataset_id=dataset.id or "", model="gpt-4o-mini")
    ).batch

    def ended() -> object:
        got = co.batches.retrieve(id=batch.id or "").batch
        return (
            got
            if got.status != "BATCH_STATUS_QUEUED" and got.status != "BATCH_STATUS_IN_PROGRESS"
            else None
        )

    final = _until(ended, "the Cohere batch ending")
    assert final.status == "BATCH_STATUS_COMPLETED", final  # type: ignore[attr-defined]
    output = co.datasets.get(id=final.output_dataset_id).dataset  # type: ignore[attr-defined]
    saved = tmp_path / "out.jsonl"
    co.utils.save_dataset(output, str(saved), format="jsonl")
    assert sorted(json.loads(line)["custom_id"] for line in saved.read_text().splitlines()) == [
        "req-0",
        "req-1",
        "req-2",
    ]
    co._client_wrapper.httpx_client.httpx_client.close()


def test_providers_lists_both_with_their_capabilities(tmp_path: Path, home: Path) -> None:
    proc = run_cli("providers", "--json", env=clean_env(home), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = {p["name"]: p for p in json.loads(proc.stdout)["providers"]}
    openrouter, cohere = listed["openrouter"], listed["cohere"]
    assert openrouter["builtin"] and openrouter["api_key_env"] == "OPENROUTER_API_KEY"
    assert openrouter["capabilities"]["cancel"] is False
    assert openrouter["capabilities"]["file_upload"] is False
    assert cohere["builtin"] and cohere["api_key_env"] == "CO_API_KEY"
    assert cohere["capabilities"]["cancel"] is True
    assert cohere["capabilities"]["idempotency_key"] is True


@pytest.mark.parametrize("crash", ["upload-answered", "create-answered"])
def test_cohere_crash_then_rerun_keeps_one_dataset_and_one_batch(
    crash: str, emulator: EmulatorProcess, tmp_path: Path, home: Path
) -> None:
    """A crash after Cohere stored the dataset (or created the batch) but before omnibatch read
    the answer: the rerun finds the dataset by its name (the batch by the key in its name)."""
    env = clean_env(home, OMNIBATCH_EMULATOR_URL=emulator.root)
    source = write_input(tmp_path / "in.jsonl", 4, prefix=crash)
    args = ["run", str(source), "-o", "out.jsonl", "--provider", "cohere"]
    killed = run_cli(*args, env={**env, "OMNIBATCH_CRASH_AT": crash}, cwd=tmp_path)
    assert killed.returncode == -9, killed.stderr
    job_id = only_job_id(home)
    rerun = run_cli(*args, env=env, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming job {job_id}" in rerun.stderr
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert [line["custom_id"] for line in lines] == [f"{crash}-{i}" for i in range(4)]
    co = httpx.Client(base_url=f"{emulator.root}/cohere", headers={"Authorization": "Bearer x"})
    batches = [
        b
        for b in co.get("/v2/batches", params={"page_size": 1000}).json()["batches"]
        if b["input_dataset_id"].startswith(job_id)
    ]
    datasets = [
        d
        for d in co.get("/v1/datasets", params={"limit": 1000}).json()["datasets"]
        if d["name"].startswith(job_id) and d["dataset_type"] == "batch-openai-chat-input"
    ]
    co.close()
    assert len(batches) == 1, batches
    # The run cleans up after itself: the reused upload was deleted, none was left behind.
    assert datasets == [], datasets
