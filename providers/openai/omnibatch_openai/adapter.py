"""OpenAI Batch API adapter: the OpenAI-compatible base configured by OpenAI's facts.

Wire facts (providers.md §1, in :mod:`omnibatch_openai.facts`): upload ``POST /files``
(multipart ``purpose=batch``), create ``POST /batches``, retrieve, list with
``limit``/``after``, cancel; results in an output file (successes) and an error file
(failures, incl. ``batch_expired`` / ``batch_cancelled`` lines).
"""

from __future__ import annotations

from omnibatch.plugin.lines import parse_usage
from omnibatch.plugin.openai_compat import OpenAICompatAdapter
from omnibatch_openai.facts import FACTS

__all__ = ["OpenAIAdapter", "parse_usage"]


class OpenAIAdapter(OpenAICompatAdapter):
    """OpenAI's ``/v1/batches`` over ``/v1/files``."""

    facts = FACTS
