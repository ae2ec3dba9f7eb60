"""Large inputs: prepare (validate + translate + split) and merge + join, against the floor.

    python benchmarks/bench_pipeline.py --sizes 100000,1000000

For each size N it makes the workloads with ``../shared/bench/make_inputs.py`` (requests and
shuffled results, cached in ``benchmarks/.work/``), then runs every stage in its own process,
measured from outside (wall time from spawn to exit, peak RSS from ``wait4``):

* ``floor (requests)`` / ``floor (results)``: a bare orjson loop that parses each line and
  dumps it again, the JSON floor the targets are stated against;
* ``prepare``: OpenAI batch lines validated, translated to Mistral lines and split into parts of
  ``--max-requests-per-batch`` (default 50,000, as OpenAI), duplicate ids checked;
* ``validate``: the same checks and split plan, writing nothing;
* ``merge, 1 part``: the results joined to the N ids of one batch (Mistral takes up to 1M
  requests per batch) and written in input order;
* ``merge, K parts``: the same results split by part, as a job of K batches gets them;
* ``batchlane plan`` (the peer): batchlane's dry-run planner on the same requests, in its own
  virtualenv (``--setup-peer`` creates ``benchmarks/.venv-peer``).

Stages alternate floor / ours, ``--repeat`` times; the table shows the best wall time and the
largest peak RSS of each, and ratios to the floor of the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from _common import (  # the harness imports nothing big: its memory would show in children
    MAKE_INPUTS,
    STAGES,
    WORK,
    Run,
    machine,
    peer_env,
    peer_python,
    run_child,
    setup_peer,
)


def workloads(size: int, make_inputs: Path) -> tuple[Path, Path]:
    folder = WORK / str(size)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in ("requests", "results"):
        path = folder / f"{kind}.jsonl"
        if not path.exists():
            if not make_inputs.exists():
                sys.exit(f"{make_inputs} not found: pass --make-inputs PATH")
            print(f"making {path} ...", file=sys.stderr)
            tmp = path.with_suffix(".tmp")
            subprocess.run(
                [sys.executable, str(make_inputs), kind, str(size), str(tmp)], check=True
            )
            tmp.replace(path)
        paths.append(path)
    return paths[0], paths[1]


def merge_specs(size: int, parts_dir: Path, results: Path) -> tuple[Path, Path, int]:
    """Spec files for the merge stages (made once, in a child process, from the parts
    ``prepare`` wrote): one part holding every id, and one results file per part holding that
    part's results, still shuffled."""
    folder = WORK / str(size)
    count = len(list(parts_dir.glob("part-*.ids")))
    one = folder / "merge-one.json"
    many = folder / f"merge-{count}-parts.json"
    if not (one.exists() and many.exists()):
        stage("split-results", str(parts_dir), str(results), str(folder))
    return one, many, count


def stage(
    name: str, *args: str, python: str = sys.executable, env: dict[str, str] | None = None
) -> Run:
    return run_child([python, str(STAGES), name, *args], env=env)


def best(runs: list[Run]) -> Run:
    fastest = min(runs, key=lambda r: r.wall_s)
    return Run(fastest.wall_s, max(r.peak_rss_mb for r in runs), fastest.payload)


def bench_size(size: int, args: argparse.Namespace) -> list[dict[str, object]]:
    requests, results = workloads(size, args.make_inputs)
    folder = WORK / str(size)
    out = folder / "out"
    out.mkdir(exist_ok=True)
    parts_dir = folder / "parts"
    split = str(args.max_requests_per_batch)
    runs: dict[str, list[Run]] = {}

    def record(label: str, run: Run) -> None:
        runs.setdefault(label, []).append(run)
        print(
            f"  {size:>9,} {label:<22} {run.wall_s:8.2f} s {run.peak_rss_mb:8.1f} MB",
            file=sys.stderr,
        )

    specs = None
    for _ in range(args.repeat):
        record("floor (requests)", stage("floor", str(requests), str(out / "floor.jsonl")))
        shutil.rmtree(parts_dir, ignore_errors=True)
        record("prepare", stage("prepare", str(requests), str(parts_dir), split))
        record("validate", stage("validate", str(requests), split))
        if specs is None:
            specs = merge_specs(size, parts_dir, results)
        one, many, count = specs
        record("floor (results)", stage("floor", str(results), str(out / "floor.jsonl")))
        record("merge, 1 part", stage("merge", str(one), str(out / "merged.jsonl")))
        record(f"merge, {count} parts", stage("merge", str(many), str(out / "merged.jsonl")))
    if args.peer and peer_python().exists():
        # The peer is slow: one run, after ours.
        record(
            "batchlane plan",
            stage("peer-plan", str(requests), split, python=str(peer_python()), env=peer_env()),
        )
    rows = []
    floors = {"requests": best(runs["floor (requests)"]), "results": best(runs["floor (results)"])}
    for label, stage_runs in runs.items():
        run = best(stage_runs)
        floor = floors["results" if "merge" in label or "results" in label else "requests"]
        rows.append(
            {
                "size": size,
                "stage": label,
                "wall_s": run.wall_s,
                "peak_rss_mb": run.peak_rss_mb,
                "work_s": run.payload.get("work_s"),
                "x_floor": run.wall_s / floor.wall_s,
                "runs": len(stage_runs),
                "detail": {k: v for k, v in run.payload.items() if k != "work_s"},
            }
        )
    return rows


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| requests | stage | wall (s) | in-process (s) | peak RSS (MB) | x floor (wall) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        work = row["work_s"]
        work_text = f"{work:.2f}" if isinstance(work, float) else "-"
        lines.append(
            f"| {row['size']:,} | {row['stage']} | {row['wall_s']:.2f} | {work_text} | "
            f"{row['peak_rss_mb']:.0f} | {row['x_floor']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="comma-separated request counts (default 100000,1000000)",
    )
    parser.add_argument("--max-requests-per-batch", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each of our stages")
    parser.add_argument(
        "--no-peer", dest="peer", action="store_false", help="skip batchlane's planner"
    )
    parser.add_argument(
        "--setup-peer",
        action="store_true",
        help="create benchmarks/.venv-peer (pip install batchlane litellm)",
    )
    parser.add_argument("--make-inputs", type=Path, default=MAKE_INPUTS)
    args = parser.parse_args()
    if args.setup_peer:
        setup_peer()
    info = machine()
    print(json.dumps(info), file=sys.stderr)
    rows: list[dict[str, object]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows.extend(bench_size(size, args))
    report = {"machine": info, "rows": rows}
    (WORK / "pipeline.json").write_text(json.dumps(report, indent=2))
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(table(rows))


if __name__ == "__main__":
    main()
