"""The ``omnibatch`` command line: ``omnibatch.cli:main`` is the console script.

Verbs live in ``_jobcmds`` (run, submit, status, wait, results, cancel, list, jobs) and
``_toolcmds`` (validate, convert, providers, emulator serve); ``docs/cli.md`` documents them.
"""

from __future__ import annotations

from omnibatch.cli._app import cli, exit_code_for, main

__all__ = ["cli", "exit_code_for", "main"]
