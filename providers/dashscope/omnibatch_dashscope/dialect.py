"""DashScope's Files + Batch API for the omnibatch emulator (mounted at ``/dashscope``).

Point the ``openai`` SDK at it with
``OpenAI(base_url="http://HOST:PORT/dashscope/compatible-mode/v1")``.
"""

from __future__ import annotations

from omnibatch.plugin.openai_dialect import OpenAICompatDialect
from omnibatch_dashscope.facts import FACTS

__all__ = ["DashScopeDialect"]


class DashScopeDialect(OpenAICompatDialect):
    """DashScope's ``/compatible-mode/v1/files*`` and ``/compatible-mode/v1/batches*``."""

    facts = FACTS
