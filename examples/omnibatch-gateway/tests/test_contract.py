"""The omnibatch contract suite: every lifecycle scenario, sync and async, against the
gateway's emulator dialect (in process and over a 127.0.0.1 socket)."""

from __future__ import annotations

import pytest
from omnibatch.testing import ContractHarness, ProviderContract


class TestGatewayContract(ProviderContract):
    provider = "gateway"
    model = "gw-small-1"

    # A scenario of the gateway's own, with the suite's harness: labels survive a round trip.
    @pytest.mark.parametrize("mode", ["sync", "async"])
    def test_labels_round_trip(self, harness: ContractHarness, mode: str) -> None:
        driver = harness.driver(mode)
        batch = driver.submit(harness.requests(2), metadata={"team": "search"})
        assert driver.retrieve(batch.id).metadata["team"] == "search"
