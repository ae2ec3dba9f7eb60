"""Keys never leave in an exception: the tree redacts them itself (message, attributes, repr,
pickle), whatever the provider echoes back."""

from __future__ import annotations

import pickle
import uuid

import httpx
import pytest

from omnibatch import BatchClient, ProviderStatusError
from omnibatch._exceptions import redact

SECRET = f"sk-live-{uuid.uuid4().hex}"


def _echo(request: httpx.Request) -> httpx.Response:
    """A provider that puts the caller's key everywhere it can (some real ones do)."""
    token = request.headers.get("authorization", "")
    return httpx.Response(
        401,
        headers={"x-request-id": f"req_{token}"},
        json={"error": {"message": f"Incorrect API key provided: {token}", "code": token}},
    )


def test_a_key_echoed_by_the_provider_is_nowhere_in_the_exception() -> None:
    client = BatchClient(
        "openai",
        api_key=SECRET,
        base_url="https://provider.test/v1",
        transport=httpx.MockTransport(_echo),
    )
    with client, pytest.raises(ProviderStatusError) as caught:
        client.retrieve("batch_1")
    error = caught.value
    views = [
        str(error),
        repr(error),
        repr(error.body),
        str(error.request_id),
        repr(vars(error)),
        repr(error.args),
        pickle.dumps(error).decode("latin-1"),
    ]
    for view in views:
        assert SECRET not in view, view
    assert "Incorrect API key provided: Bearer ***" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and copy.status_code == 401 and str(copy) == str(error)


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("http://user:hunter2pw@host:8080/v1 failed", "hunter2pw"),
        ("Authorization: Bearer abc.def-ghijkl", "abc.def-ghijkl"),
        ('{"x-api-key": "sk-ant-0123456789"}', "sk-ant-0123456789"),
        ("x-goog-api-key: AIzaSyA0123456789", "AIzaSyA0123456789"),
        ("GET https://g.test/v1beta/batches?key=AIzaSyA0123456789&x=1", "AIzaSyA0123456789"),
    ],
)
def test_credentials_in_text_are_redacted(text: str, hidden: str) -> None:
    assert hidden not in redact(text) and "***" in redact(text)
