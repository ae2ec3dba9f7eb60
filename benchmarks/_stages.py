"""One benchmark stage per process: ``python _stages.py STAGE ARGS...``.

Each stage prints one JSON object (its in-process time, ``work_s``) on stdout; the parent
(``bench_pipeline.py``) measures the process's wall time and peak RSS from outside. The floors
are the bare loops the targets are stated against: parse each line with orjson, dump it again.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def floor(source: str, out: str) -> None:
    """The JSON floor: ``for line in f: out.write(orjson.dumps(orjson.loads(line)))``."""
    import orjson

    loads, dumps, newline = orjson.loads, orjson.dumps, orjson.OPT_APPEND_NEWLINE
    with open(source, "rb") as fh, open(out, "wb") as sink:
        write = sink.write
        for line in fh:
            write(dumps(loads(line), option=newline))


def prepare(source: str, workdir: str, max_requests: str) -> dict[str, object]:
    """Validate OpenAI lines, translate them to Mistral lines, split into part files."""
    from omnibatch.pipeline import prepare_input
    from omnibatch_mistral.adapter import MistralAdapter

    prepared = prepare_input(
        source, MistralAdapter(api_key="bench"), Path(workdir), max_requests=int(max_requests)
    )
    return {"parts": len(prepared.parts), "requests": prepared.total}


def validate(source: str, max_requests: str) -> dict[str, object]:
    """Every check of ``prepare`` and the split plan, writing nothing."""
    from omnibatch.pipeline import validate_input
    from omnibatch_mistral.adapter import MistralAdapter

    report = validate_input(source, MistralAdapter(api_key="bench"), max_requests=int(max_requests))
    assert report.ok, report.problems[:3]
    return {"parts": len(report.parts), "requests": report.total}


def merge(spec: str, out: str) -> dict[str, object]:
    """Join every part's (shuffled) results to its ids and write one output in input order.
    ``spec`` is a JSON file: a list of ``{"ids": path, "results": [paths]}``."""
    from omnibatch._lifecycle import FetchedSource
    from omnibatch.adapter import ResultSource
    from omnibatch.results import PartResults, write_output
    from omnibatch_openai.adapter import OpenAIAdapter

    adapter = OpenAIAdapter(api_key="bench")
    parts = [
        PartResults(
            adapter,
            f"batch_{index}",
            Path(item["ids"]),
            [
                FetchedSource(ResultSource("output", name=f"output file {index}"), Path(path))
                for path in item["results"]
            ],
        )
        for index, item in enumerate(json.loads(Path(spec).read_text()))
    ]
    summary = write_output(parts, Path(out))
    assert summary.missing == 0 and summary.unexpected == 0, summary
    return {"parts": len(parts), "requests": summary.total}


def peer_plan(source: str, max_requests: str) -> dict[str, object]:
    """batchlane's dry-run planner on the same lines (run with the peer venv's Python): read
    the JSONL as its CLI does, build its ``BatchLine`` objects, call ``batchlane.plan``."""
    import batchlane  # type: ignore[import-not-found]

    lines = []
    with open(source, encoding="utf-8") as fh:
        for raw in fh:
            row = json.loads(raw)
            body = row["body"]
            params = {k: v for k, v in body.items() if k not in ("model", "messages")}
            lines.append(
                batchlane.BatchLine(
                    row["custom_id"], "mistral/" + body["model"], body["messages"], params
                )
            )
    plan = batchlane.plan(lines, max_requests_per_batch=int(max_requests))
    return {"parts": plan.n_chunks, "requests": len(lines)}


def split_results(parts_dir: str, results: str, folder: str) -> dict[str, object]:
    """Setup, not measured: spec files for the merge stages, made from the parts ``prepare``
    wrote (here, so that the harness process stays small; see ``peak_rss_mb``)."""
    import orjson

    ids_files = sorted(Path(parts_dir).glob("part-*.ids"))
    out = Path(folder)
    all_ids = out / "all.ids"
    with open(all_ids, "wb") as sink:
        for path in ids_files:
            sink.write(path.read_bytes())
    part_of: dict[str, int] = {}
    for index, path in enumerate(ids_files):
        for custom_id in path.read_text().splitlines():
            part_of[custom_id] = index
    split_dir = out / f"results-by-{len(ids_files)}-parts"
    split_dir.mkdir(exist_ok=True)
    names = [split_dir / f"results-{i:05d}.jsonl" for i in range(len(ids_files))]
    sinks = [open(name, "wb") for name in names]  # noqa: SIM115 - closed below
    try:
        with open(results, "rb") as fh:
            for line in fh:
                sinks[part_of[orjson.loads(line)["custom_id"]]].write(line)
    finally:
        for sink in sinks:
            sink.close()
    (out / "merge-one.json").write_text(json.dumps([{"ids": str(all_ids), "results": [results]}]))
    (out / f"merge-{len(ids_files)}-parts.json").write_text(
        json.dumps(
            [{"ids": str(i), "results": [str(n)]} for i, n in zip(ids_files, names, strict=True)]
        )
    )
    return {"parts": len(ids_files)}


def peak_rss_mb() -> float | None:
    """This process's own peak RSS. Not ``ru_maxrss``: on Linux it starts from the parent's
    peak at fork (exec keeps it), so a big parent would show in every child."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


STAGES = {
    "split-results": split_results,
    "floor": floor,
    "prepare": prepare,
    "validate": validate,
    "merge": merge,
    "peer-plan": peer_plan,
}


def main() -> None:
    stage, *args = sys.argv[1:]
    start = time.perf_counter()
    extra = STAGES[stage](*args) or {}
    work = time.perf_counter() - start
    print(json.dumps({"work_s": work, "peak_rss_mb": peak_rss_mb(), **extra}))


if __name__ == "__main__":
    main()
