"""The shared provider contract suite, run for OpenRouter against its emulator dialect."""

from __future__ import annotations

from omnibatch.testing import ProviderContract


class TestOpenRouterContract(ProviderContract):
    provider = "openrouter"
    model = "openai/gpt-4o-mini"
