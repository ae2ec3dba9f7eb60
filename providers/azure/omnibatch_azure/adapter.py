"""Azure OpenAI batch adapter: the OpenAI-compatible base configured by Azure's facts.

The base URL is the resource endpoint (``$AZURE_OPENAI_ENDPOINT``,
``https://RESOURCE.openai.azure.com``) with ``/openai/v1`` added. The API version
(option ``api_version`` or ``$OPENAI_API_VERSION``): unset or ``v1`` uses the v1 paths,
``preview`` adds ``?api-version=preview`` to them, a dated one (``2024-10-21``) uses the
dated paths ``/openai/...?api-version=2024-10-21`` the ``AzureOpenAI`` client calls. The key
goes in ``api-key``; with the option ``auth = "entra"`` it is an Entra ID token sent as
``Authorization: Bearer``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from omnibatch.plugin import ConfigurationError
from omnibatch.plugin.openai_compat import OpenAICompatAdapter
from omnibatch_azure.facts import FACTS

__all__ = ["AzureAdapter"]

API_VERSION_ENV = "OPENAI_API_VERSION"


class AzureAdapter(OpenAICompatAdapter):
    """Azure OpenAI's ``/openai/v1/batches`` (or dated ``/openai/batches``) over its files."""

    facts = FACTS

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        opts = dict(options or {})
        version = opts.get("api_version") or os.environ.get(API_VERSION_ENV) or "v1"
        auth = opts.get("auth", "api-key")
        if auth not in ("api-key", "entra"):
            raise ConfigurationError(f"azure: auth must be 'api-key' or 'entra', got {auth!r}")
        root = (base_url or FACTS.base_url).rstrip("/").removesuffix("/openai/v1")
        root = root.removesuffix("/openai")
        dated = version not in ("v1", "latest", "preview")
        self.api_version: str = str(version)
        self.entra = auth == "entra"
        super().__init__(
            api_key=api_key, base_url=root + ("/openai" if dated else "/openai/v1"), options=opts
        )

    def auth_headers(self) -> dict[str, str]:
        if self.entra and self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        return super().auth_headers()

    def default_query(self) -> list[tuple[str, str]]:
        return [] if self.api_version in ("v1", "latest") else [("api-version", self.api_version)]
