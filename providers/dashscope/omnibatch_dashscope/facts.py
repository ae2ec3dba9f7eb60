"""Alibaba Model Studio (DashScope) OpenAI-compatible batch API as data (providers.md §15.4):
international and China base URLs, 500 MB input files, the ``24h`` window, and the test
model ``batch-test-model`` at ``/v1/chat/ds-test``."""

from __future__ import annotations

from omnibatch.plugin.openai_compat import OpenAICompatFacts

__all__ = ["CHINA_BASE_URL", "FACTS", "INTERNATIONAL_BASE_URL"]

INTERNATIONAL_BASE_URL = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
CHINA_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"

FACTS = OpenAICompatFacts(
    name="dashscope",
    display_name="Alibaba DashScope",
    base_url=INTERNATIONAL_BASE_URL,
    api_prefix="/compatible-mode/v1",
    api_key_env="DASHSCOPE_API_KEY",
    base_url_env="DASHSCOPE_BASE_URL",
    endpoints=("/v1/chat/completions", "/v1/embeddings", "/v1/chat/ds-test"),
    max_bytes=500 * 1024 * 1024,
    docs_note='region = "cn" selects the China base URL; 50,000 requests per file (older docs)',
)
