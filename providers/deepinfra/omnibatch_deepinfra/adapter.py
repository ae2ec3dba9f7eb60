"""DeepInfra batch adapter: the OpenAI-compatible base configured by DeepInfra's facts."""

from __future__ import annotations

from omnibatch.plugin.openai_compat import OpenAICompatAdapter
from omnibatch_deepinfra.facts import FACTS

__all__ = ["DeepInfraAdapter"]


class DeepInfraAdapter(OpenAICompatAdapter):
    """DeepInfra's ``/v1/openai/batches`` over ``/v1/openai/files``."""

    facts = FACTS
