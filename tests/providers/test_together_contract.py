"""The shared provider contract suite, run for Together against its emulator dialect."""

from __future__ import annotations

from omnibatch.testing import ProviderContract


class TestTogetherContract(ProviderContract):
    provider = "together"
    model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
