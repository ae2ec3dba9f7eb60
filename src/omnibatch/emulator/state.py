"""Emulator state on disk, so a restarted emulator continues its batches.

A state directory holds ``state.pickle`` (file metadata, batches, the simulated time and
the id generator, rewritten atomically after every change) and ``files/`` (each stored
file's bytes, written once). The pickle is read back with :mod:`pickle`, so a state
directory is as trusted as code: use only directories this emulator wrote.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from omnibatch.emulator.engine import Engine, SimBatch, StoredFile

__all__ = ["StateDir"]

_FORMAT = 1
_STATE = "state.pickle"


def _blob_name(file_id: str) -> str:
    # File ids hold characters no file name may ("files/abc"): name blobs by a hash.
    return hashlib.sha256(file_id.encode("utf-8")).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


class StateDir:
    """Loads an :class:`Engine`'s state from ``directory`` and saves it back."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory)
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._files = self.path / "files"
        self._files.mkdir(exist_ok=True, mode=0o700)
        self._saved_blobs: set[str] = set()

    def __repr__(self) -> str:
        return f"StateDir({str(self.path)!r})"

    def load(self, engine: Engine) -> bool:
        """Restore ``engine`` from the directory; ``False`` when it holds no state yet.
        The clock is moved forward to the saved simulated time (never backwards)."""
        state_file = self.path / _STATE
        if not state_file.exists():
            return False
        with state_file.open("rb") as src:
            state = pickle.load(src)  # trusted: a directory this emulator wrote (see above)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(
                f"{state_file} was not written by this version of the omnibatch emulator; "
                "point --state-dir at an empty directory"
            )
        files: dict[str, StoredFile] = {}
        for meta in state["files"]:  # StoredFile without its bytes, which are in files/
            blob = _blob_name(meta.id)
            files[meta.id] = replace(meta, data=(self._files / blob).read_bytes())
            self._saved_blobs.add(blob)
        batches: dict[str, SimBatch] = state["batches"]
        with engine.lock:
            engine.files = files
            engine.batches = batches
            engine.restore_ids(state["ids"])
            behind = state["now"] - engine.clock.now()
            if behind > 0:
                engine.clock.advance(behind)
        return True

    def save(self, engine: Engine) -> None:
        """Write ``engine``'s state (call it with the engine lock held)."""
        metas = []
        wanted = set()
        for stored in engine.files.values():
            blob = _blob_name(stored.id)
            wanted.add(blob)
            if blob not in self._saved_blobs:
                _write_atomic(self._files / blob, stored.data)
                self._saved_blobs.add(blob)
            metas.append(replace(stored, data=b""))
        state = {
            "format": _FORMAT,
            "now": engine.now(),
            "ids": engine.ids_state(),
            "files": metas,
            "batches": engine.batches,
        }
        _write_atomic(self.path / _STATE, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        for blob in self._saved_blobs - wanted:
            with suppress(OSError):
                (self._files / blob).unlink()
        self._saved_blobs &= wanted
