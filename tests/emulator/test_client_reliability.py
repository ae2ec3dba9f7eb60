"""Clients against a faulty emulator: with a fifth of all requests failing (429, 5xx, resets,
slow answers, truncated downloads, before or after the server acted), 50 batches driven by one
AsyncBatchClient and 10 by BatchClients, all at once, all finish; every result is collected
exactly once and no batch is created twice."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import pytest

from omnibatch import AsyncBatchClient, BatchClient, BatchStatus, PollPolicy, RetryPolicy
from omnibatch.emulator import FaultPlan, serve

# Enough attempts that a 0.2 fault rate cannot exhaust them by chance (0.2**12 per call), short
# delays so the test stays fast.
RETRY = RetryPolicy(max_attempts=12, initial_delay=0.02, max_delay=0.3)
POLL = PollPolicy(initial=0.1, multiplier=1.5, maximum=0.5, max_consecutive_errors=20)
SIZE = 8


def requests(tag: str) -> list[dict[str, object]]:
    return [
        {
            "custom_id": f"{tag}-{i}",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"{tag} {i}"}],
            },
        }
        for i in range(SIZE)
    ]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sixty_concurrent_batches_survive_a_faulty_server(tmp_path: Path) -> None:
    plan = FaultPlan(rate=0.2, seed=7, slow_delay=1.5)
    collected: Counter[str] = Counter()
    finished: list[BatchStatus] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    with serve(port=0, speed=20.0, faults=plan) as server:
        base = server.base_url + "/openai/v1"

        def sync_worker(index: int) -> None:
            try:
                with BatchClient(
                    "openai",
                    api_key="k",
                    base_url=base,
                    retry=RETRY,
                    poll=POLL,
                    timeout=1.0,
                    seed=index,
                    workdir=tmp_path / f"s{index}",
                ) as c:
                    batch = c.wait(c.submit(requests(f"sync{index}")).id)
                    ids = [r.custom_id for r in c.results(batch.id)]
                with lock:
                    finished.append(batch.status)
                    collected.update(ids)
            except BaseException as exc:  # collected and asserted below
                with lock:
                    failures.append(exc)

        async def async_side() -> None:
            async with AsyncBatchClient(
                "openai",
                api_key="k",
                base_url=base,
                retry=RETRY,
                poll=POLL,
                timeout=1.0,
                seed=99,
                workdir=tmp_path / "async",
            ) as c:

                async def one(index: int) -> None:
                    batch = await c.wait((await c.submit(requests(f"async{index}"))).id)
                    ids = [r.custom_id for r in await c.results(batch.id)]
                    finished.append(batch.status)
                    collected.update(ids)

                results = await asyncio.gather(*(one(i) for i in range(50)), return_exceptions=True)
                failures.extend(r for r in results if isinstance(r, BaseException))

        threads = [threading.Thread(target=sync_worker, args=(i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        asyncio.run(async_side())
        for thread in threads:
            thread.join()
        creates = server.emulator.stats.creates["openai"]
        injected = sum(server.emulator.stats.faults.values())
        seen = len(server.emulator.stats.requests)

    assert not failures, failures[:3]
    assert finished == [BatchStatus.SUCCEEDED] * 60
    assert creates == 60, "a batch was created twice"
    expected = {f"sync{i}-{j}" for i in range(10) for j in range(SIZE)}
    expected |= {f"async{i}-{j}" for i in range(50) for j in range(SIZE)}
    assert set(collected) == expected
    assert set(collected.values()) == {1}, "a result was collected twice"
    # The plan really struck about a fifth of all requests.
    assert 0.12 < injected / seen < 0.28, (injected, seen)
