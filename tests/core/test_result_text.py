"""``BatchResult.text`` reads the answer from every provider's body shape, so the same user code
gets the text from any provider."""

from __future__ import annotations

import pytest

from omnibatch import BatchClient
from omnibatch._plugins import get_registry
from omnibatch.emulator import Emulator, ManualClock
from omnibatch.models import response_text


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"choices": [{"message": {"role": "assistant", "content": "hi"}}]}, "hi"),
        (
            {
                "choices": [
                    {
                        "message": {
                            "content": [
                                {"type": "text", "text": "a"},
                                {"type": "text", "text": "b"},
                            ]
                        }
                    }
                ]
            },
            "ab",
        ),
        ({"choices": [{"text": "legacy"}]}, "legacy"),
        (
            {
                "output": [
                    {"type": "reasoning", "content": []},
                    {"type": "message", "content": [{"type": "output_text", "text": "r"}]},
                ]
            },
            "r",
        ),
        ({"type": "message", "content": [{"type": "text", "text": "claude"}]}, "claude"),
        ({"candidates": [{"content": {"parts": [{"text": "gem"}, {"text": "ini"}]}}]}, "gemini"),
        ({"object": "list", "data": [{"embedding": [0.1]}]}, None),
        (None, None),
        ({"choices": []}, None),
    ],
)
def test_shapes(body: object, text: str | None) -> None:
    assert response_text(body) == text


@pytest.mark.parametrize("provider", ["openai", "mistral", "anthropic", "gemini"])
def test_same_code_reads_text_from_every_provider(provider: str) -> None:
    emulator = Emulator(clock=ManualClock())
    prefix = get_registry().provider(provider).emulator_prefix
    requests = [
        {
            "custom_id": f"q{i}",
            "body": {
                "model": "some-model",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": f"Hi {i}"}],
            },
        }
        for i in range(3)
    ]
    with BatchClient(
        provider,
        api_key="k",
        base_url="http://e" + prefix,
        transport=emulator.transport(),
        sleep=emulator.advance,
    ) as client:
        batch = client.wait(client.submit(requests).id)
        texts = {r.custom_id: r.text for r in client.results(batch.id)}
    assert set(texts) == {"q0", "q1", "q2"}
    assert all(isinstance(t, str) and t for t in texts.values()), texts
