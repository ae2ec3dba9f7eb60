"""Azure OpenAI Global/Data Zone Batch as data (providers.md §2 and §15.1): OpenAI's shapes
under ``{endpoint}/openai/v1`` (or the dated ``{endpoint}/openai/...?api-version=``), the
``api-key`` header (or an Entra ID bearer token), deployment names as ``model``, 100,000
requests and 200 MB per file, input files kept 14 to 30 days."""

from __future__ import annotations

from omnibatch.plugin.openai_compat import OpenAICompatFacts

__all__ = ["FACTS"]

FACTS = OpenAICompatFacts(
    name="azure",
    display_name="Azure OpenAI",
    base_url="https://YOUR-RESOURCE.openai.azure.com/openai/v1",
    api_prefix="/openai/v1",
    api_key_env="AZURE_OPENAI_API_KEY",
    base_url_env="AZURE_OPENAI_ENDPOINT",
    base_url_hint="AZURE_OPENAI_ENDPOINT (https://RESOURCE.openai.azure.com)",
    auth_header="api-key",
    auth_scheme="",
    endpoints=("/v1/chat/completions", "/v1/responses", "/chat/completions", "/responses"),
    file_purposes=("batch", "fine-tune", "assistants"),
    max_requests=100_000,
    file_ttl_seconds=14 * 24 * 3600,
    docs_note="model = deployment name; statuses compared case-insensitively; "
    '"" file ids read as none',
)
