"""Groq's Files + Batch API for the omnibatch emulator (mounted at ``/groq``).

Point the official SDK at it with ``Groq(base_url="http://HOST:PORT/groq")`` (the SDK adds
``/openai/v1``).
"""

from __future__ import annotations

from omnibatch.plugin.openai_dialect import OpenAICompatDialect
from omnibatch_groq.facts import FACTS

__all__ = ["GroqDialect"]


class GroqDialect(OpenAICompatDialect):
    """Groq's ``/openai/v1/files*`` and ``/openai/v1/batches*``."""

    facts = FACTS
    bad_key_message = "Invalid API Key"
