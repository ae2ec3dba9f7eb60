"""The normalized status model and every documented raw status of the built-in providers."""

from __future__ import annotations

import re

import pytest

from omnibatch import BatchStatus
from omnibatch._status import UnknownStatusWarning, normalize_status
from omnibatch_mistral.adapter import MistralAdapter
from omnibatch_openai.adapter import OpenAIAdapter

from ..conftest import shared_path

OPENAI = {
    "validating": BatchStatus.VALIDATING,
    "failed": BatchStatus.FAILED,
    "in_progress": BatchStatus.RUNNING,
    "finalizing": BatchStatus.FINALIZING,
    "completed": BatchStatus.SUCCEEDED,
    "expired": BatchStatus.EXPIRED,
    "cancelling": BatchStatus.CANCELLING,
    "cancelled": BatchStatus.CANCELLED,
}
MISTRAL = {
    "QUEUED": BatchStatus.QUEUED,
    "RUNNING": BatchStatus.RUNNING,
    "SUCCESS": BatchStatus.SUCCEEDED,
    "FAILED": BatchStatus.FAILED,
    "TIMEOUT_EXCEEDED": BatchStatus.EXPIRED,
    "CANCELLATION_REQUESTED": BatchStatus.CANCELLING,
    "CANCELLED": BatchStatus.CANCELLED,
}


@pytest.mark.parametrize(
    ("adapter", "expected"), [(OpenAIAdapter, OPENAI), (MistralAdapter, MISTRAL)]
)
def test_every_documented_status_maps(adapter: type, expected: dict[str, BatchStatus]) -> None:
    assert set(adapter.documented_statuses) == set(expected)
    for raw, normalized in expected.items():
        assert normalize_status(raw, adapter.status_map, provider=adapter.name) is normalized


def _enum_values(text: str, heading: str) -> set[str]:
    """The backticked values of the first markdown status table after ``heading``."""
    section = text[text.index(heading) :]
    table = section[section.index("| value | meaning |") :]
    rows = []
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return {m.group(1) for row in rows if (m := re.match(r"\|\s*`([^`]+)`", row))}


def test_status_tables_match_the_reference() -> None:
    text = shared_path("providers.md").read_text(encoding="utf-8")
    assert _enum_values(text, "## 1. OpenAI") == set(OpenAIAdapter.documented_statuses)
    assert _enum_values(text, "## 3. Mistral") == set(MistralAdapter.documented_statuses)


def test_terminal_states() -> None:
    terminal = {s for s in BatchStatus if s.is_terminal}
    assert terminal == {
        BatchStatus.SUCCEEDED,
        BatchStatus.FAILED,
        BatchStatus.EXPIRED,
        BatchStatus.CANCELLED,
    }
    # expired and cancelled stay distinct from failed
    assert len({BatchStatus.EXPIRED, BatchStatus.CANCELLED, BatchStatus.FAILED}) == 3


def test_case_insensitive_for_azure_spellings() -> None:
    assert normalize_status("Validating", OPENAI, provider="openai") is BatchStatus.VALIDATING
    assert normalize_status("Completed", OPENAI, provider="openai") is BatchStatus.SUCCEEDED


def test_unknown_status_warns_and_is_unknown() -> None:
    with pytest.warns(UnknownStatusWarning, match="'paused'"):
        assert normalize_status("paused", OPENAI, provider="openai") is BatchStatus.UNKNOWN
    with pytest.warns(UnknownStatusWarning):
        assert normalize_status(None, OPENAI, provider="openai") is BatchStatus.UNKNOWN
    assert not BatchStatus.UNKNOWN.is_terminal


def test_request_counts_speak_the_results_word() -> None:
    from omnibatch.models import RequestCounts

    counts = RequestCounts(total=10, succeeded=6, failed=3, expired=1)
    assert counts.errored == 3 and counts.pending == 0 and counts.done == 10
