"""The shared provider contract suite, run for Fireworks against its emulator dialect."""

from __future__ import annotations

from omnibatch.testing import ProviderContract


class TestFireworksContract(ProviderContract):
    provider = "fireworks"
    model = "accounts/fireworks/models/llama-v3p1-8b-instruct"
    create_options = {"account_id": "contract-account"}
