"""OpenAI's Files + Batch API, for the omnibatch emulator (mounted at ``/openai``).

Point the official SDK at it with ``OpenAI(base_url="http://HOST:PORT/openai/v1")``.
"""

from __future__ import annotations

from omnibatch.plugin.openai_dialect import OpenAICompatDialect
from omnibatch_openai.facts import FACTS

__all__ = ["OpenAIDialect"]


class OpenAIDialect(OpenAICompatDialect):
    """The OpenAI Files and Batch endpoints (``/v1/files*``, ``/v1/batches*``)."""

    facts = FACTS
    bad_key_message = (
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
