"""Result downloads are streamed to disk and resume after a truncated transfer, in process and
over a real socket."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibatch import BatchClient, BatchStatus, ResultStatus
from omnibatch.emulator import Emulator, EmulatorConfig, FaultPlan, FaultRule, ManualClock, serve


def requests(n: int) -> list[dict[str, object]]:
    return [
        {
            "custom_id": f"r{i}",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x " * 200}]},
        }
        for i in range(n)
    ]


def _truncating_plan() -> FaultPlan:
    return FaultPlan(rules=[FaultRule(route="GET */content", kind="truncate", times=1)], seed=1)


def test_truncated_download_resumes_in_process(tmp_path: Path) -> None:
    emulator = Emulator(config=EmulatorConfig(faults=_truncating_plan()), clock=ManualClock())
    with BatchClient(
        "openai",
        api_key="k",
        base_url="http://e/openai/v1",
        transport=emulator.transport(),
        sleep=emulator.advance,
        workdir=tmp_path,
    ) as client:
        batch = client.wait(client.submit(requests(50)).id)
        assert batch.status is BatchStatus.SUCCEEDED
        results = list(client.results(batch.id))
    assert len(results) == 50 and {r.status for r in results} == {ResultStatus.SUCCEEDED}
    downloads = [r for r in emulator.stats.requests if r.path.endswith("/content")]
    assert len(downloads) == 2, "one truncated transfer, one resumed transfer"
    assert "range" in {k.lower() for k in downloads[1].headers}


@pytest.mark.timeout(60)
def test_truncated_download_resumes_over_a_socket(tmp_path: Path) -> None:
    with serve(port=0, speed=50.0, faults=_truncating_plan()) as server:
        with BatchClient(
            "openai", api_key="k", base_url=server.base_url + "/openai/v1", workdir=tmp_path
        ) as client:
            batch = client.wait(client.submit(requests(50)).id)
            results = list(client.results(batch.id))
        downloads = [r for r in server.emulator.stats.requests if r.path.endswith("/content")]
    assert len({r.custom_id for r in results}) == 50
    assert len(downloads) == 2


def test_a_complete_partial_download_is_finished_not_refused(tmp_path: Path) -> None:
    # A crash between the last write of a download and its rename leaves the whole file as
    # ".part": the provider answers its Range request 416, which means "you have it all".
    emulator = Emulator(clock=ManualClock())
    with BatchClient(
        "openai",
        api_key="k",
        base_url="http://e/openai/v1",
        transport=emulator.transport(),
        sleep=emulator.advance,
        workdir=tmp_path,
    ) as client:
        batch = client.wait(client.submit(requests(5)).id)
        first = list(client.results(batch.id))
        (done,) = tmp_path.glob("download-*.bin")
        done.replace(done.with_suffix(".part"))
        again = list(client.results(batch.id))
    ranged = [r for r in emulator.stats.requests if r.path.endswith("/content")][-1]
    assert "range" in {k.lower() for k in ranged.headers}
    assert [r.custom_id for r in again] == [r.custom_id for r in first] and len(again) == 5
    assert not list(tmp_path.glob("download-*.part"))
