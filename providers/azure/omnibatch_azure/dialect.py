"""Azure OpenAI's Files + Batch API for the omnibatch emulator (mounted at ``/azure``).

Serves the v1 paths (``/openai/v1/...``) and the dated ones (``/openai/...?api-version=``)
with the ``api-key`` header or an ``Authorization: Bearer`` token. Point the SDK at it with
``AzureOpenAI(azure_endpoint="http://HOST:PORT/azure", api_version="2024-10-21", api_key=...)``.
"""

from __future__ import annotations

import httpx

from omnibatch.plugin import HTTPErrorResponse, bearer_token
from omnibatch.plugin.openai_dialect import OpenAICompatDialect
from omnibatch_azure.facts import FACTS

__all__ = ["AzureDialect"]


class AzureDialect(OpenAICompatDialect):
    """Azure OpenAI's ``/openai[/v1]/files*`` and ``/openai[/v1]/batches*``."""

    facts = FACTS
    bad_key_message = (
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API endpoint "
        "for your resource."
    )

    def api_path(self, request: httpx.Request, path: str) -> str | None:
        found = super().api_path(request, path)
        if found is not None or not path.startswith("/openai/"):
            return found
        if not request.url.params.get("api-version"):  # the dated API needs its version
            raise HTTPErrorResponse(self.error_response(404, "Resource not found", code="404"))
        return path.removeprefix("/openai")

    def request_key(self, request: httpx.Request) -> str | None:
        return request.headers.get("api-key") or bearer_token(request)
