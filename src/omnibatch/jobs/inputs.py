"""Job inputs: a re-readable copy of standard input, a copy with the model replaced."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import orjson

__all__ = ["override_model", "spool_stdin"]


def override_model(source: Path, model: str, target: Path) -> Path:
    """Copy the input to ``target`` with every body's model replaced by ``model``. Blank lines
    and lines that are not request objects stay as they are, so validation still names the
    real line numbers."""
    with open(source, "rb") as src, open(target, "wb") as out:
        for line in src:
            try:
                obj = orjson.loads(line) if line.strip() else None
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and isinstance(obj.get("body"), dict):
                obj["body"]["model"] = model
                out.write(orjson.dumps(obj) + b"\n")
            else:
                out.write(line)
    return target


def spool_stdin(directory: Path) -> Path:
    """Copy standard input to a file under ``directory`` (a job needs a re-readable input)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="stdin-", suffix=".jsonl", dir=directory)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out)
    return Path(name)
