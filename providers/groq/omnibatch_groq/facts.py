"""Groq's batch API as data (providers.md §6 and §15.1): OpenAI's shapes under ``/openai/v1``,
chat and audio endpoints, completion windows from ``24h`` to ``7d``, lists without paging."""

from __future__ import annotations

from omnibatch.plugin.openai_compat import OpenAICompatFacts, duration_seconds

__all__ = ["FACTS", "GroqFacts"]

_DAY = 24 * 3600


class GroqFacts(OpenAICompatFacts):
    """Groq takes any window from one to seven days, not only the listed ones."""

    def window_seconds(self, window: str) -> int | None:
        seconds = duration_seconds(window)
        return seconds if seconds is not None and _DAY <= seconds <= 7 * _DAY else None


FACTS = GroqFacts(
    name="groq",
    display_name="Groq",
    base_url="https://api.groq.com/openai/v1",
    api_prefix="/openai/v1",
    api_key_env="GROQ_API_KEY",
    base_url_env="GROQ_BASE_URL",
    endpoints=("/v1/chat/completions", "/v1/audio/transcriptions", "/v1/audio/translations"),
    completion_windows=("24h", "48h", "72h", "4d", "5d", "6d", "7d"),
    file_purposes=("batch",),
    max_bytes=100 * 1024 * 1024,
    max_metadata_pairs=None,
    max_metadata_key_length=None,
    max_metadata_value_length=None,
    pagination="none",
    docs_note="any window from 24h to 7d; max requests per batch unverified (50,000 assumed)",
)
