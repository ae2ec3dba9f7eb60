"""Shared helpers of the benchmark scripts: paths, the machine description, child processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
PEER_VENV = HERE / ".venv-peer"
MAKE_INPUTS = REPO.parent / "shared" / "bench" / "make_inputs.py"
STAGES = HERE / "_stages.py"


def peer_python() -> Path:
    return PEER_VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def setup_peer() -> None:
    """Create ``benchmarks/.venv-peer`` with batchlane and litellm (PyPI), once."""
    if peer_python().exists():
        return
    print(f"creating {PEER_VENV} (batchlane, litellm) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run(
        [str(peer_python()), "-m", "pip", "install", "--quiet", "batchlane", "litellm"],
        check=True,
    )


def peer_env() -> dict[str, str]:
    # LiteLLM fetches a price map from GitHub at import and retries with sleeps when offline;
    # its local copy is what it falls back to anyway, so use it and time the code, not retries.
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    if shutil.which("free"):
        out = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()
        if len(out) > 1:
            memory = out[1].split()[1]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_1min_at_start": f"{load:.2f}",
    }


@dataclass
class Run:
    """One child process: wall time (spawn to exit), peak RSS, what it printed."""

    wall_s: float
    peak_rss_mb: float
    payload: dict[str, Any]


def run_child(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 3600) -> Run:
    """Run ``argv`` and measure it from outside: peak RSS comes from ``wait4`` for this very
    child (Linux reports kilobytes)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or wall > timeout:
            err.seek(0)
            raise RuntimeError(
                f"{' '.join(argv)} failed ({proc.returncode}):\n{err.read().decode()[-3000:]}"
            )
    text = out.decode().strip().splitlines()
    payload = json.loads(text[-1]) if text else {}
    # The child's own figure when it gives one (see _stages.peak_rss_mb); wait4's ru_maxrss
    # otherwise, which on Linux is at least the parent's peak at fork time.
    peak = payload.get("peak_rss_mb") or usage.ru_maxrss / 1024
    return Run(wall, peak, payload)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
