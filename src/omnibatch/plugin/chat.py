"""Reading OpenAI-style chat bodies to translate them into another provider's request shape.

Part of the plugin API (versioned by ``omnibatch.plugin.PLUGIN_API_VERSION``): a translation
walks ``messages`` with :func:`messages`, reads content parts, tools and stop sequences with
the helpers here, and raises :func:`fail` (an :class:`Invalid` carrying a :class:`Problem`)
for what it cannot translate; ``omnibatch.plugin.request_issues`` and
``omnibatch.plugin.invalid_request`` report those problems from an adapter.
"""

from __future__ import annotations

from omnibatch._chat import (
    ROLES,
    Invalid,
    Problem,
    add_tool_answer,
    call_arguments,
    content_parts,
    data_url,
    fail,
    function_tools,
    messages,
    read_part,
    require_turns,
    stop_sequences,
    tool_choice,
)

__all__ = [
    "ROLES",
    "Invalid",
    "Problem",
    "add_tool_answer",
    "call_arguments",
    "content_parts",
    "data_url",
    "fail",
    "function_tools",
    "messages",
    "read_part",
    "require_turns",
    "stop_sequences",
    "tool_choice",
]
