"""DeepInfra's OpenAI-compatible batch API as data (providers.md §15.4)."""

from __future__ import annotations

from omnibatch.plugin.openai_compat import OpenAICompatFacts

__all__ = ["FACTS"]

FACTS = OpenAICompatFacts(
    name="deepinfra",
    display_name="DeepInfra",
    base_url="https://api.deepinfra.com/v1/openai",
    api_prefix="/v1/openai",
    api_key_env="DEEPINFRA_API_KEY",
    base_url_env="DEEPINFRA_BASE_URL",
    endpoints=("/v1/chat/completions", "/v1/completions", "/v1/embeddings"),
    docs_note="batch limits unverified: OpenAI's (50,000 requests, 200 MB) assumed",
)
