"""The OpenAI-compatible base: facts configure adapter and dialect alike; the built-ins on it
(Azure's API versions and auth, DashScope's regions); the generated comparison table."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from omnibatch import BatchClient
from omnibatch._capabilities import comparison_table
from omnibatch._plugins import build_registry
from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock
from omnibatch.plugin import BatchStatus, ConfigurationError
from omnibatch.plugin.openai_compat import OpenAICompatFacts, duration_seconds
from omnibatch_azure.adapter import AzureAdapter
from omnibatch_azure.dialect import AzureDialect
from omnibatch_dashscope.adapter import DashScopeAdapter
from omnibatch_dashscope.facts import CHINA_BASE_URL, INTERNATIONAL_BASE_URL
from omnibatch_groq.adapter import GroqAdapter
from omnibatch_groq.dialect import GroqDialect

REPO = Path(__file__).resolve().parents[2]
PROVIDERS = REPO / "providers"
COMPAT = ("openai", "azure", "groq", "deepinfra", "dashscope")


def test_one_facts_object_configures_adapter_and_dialect() -> None:
    facts = GroqAdapter.facts
    assert GroqDialect.facts is facts
    assert GroqAdapter.endpoints == frozenset(facts.endpoints)
    assert GroqAdapter.emulator_prefix == GroqDialect.prefix + GroqDialect.base_url_suffix
    assert GroqAdapter.limits.max_bytes == facts.max_bytes == 100 * 1024 * 1024
    assert GroqAdapter.completion_windows == facts.completion_windows


def test_windows_and_wire_statuses() -> None:
    assert duration_seconds("24h") == 86400 and duration_seconds("7d") == 604800
    assert duration_seconds("1w") is None and duration_seconds("0h") is None
    groq = GroqAdapter.facts
    assert groq.window_seconds("36h") == 36 * 3600  # any duration in range
    assert groq.window_seconds("8d") is None and groq.window_seconds("23h") is None
    lean = OpenAICompatFacts(
        name="lean",
        display_name="Lean",
        base_url="https://x.example/v1",
        statuses={"queued": BatchStatus.QUEUED, "running": BatchStatus.RUNNING},
    )
    assert lean.window_seconds("48h") is None
    assert lean.wire_status(BatchStatus.VALIDATING) == "queued"
    assert lean.wire_status(BatchStatus.FINALIZING) == "running"


def test_openai_compatible_provider_folders_stay_small() -> None:
    for name in COMPAT:
        files = list((PROVIDERS / name).rglob("*.py"))
        lines = sum(len(f.read_text().splitlines()) for f in files)
        assert files and lines < 150, f"providers/{name} has {lines} lines"


def test_azure_dated_api_version_and_entra_token() -> None:
    emulator = Emulator([AzureDialect], EmulatorConfig(seed=3), ManualClock())
    adapter = AzureAdapter(
        api_key="k",
        base_url="http://emulator/azure/openai/v1",
        options={"api_version": "2024-10-21"},
    )
    assert adapter.base_url == "http://emulator/azure/openai"
    request = adapter.download_file("file-1")
    assert ("api-version", "2024-10-21") in list(request.params)
    assert adapter.auth_headers() == {"api-key": "k"}
    entra = AzureAdapter(
        api_key="tok", base_url="https://r.openai.azure.com", options={"auth": "entra"}
    )
    assert entra.base_url == "https://r.openai.azure.com/openai/v1"
    assert entra.auth_headers() == {"Authorization": "Bearer tok"}
    with BatchClient(
        "azure",
        api_key="k",
        base_url="http://emulator/azure",
        options={"api_version": "2024-10-21"},
        transport=emulator.transport(),
        sleep=emulator.advance,
    ) as client:
        batch = client.submit(
            [
                {
                    "custom_id": "a",
                    "body": {"model": "dep", "messages": [{"role": "user", "content": "hi"}]},
                },
            ],
            endpoint="/v1/chat/completions",
        )
        done = client.wait(batch.id)
        assert done.status is BatchStatus.SUCCEEDED
        assert [r.custom_id for r in client.results(batch.id)] == ["a"]
    paths = {r.path for r in emulator.engine.stats.requests}
    assert "/azure/openai/batches" in paths and "/azure/openai/files" in paths


def test_azure_without_an_endpoint_says_what_to_set() -> None:
    adapter = AzureAdapter(api_key="k")
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        next(adapter.retrieve("batch_1"))


def test_azure_reads_capitalised_statuses_and_iso_times() -> None:
    raw = {
        "id": "batch_1",
        "status": "Validating",
        "created_at": "2024-07-19T17:13:57.2491382+00:00",
        "output_file_id": "",
        "error_file_id": "",
        "input_file_id": "file-1",
        "request_counts": {"total": None, "completed": None, "failed": None},
    }
    batch = AzureAdapter(api_key="k", base_url="https://r.openai.azure.com").parse_batch(raw)
    assert batch.status is BatchStatus.VALIDATING and batch.provider_status == "Validating"
    assert batch.created_at is not None and batch.created_at.year == 2024
    assert batch.output_file_ids == () and batch.error_file_ids == ()


def test_dashscope_regions() -> None:
    assert DashScopeAdapter(api_key="k").base_url == INTERNATIONAL_BASE_URL
    assert DashScopeAdapter(api_key="k", options={"region": "cn"}).base_url == CHINA_BASE_URL
    own = "https://ws-1.dashscope.aliyuncs.com/compatible-mode/v1"
    assert DashScopeAdapter(api_key="k", base_url=own, options={"region": "cn"}).base_url == own
    with pytest.raises(ConfigurationError, match="region"):
        DashScopeAdapter(api_key="k", options={"region": "eu"})


def test_the_comparison_table_is_generated_and_current() -> None:
    from omnibatch._docs_tables import render_page

    page = REPO / "docs" / "providers" / "comparison.md"
    text = page.read_text(encoding="utf-8")
    assert "<!-- generated: provider-comparison -->" in text
    assert render_page(text, page) == text, (
        "docs/providers/comparison.md is stale: run `python -m omnibatch._docs_tables`"
    )
    registry = build_registry()
    builtins = [e.adapter for e in registry.providers.values() if e.origin.builtin]
    table = comparison_table(builtins)
    assert "| `groq` (Groq)" in table and "7d" in table and table in text


def test_the_emulator_rejects_what_the_facts_forbid() -> None:
    emulator = Emulator([GroqDialect], EmulatorConfig(seed=1), ManualClock())
    with httpx.Client(
        transport=emulator.transport(),
        base_url="http://emulator/groq/openai/v1",
        headers={"Authorization": "Bearer k"},
    ) as http:
        upload = http.post("/files", data={"purpose": "fine-tune"}, files={"file": ("a", b"{}")})
        assert upload.status_code == 400 and "purpose" in upload.text
        bad = http.post(
            "/batches",
            json={"input_file_id": "x", "endpoint": "/v1/embeddings", "completion_window": "24h"},
        )
        assert bad.status_code == 400 and "/v1/audio/transcriptions" in bad.text
        assert http.get("/v1/batches").status_code == 404  # wrong prefix
