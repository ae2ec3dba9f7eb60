"""The shared provider contract suite, run for Anthropic against its emulator dialect."""

from __future__ import annotations

from omnibatch.testing import ProviderContract


class TestAnthropicContract(ProviderContract):
    provider = "anthropic"
    model = "claude-sonnet-4-5"
