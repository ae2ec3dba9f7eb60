"""Reading OpenAI-style result lines (``{"custom_id", "response", "error"}``).

Part of the plugin API (versioned by ``omnibatch.plugin.PLUGIN_API_VERSION``). An adapter
reads a line with its own rules into a :data:`Line` (:func:`split`, :func:`line_error` and
:func:`http_failure` help), then :func:`batch_result` and :func:`record_output_line` turn it
into a ``BatchResult`` or the merge's output line the same way for every provider.
"""

from __future__ import annotations

from omnibatch._openai_lines import (
    Line,
    batch_result,
    error_dict,
    file_sources,
    http_failure,
    line_error,
    output_line,
    parse_usage,
    record_output_line,
    split,
)

__all__ = [
    "Line",
    "batch_result",
    "error_dict",
    "file_sources",
    "http_failure",
    "line_error",
    "output_line",
    "parse_usage",
    "record_output_line",
    "split",
]
