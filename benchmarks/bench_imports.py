"""Cold start: ``from omnibatch import BatchClient`` and ``omnibatch --help`` beside the imports
of omnibatch's own dependencies and of the peers.

    python benchmarks/bench_imports.py [--runs 10]

Each command runs ``--runs`` times in a fresh process (alternating, so drift hits all alike);
the table shows the median wall time from spawn to exit, and that time minus a bare
``python -c pass`` (interpreter start-up). The peers run in ``benchmarks/.venv-peer``
(``bench_pipeline.py --setup-peer`` creates it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import WORK, machine, median, peer_env, peer_python


def commands() -> dict[str, tuple[list[str], dict[str, str] | None]]:
    python = sys.executable
    cli = shutil.which("omnibatch", path=str(Path(python).parent)) or "omnibatch"
    # No provider plugins but ours, no user config: measure the code, not the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIBATCH_")}
    found = {
        "python -c pass": ([python, "-c", "pass"], env),
        "import httpx, pydantic, pluggy": ([python, "-c", "import httpx, pydantic, pluggy"], env),
        # `import pydantic` defers BaseModel; this is the dependency as omnibatch uses it.
        "import httpx, pluggy; from pydantic import BaseModel": (
            [python, "-c", "import httpx, pluggy; from pydantic import BaseModel"],
            env,
        ),
        "from omnibatch import BatchClient": (
            [python, "-c", "from omnibatch import BatchClient"],
            env,
        ),
        "omnibatch --help": ([cli, "--help"], env),
    }
    peer = peer_python()
    if peer.exists():
        found["peer: python -c pass"] = ([str(peer), "-c", "pass"], peer_env())
        found["peer: import batchlane"] = ([str(peer), "-c", "import batchlane"], peer_env())
        found["peer: import litellm"] = ([str(peer), "-c", "import litellm"], peer_env())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cmds = commands()
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for argv, env in cmds.values():  # warm the page cache once
        subprocess.run(argv, env=env, capture_output=True, check=True)
    for _ in range(args.runs):
        for name, (argv, env) in cmds.items():
            start = time.perf_counter()
            subprocess.run(argv, env=env, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    medians = {name: median(values) for name, values in times.items()}
    base = medians["python -c pass"]
    peer_base = medians.get("peer: python -c pass", base)
    lines = [
        f"machine: {json.dumps(machine())}",
        "",
        f"| command (median of {args.runs}, fresh process) | wall (ms) | minus start-up (ms) |",
        "|---|---:|---:|",
    ]
    for name, value in medians.items():
        start = peer_base if name.startswith("peer:") else base
        lines.append(f"| `{name}` | {value * 1000:.0f} | {(value - start) * 1000:.0f} |")
    ours = medians["from omnibatch import BatchClient"] - medians["import httpx, pydantic, pluggy"]
    with_model = (
        medians["from omnibatch import BatchClient"]
        - medians["import httpx, pluggy; from pydantic import BaseModel"]
    )
    lines.append("")
    lines.append(
        f"`from omnibatch import BatchClient` minus `import httpx, pydantic, pluggy`: "
        f"{ours * 1000:.0f} ms (target < 50 ms); minus `import httpx, pluggy; from pydantic "
        f"import BaseModel`: {with_model * 1000:.0f} ms; `omnibatch --help`: "
        f"{medians['omnibatch --help'] * 1000:.0f} ms (target < 300 ms)"
    )
    WORK.mkdir(exist_ok=True)
    (WORK / "imports.json").write_text(json.dumps({"medians_s": medians, "runs": times}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
