"""Groq batch adapter: the OpenAI-compatible base configured by Groq's facts."""

from __future__ import annotations

from omnibatch.plugin.openai_compat import OpenAICompatAdapter
from omnibatch_groq.facts import FACTS

__all__ = ["GroqAdapter"]


class GroqAdapter(OpenAICompatAdapter):
    """Groq's ``/openai/v1/batches`` over ``/openai/v1/files``."""

    facts = FACTS
