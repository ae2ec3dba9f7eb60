"""DeepInfra's Files + Batch API for the omnibatch emulator (mounted at ``/deepinfra``).

Point the ``openai`` SDK at it with ``OpenAI(base_url="http://HOST:PORT/deepinfra/v1/openai")``.
"""

from __future__ import annotations

from omnibatch.plugin.openai_dialect import OpenAICompatDialect
from omnibatch_deepinfra.facts import FACTS

__all__ = ["DeepInfraDialect"]


class DeepInfraDialect(OpenAICompatDialect):
    """DeepInfra's ``/v1/openai/files*`` and ``/v1/openai/batches*``."""

    facts = FACTS
