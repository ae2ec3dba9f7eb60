"""OpenAI's batch API as data (providers.md §1): read by the adapter, the emulator dialect,
``omnibatch providers --json`` and the docs' comparison table."""

from __future__ import annotations

from omnibatch.plugin.openai_compat import OPENAI_ENDPOINTS, OpenAICompatFacts

__all__ = ["FACTS"]

FACTS = OpenAICompatFacts(
    name="openai",
    display_name="OpenAI",
    base_url="https://api.openai.com/v1",
    api_key_env="OPENAI_API_KEY",
    base_url_env="OPENAI_BASE_URL",
    endpoints=OPENAI_ENDPOINTS,
    file_purposes=("assistants", "batch", "fine-tune", "vision", "user_data", "evals"),
)
