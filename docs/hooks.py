"""mkdocs hook: a generated table that no longer matches the code is a build warning, so
``mkdocs build --strict`` fails on a stale page (regenerate with
``python -m omnibatch._docs_tables``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omnibatch._docs_tables import stale_pages

log = logging.getLogger("mkdocs.hooks.omnibatch")


def on_pre_build(config: Any) -> None:
    for page in stale_pages(Path(config["docs_dir"])):
        log.warning("%s: a generated table is stale; run `python -m omnibatch._docs_tables`", page)
