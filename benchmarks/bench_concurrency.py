"""Many batches at once: one ``AsyncBatchClient`` tracks 1,000 batches on the emulator.

    python benchmarks/bench_concurrency.py [--batches 1000] [--speed 0.02]

Starts ``omnibatch emulator serve --port 0 --speed SPEED`` in its own process (so the server's
work is not counted as the client's), then, in this process and one event loop:

1. submits every batch (validate, upload, create; ``--concurrency`` at a time);
2. waits for all of them with ``asyncio.gather(client.wait(...))``, the default poll policy;
3. downloads every batch's results (``client.results``).

HTTP calls are counted on the client side with an httpx event hook; client CPU is
``time.process_time()`` of this process during the waiting phase. With the emulator's default
timings a batch of 100 requests takes 1.25 simulated seconds; ``--speed 0.02`` stretches that to
about a minute of wall time, so that polling, not submitting, is what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import WORK, machine

from omnibatch import AsyncBatchClient, Batch, PollPolicy
from omnibatch_openai.adapter import OpenAIAdapter


def start_emulator(speed: float) -> tuple[subprocess.Popen[str], str]:
    cli = shutil.which("omnibatch", path=str(Path(sys.executable).parent)) or "omnibatch"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIBATCH_")}
    proc = subprocess.Popen(
        [cli, "emulator", "serve", "--port", "0", "--speed", str(speed), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        info = json.loads(line)
        if info.get("dialect") == "openai":
            return proc, info["base_url"]
    raise RuntimeError("the emulator did not print its OpenAI base URL")


def kind(request: httpx.Request) -> str:
    path = request.url.path
    if request.method == "POST" and path.endswith("/files"):
        return "upload"
    if request.method == "POST" and path.endswith("/batches"):
        return "create"
    if request.method == "GET" and "/batches/" in path:
        return "poll"
    if request.method == "GET" and path.endswith("/content"):
        return "download"
    return f"{request.method} other"


async def run(args: argparse.Namespace, base_url: str, source: Path) -> dict[str, Any]:
    calls: Counter[str] = Counter()

    async def count(request: httpx.Request) -> None:
        calls[kind(request)] += 1

    http = httpx.AsyncClient(
        event_hooks={"request": [count]},
        timeout=60.0,
        limits=httpx.Limits(max_connections=args.connections, max_keepalive_connections=100),
    )
    adapter = OpenAIAdapter(api_key="bench", base_url=base_url)
    poll = PollPolicy()
    async with http, AsyncBatchClient(adapter=adapter, http_client=http, poll=poll) as client:
        gate = asyncio.Semaphore(args.concurrency)

        async def submit(index: int) -> Batch:
            async with gate:
                return await client.submit(source, metadata={"bench": str(index)})

        t0 = time.perf_counter()
        batches = await asyncio.gather(*(submit(i) for i in range(args.batches)))
        submitted = time.perf_counter() - t0
        submit_calls = dict(calls)

        calls.clear()
        cpu0, t1 = time.process_time(), time.perf_counter()
        ended = await asyncio.gather(*(client.wait(b.id) for b in batches))
        waited, cpu = time.perf_counter() - t1, time.process_time() - cpu0
        polls = calls["poll"]

        calls.clear()
        t2 = time.perf_counter()

        async def results(batch: Batch) -> int:
            async with gate:
                return sum(1 for _ in await client.results(batch.id))

        counts = await asyncio.gather(*(results(b) for b in ended))
        collected = time.perf_counter() - t2
    statuses = Counter(b.status.value for b in ended)
    return {
        "batches": args.batches,
        "requests_per_batch": args.requests_per_batch,
        "emulator_speed": args.speed,
        "poll_policy": vars(poll) if hasattr(poll, "__dict__") else str(poll),
        "submit_wall_s": submitted,
        "submit_calls": submit_calls,
        "wait_wall_s": waited,
        "wait_cpu_s": cpu,
        "polls": polls,
        "polls_per_batch": polls / args.batches,
        "cpu_ms_per_poll": 1000 * cpu / max(polls, 1),
        "results_wall_s": collected,
        "results_calls": dict(calls),
        "results_lines": sum(counts),
        "statuses": dict(statuses),
        "http_calls_per_batch": (sum(submit_calls.values()) + polls + sum(calls.values()))
        / args.batches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--requests-per-batch", type=int, default=100)
    parser.add_argument(
        "--speed", type=float, default=0.02, help="emulator simulated seconds per wall second"
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, help="batches submitted (and collected) at once"
    )
    parser.add_argument("--connections", type=int, default=100, help="httpx connection pool")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    source = WORK / f"concurrency-{args.requests_per_batch}.jsonl"
    with open(source, "wb") as fh:
        for i in range(args.requests_per_batch):
            fh.write(
                orjson.dumps(
                    {
                        "custom_id": f"r-{i}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {
                            "model": "gpt-4o-mini",
                            "max_tokens": 16,
                            "messages": [{"role": "user", "content": f"question {i}"}],
                        },
                    }
                )
                + b"\n"
            )
    proc, base_url = start_emulator(args.speed)
    try:
        report = asyncio.run(run(args, base_url, source))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    report["machine"] = machine()
    (WORK / "concurrency.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
