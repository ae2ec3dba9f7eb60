"""The shared provider contract suite, run for Cohere against its emulator dialect."""

from __future__ import annotations

from omnibatch.testing import ProviderContract


class TestCohereContract(ProviderContract):
    provider = "cohere"
    model = "command-a-03-2025"
