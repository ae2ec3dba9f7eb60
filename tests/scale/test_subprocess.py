"""Real processes: bounded memory on a large generated input, and input from stdin."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import omnibatch.results as results_module

from ._gen import request, result, shuffled

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc (Linux)"
)

# Prepares the input for Mistral (translation, duplicate check past the in-memory limit) and
# merges shuffled results for all of it as one part (the on-disk join), printing peak RSS.
CHILD = r"""
import json, sys
from pathlib import Path
from omnibatch._lifecycle import FetchedSource
from omnibatch.adapter import ResultSource
from omnibatch.pipeline import prepare_input
from omnibatch.results import PartResults, write_output
from omnibatch_mistral.adapter import MistralAdapter
from omnibatch_openai.adapter import OpenAIAdapter

def peak_mb():
    # VmHWM, not ru_maxrss: on Linux ru_maxrss starts from the parent's peak (pytest's).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

source, results, work = (Path(a) for a in sys.argv[1:4])
baseline = peak_mb()
prepared = prepare_input(source, MistralAdapter(api_key="k"), work / "parts")
after_prepare = peak_mb()
output = ResultSource("output", name="output file")
parts = [PartResults(OpenAIAdapter(api_key="k"), "b", p.custom_ids_path,
                     [FetchedSource(output, results)]) for p in prepared.parts]
summary = write_output(parts, work / "out.jsonl")
print(json.dumps({"baseline": baseline, "prepare": after_prepare, "merge": peak_mb(),
                  "parts": len(prepared.parts), "total": summary.total,
                  "succeeded": summary.succeeded}))
"""


def workload(directory: Path, count: int) -> tuple[Path, Path]:
    directory.mkdir()
    source = directory / "in.jsonl"
    with open(source, "wb") as fh:
        for i in range(count):
            fh.write(orjson.dumps(request(i)) + b"\n")
    results = directory / "results.jsonl"
    with open(results, "wb") as fh:
        for custom_id in shuffled([f"req-{i}" for i in range(count)]):
            fh.write(orjson.dumps(result(custom_id)) + b"\n")
    return source, results


def run_child(directory: Path, count: int) -> dict[str, float]:
    source, results = workload(directory, count)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(results), str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, float] = json.loads(done.stdout)
    assert (report["parts"], report["total"], report["succeeded"]) == (1, count, count)
    # Every request once: in input order for a part joined in memory, in the order of the
    # results file for one joined on disk (the 250k part).
    with open(results, "rb") as fh:
        result_order = [orjson.loads(line)["custom_id"] for line in fh]
    on_disk = count > results_module.MEMORY_IDS
    expected = result_order if on_disk else [f"req-{i}" for i in range(count)]
    with open(directory / "out.jsonl", "rb") as fh:
        for i, line in enumerate(fh):
            prefix = b'{"custom_id":"%s","status":"succeeded"' % expected[i].encode()
            assert line.startswith(prefix), i
    assert i == count - 1
    return report


def test_memory_stays_flat_from_50k_to_250k_requests(tmp_path: Path) -> None:
    small = run_child(tmp_path / "small", 50_000)
    large = run_child(tmp_path / "large", 250_000)
    # 250k requests are 62 MB of input and 84 MB of results: holding either, or a Python object
    # per request, would show here.
    for stage in ("prepare", "merge"):
        assert large[stage] - large["baseline"] < 64, large
        assert large[stage] - small[stage] < 20, (small, large)


def test_input_can_come_from_stdin(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    with open(source, "wb") as fh:
        for i in range(3000):
            fh.write(orjson.dumps(request(i)) + b"\n")
        fh.write(b'{"custom_id": "req-7", "body": {"model": "gpt-4o-mini"}}\n')
    code = (
        "import sys; from pathlib import Path\n"
        "from omnibatch import InputValidationError\n"
        "from omnibatch.pipeline import prepare_input\n"
        "from omnibatch_mistral.adapter import MistralAdapter\n"
        "try:\n"
        "    prepare_input('-', MistralAdapter(api_key='k'), Path(sys.argv[1]))\n"
        "except InputValidationError as exc:\n"
        "    print(exc)\n"
    )
    with open(source, "rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "w")],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )
    assert done.returncode == 0, done.stderr
    assert "problem(s) in standard input" in done.stdout
    assert "line 3001, field 'custom_id': duplicate custom_id 'req-7' (first used on line 8)" in (
        done.stdout
    )

    source.write_bytes(b"".join(orjson.dumps(request(i)) + b"\n" for i in range(2500)))
    code = (
        "import sys; from pathlib import Path\n"
        "from omnibatch.pipeline import prepare_input\n"
        "from omnibatch_mistral.adapter import MistralAdapter\n"
        "p = prepare_input('-', MistralAdapter(api_key='k'), Path(sys.argv[1]),\n"
        "                  max_requests=1000)\n"
        "print([part.count for part in p.parts], p.input_hash)\n"
    )
    with open(source, "rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "w2")],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "[1000,",
        "1000,",
        "500]",
        hashlib.sha256(source.read_bytes()).hexdigest(),
    ]
    ids = (tmp_path / "w2" / "part-00002.ids").read_text().splitlines()
    assert ids == [f"req-{i}" for i in range(2000, 2500)]
