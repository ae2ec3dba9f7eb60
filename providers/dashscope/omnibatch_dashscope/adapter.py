"""DashScope batch adapter: the OpenAI-compatible base configured by DashScope's facts.

The option ``region = "cn"`` selects the China base URL (``intl``, the default, the
international one); an explicit base URL (a workspace domain) wins over both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omnibatch.plugin import ConfigurationError
from omnibatch.plugin.openai_compat import OpenAICompatAdapter
from omnibatch_dashscope.facts import CHINA_BASE_URL, FACTS, INTERNATIONAL_BASE_URL

__all__ = ["DashScopeAdapter"]

_REGIONS = {"intl": INTERNATIONAL_BASE_URL, "cn": CHINA_BASE_URL}


class DashScopeAdapter(OpenAICompatAdapter):
    """DashScope's ``/compatible-mode/v1/batches`` over ``/compatible-mode/v1/files``."""

    facts = FACTS

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        region = str((options or {}).get("region", "intl"))
        if region not in _REGIONS:
            raise ConfigurationError(
                f"dashscope: region must be one of {sorted(_REGIONS)}, got {region!r}"
            )
        super().__init__(api_key=api_key, base_url=base_url or _REGIONS[region], options=options)
