"""OpenAI-compatible providers from configuration alone: listed with their origin, usable
from ``omnibatch run`` and ``BatchClient``, served by ``omnibatch emulator serve``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnibatch import BatchClient
from omnibatch._plugins import get_registry, reset_registry
from omnibatch.emulator import serve

from .conftest import clean_env, read_jsonl, run_cli, start_emulator, write_input

CONFIG = """
[providers.mylab]
kind = "openai-compatible"
base_url = "https://llm.mylab.example/v1"
api_key_env = "MYLAB_API_KEY"
completion_windows = ["24h"]

[providers.selfhosted]
kind = "openai-compatible"
display_name = "vLLM box"
base_url = "http://10.0.0.5:8000/api/v1"
endpoints = ["/v1/chat/completions", "/v1/embeddings"]
pagination = "none"
max_requests = 1000
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "omnibatch.toml").write_text(CONFIG)
    return tmp_path


def test_providers_lists_config_defined_endpoints_with_their_origin(
    project: Path, home: Path
) -> None:
    env = clean_env(home)
    proc = run_cli("providers", env=env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    for name in ("openai", "azure", "mistral", "anthropic", "gemini", "groq", "deepinfra"):
        assert name in lines
    assert "dashscope" in lines
    assert "config" in lines["mylab"] and "omnibatch.toml" in lines["mylab"]
    assert "MYLAB_API_KEY" in lines["mylab"]
    data = json.loads(run_cli("providers", "--json", env=env, cwd=project).stdout)
    by_name = {p["name"]: p for p in data["providers"]}
    box = by_name["selfhosted"]
    assert box["display_name"] == "vLLM box" and box["builtin"] is False
    assert box["config_file"].endswith("omnibatch.toml")
    assert box["endpoints"] == ["/v1/chat/completions", "/v1/embeddings"]
    assert box["limits"]["max_requests"] == 1000
    assert box["openai_compatible"]["pagination"] == "none"
    assert by_name["groq"]["completion_windows"][-1] == "7d"
    assert by_name["azure"]["openai_compatible"]["auth"] == "api-key: <key>"
    assert data["problems"] == []


def test_a_broken_section_is_reported_not_fatal(tmp_path: Path, home: Path) -> None:
    (tmp_path / "omnibatch.toml").write_text(
        '[providers.bad]\nkind = "openai-compatible"\nbase_url = "llm.example"\n'
    )
    data = json.loads(run_cli("providers", "--json", env=clean_env(home), cwd=tmp_path).stdout)
    assert "bad" not in {p["name"] for p in data["providers"]}
    (problem,) = data["problems"]
    assert "base_url" in problem["message"] and "[providers.bad]" in problem["message"]


def test_run_on_a_config_defined_provider_against_the_served_emulator(
    project: Path, home: Path
) -> None:
    server = start_emulator(project)  # reads ./omnibatch.toml: serves /mylab/v1 too
    try:
        env = clean_env(home, OMNIBATCH_EMULATOR_URL=server.root, MYLAB_API_KEY="lab-key")
        write_input(project / "in.jsonl", 4)
        proc = run_cli(
            "run", "in.jsonl", "-o", "out.jsonl", "--provider", "mylab", env=env, cwd=project
        )
        assert proc.returncode == 0, proc.stderr
        lines = read_jsonl(project / "out.jsonl")
        assert [x["custom_id"] for x in lines] == [f"req-{i}" for i in range(4)]
        assert all(x["status"] == "succeeded" for x in lines)
        # The batch lives in the mylab dialect, not in OpenAI's.
        assert server.http.get("/batches").json()["data"] == []
        mylab = server.http.get(f"{server.root}/mylab/v1/batches").json()["data"]
        assert len(mylab) == 1 and mylab[0]["status"] == "completed"
    finally:
        server.stop()


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    reset_registry()
    yield
    reset_registry()  # forget the config-defined providers this test added


def test_batch_client_uses_a_config_defined_provider(project: Path, fresh_registry: None) -> None:
    config = project / "omnibatch.toml"
    client_cls = BatchClient
    from omnibatch.config import load_config

    load_config(config)  # registers [providers.*] of kind openai-compatible
    registry = get_registry()
    dialect = registry.dialects["mylab"].dialect
    assert registry.origin_of("mylab").config_file == str(config)
    with (
        serve(dialects=[dialect], speed=1000) as server,
        client_cls(
            provider="mylab",
            config=str(config),
            base_url=server.url("mylab"),
            api_key="lab-key",
            workdir=project / "work",
        ) as client,
    ):
        requests = project / "req.jsonl"
        write_input(requests, 3)
        batch = client.submit(requests)
        assert batch.provider == "mylab" and batch.raw["completion_window"] == "24h"
        done = client.wait(batch.id, timeout=30)
        assert done.status.value == "succeeded"
        assert sorted(r.custom_id for r in client.results(batch.id)) == [
            "req-0",
            "req-1",
            "req-2",
        ]
    assert server.url("mylab").endswith("/mylab/v1")
