"""The shared provider contract suite, run for Gemini in both input modes.

Two deviations, both Gemini's documented behaviour rather than gaps:

- An expired Gemini batch has "no results to retrieve" (batch-mode docs): the expiry scenario
  asserts that every request comes back ``expired`` instead of keeping the ones that ran.
- An inline batch stores no files, so the inline run's clean-up scenario asserts that
  ``cleanup()`` finds nothing to delete (the file-mode run deletes the input and result files).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from omnibatch import BatchStatus, ResultStatus
from omnibatch.testing import ProviderContract
from omnibatch.testing.contract import MODES, ContractHarness


class _Gemini(ProviderContract):
    provider = "gemini"
    model = "gemini-2.5-flash"

    @pytest.mark.parametrize("mode", MODES)
    def test_expiry_keeps_partial_results(self, harness: ContractHarness, mode: str) -> None:
        driver = harness.driver(mode)
        lines = harness.requests(6)
        batch = driver.submit(lines)
        config = self.emulator_config()
        harness.clock.advance(config.validating_seconds + 2.5 / config.requests_per_second)
        assert harness.emulator.snapshot(batch.id).done == 2  # two requests had run
        harness.emulator.expire(batch.id)
        done = driver.wait(batch.id)
        assert done.status is BatchStatus.EXPIRED, done.provider_status
        assert done.request_counts.expired == 6 - done.request_counts.succeeded
        ids = [str(line["custom_id"]) for line in lines]
        results = driver.results(batch.id, expected_ids=ids)
        assert sorted(r.custom_id for r in results) == sorted(ids)
        assert {r.status for r in results} == {ResultStatus.EXPIRED}


class TestGeminiFileContract(_Gemini):
    create_options: ClassVar[dict[str, Any]] = {"input_mode": "file"}


class TestGeminiInlineContract(_Gemini):
    create_options: ClassVar[dict[str, Any]] = {"input_mode": "inline"}

    @pytest.mark.parametrize("mode", MODES)
    def test_cleanup_deletes_the_batch_files(self, harness: ContractHarness, mode: str) -> None:
        driver = harness.driver(mode)
        batch = driver.submit(harness.requests(3, failing=[0]))
        done = driver.wait(batch.id)
        assert done.input_file_ids == () and done.output_file_ids == ()
        assert len(driver.results(batch.id)) == 3
        assert driver.cleanup(batch.id) == []
        assert harness.emulator.engine.files == {}
