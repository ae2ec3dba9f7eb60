"""The Anthropic emulator dialect: its wire shapes, auth styles, errors and state rules, seen
through plain httpx over ``Emulator.transport()`` and through ``BatchClient``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from omnibatch import BatchClient, BatchStateError, BatchStatus, ResultStatus
from omnibatch.emulator import Emulator, EmulatorConfig, FaultPlan, FaultRule, ManualClock
from omnibatch_anthropic.dialect import AnthropicDialect

BASE = "http://emulator.test/anthropic"
SDK_HEADERS = {"Authorization": "Bearer k", "anthropic-version": "2026-10-21"}
DOC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def item(custom_id: str, text: str = "Hello", **params: Any) -> dict[str, Any]:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": text}],
        **params,
    }
    return {"custom_id": custom_id, "params": body}


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(
        seed=5,
        validating_seconds=1,
        requests_per_second=1,
        finalizing_seconds=1,
        cancelling_seconds=1,
    )
    return Emulator([AnthropicDialect], config=config, clock=ManualClock())


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=emulator.transport(), base_url=BASE, headers=SDK_HEADERS) as client:
        yield client


def create(http: httpx.Client, *items: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/v1/messages/batches", json={"requests": list(items)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_lifecycle_shapes_and_counts(emulator: Emulator, http: httpx.Client) -> None:
    batch = create(http, item("a"), item("b"), item("c", "[[emulator:error]]"))
    assert set(batch) == {
        "id",
        "type",
        "processing_status",
        "request_counts",
        "ended_at",
        "created_at",
        "expires_at",
        "archived_at",
        "cancel_initiated_at",
        "results_url",
    }
    assert batch["id"].startswith("msgbatch_") and batch["type"] == "message_batch"
    assert batch["processing_status"] == "in_progress" and batch["results_url"] is None
    assert batch["request_counts"] == {
        "processing": 3,
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    emulator.advance(2.5)  # one request has run: the counts still say processing
    running = http.get(f"/v1/messages/batches/{batch['id']}").json()
    assert running["processing_status"] == "in_progress"
    assert running["request_counts"]["processing"] == 3
    emulator.advance(10)
    ended = http.get(f"/v1/messages/batches/{batch['id']}").json()
    assert ended["processing_status"] == "ended" and ended["ended_at"]
    assert ended["request_counts"] == {
        "processing": 0,
        "succeeded": 2,
        "errored": 1,
        "canceled": 0,
        "expired": 0,
    }
    # Absolute, on the host the request came to.
    assert ended["results_url"] == f"{BASE}/v1/messages/batches/{batch['id']}/results"
    results = http.get(ended["results_url"])
    assert results.status_code == 200
    lines = [orjson.loads(x) for x in results.content.splitlines()]
    by_id = {line["custom_id"]: line["result"] for line in lines}
    assert by_id["a"]["type"] == "succeeded"
    message = by_id["a"]["message"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"][0]["type"] == "text" and message["usage"]["output_tokens"] > 0
    assert by_id["c"] == {
        "type": "errored",
        "error": {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": by_id["c"]["error"]["error"]["message"],
            },
            "request_id": by_id["c"]["error"]["request_id"],
        },
    }


def test_both_auth_styles_and_the_error_shape(emulator: Emulator, http: httpx.Client) -> None:
    with httpx.Client(
        transport=emulator.transport(), base_url=BASE, headers=DOC_HEADERS
    ) as documented:
        assert documented.get("/v1/messages/batches").status_code == 200
    with httpx.Client(transport=emulator.transport(), base_url=BASE) as bare:
        missing = bare.get("/v1/messages/batches", headers={"anthropic-version": "2023-06-01"})
        assert missing.status_code == 401
        body = missing.json()
        assert body["type"] == "error" and body["request_id"].startswith("req_")
        assert body["error"] == {
            "type": "authentication_error",
            "message": "x-api-key header is required",
        }
        no_version = bare.get("/v1/messages/batches", headers={"x-api-key": "k"})
        assert no_version.status_code == 400
        assert no_version.json()["error"]["type"] == "invalid_request_error"
        assert "anthropic-version" in no_version.json()["error"]["message"]
    locked = Emulator(
        [AnthropicDialect], config=EmulatorConfig(api_key="right"), clock=ManualClock()
    )
    with httpx.Client(transport=locked.transport(), base_url=BASE, headers=DOC_HEADERS) as wrong:
        denied = wrong.get("/v1/messages/batches")
        assert denied.status_code == 401
        assert denied.json()["error"]["message"] == "invalid x-api-key"
    assert "request-id" in http.get("/v1/messages/batches").headers


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({"requests": []}, 400, "at least 1 item"),
        ({}, 400, "requests: Field required"),
        ({"requests": [item("bad id")]}, 400, "custom_id"),
        ({"requests": [item("a"), item("a")]}, 400, "Duplicate custom_id"),
        ({"requests": [item("a", stream=True)]}, 400, "stream"),
        ({"requests": [{"custom_id": "a"}]}, 400, "params: Field required"),
    ],
)
def test_create_validates_the_envelope(
    http: httpx.Client, payload: dict[str, Any], status: int, fragment: str
) -> None:
    response = http.post("/v1/messages/batches", json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and fragment in error["message"]


def test_bad_params_come_back_errored_when_the_batch_runs(
    emulator: Emulator, http: httpx.Client
) -> None:
    no_max = item("a")
    del no_max["params"]["max_tokens"]
    batch = create(http, no_max, item("b"))
    emulator.complete(batch["id"])
    lines = http.get(f"/v1/messages/batches/{batch['id']}/results").content.splitlines()
    results = {r["custom_id"]: r["result"] for r in map(orjson.loads, lines)}
    assert results["a"]["type"] == "errored"
    assert results["a"]["error"]["error"]["message"] == "max_tokens: Field required"
    assert results["b"]["type"] == "succeeded"


def test_cancel_expire_results_and_state_rules(emulator: Emulator, http: httpx.Client) -> None:
    batch = create(http, *(item(f"r{i}") for i in range(4)))
    early = http.get(f"/v1/messages/batches/{batch['id']}/results")
    assert early.status_code == 400 and "not finished" in early.json()["error"]["message"]
    busy = http.delete(f"/v1/messages/batches/{batch['id']}")
    assert busy.status_code == 400 and "cancel it" in busy.json()["error"]["message"]
    emulator.advance(3.5)  # 1 s validating, then one request a second: two have run
    canceling = http.post(f"/v1/messages/batches/{batch['id']}/cancel").json()
    assert canceling["processing_status"] == "canceling" and canceling["cancel_initiated_at"]
    emulator.advance(5)
    ended = http.get(f"/v1/messages/batches/{batch['id']}").json()
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"]["canceled"] == 2 and ended["request_counts"]["succeeded"] == 2
    types = sorted(
        orjson.loads(x)["result"]["type"]
        for x in http.get(ended["results_url"]).content.splitlines()
    )
    assert types == ["canceled", "canceled", "succeeded", "succeeded"]
    again = http.post(f"/v1/messages/batches/{batch['id']}/cancel")
    assert again.status_code == 400 and "already ended" in again.json()["error"]["message"]
    expiring = create(http, *(item(f"e{i}") for i in range(3)))
    emulator.advance(1.5)
    emulator.expire(expiring["id"])
    done = http.get(f"/v1/messages/batches/{expiring['id']}").json()
    assert done["request_counts"]["expired"] == 3 and done["cancel_initiated_at"] is None
    deleted = http.delete(f"/v1/messages/batches/{batch['id']}")
    assert deleted.json() == {"id": batch["id"], "type": "message_batch_deleted"}
    gone = http.get(f"/v1/messages/batches/{batch['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found_error"


def test_a_cancel_while_finishing_is_recorded_and_ends_cancelled(emulator: Emulator) -> None:
    with BatchClient(
        "anthropic",
        api_key="k",
        base_url=BASE,
        transport=emulator.transport(),
        sleep=emulator.advance,
    ) as client:
        batch = client.submit(
            [
                {
                    "custom_id": "a",
                    "body": {
                        "model": "m",
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": "x"}],
                    },
                }
            ]
        )
        emulator.advance(2.2)  # ran, now in the engine's finalizing phase
        cancelling = client.cancel(batch.id)
        assert cancelling.status is BatchStatus.CANCELLING
        done = client.wait(batch.id)
        assert done.status is BatchStatus.CANCELLED and done.request_counts.succeeded == 1
        assert [r.status for r in client.results(batch.id)] == [ResultStatus.SUCCEEDED]


def test_results_are_archived_after_29_days(emulator: Emulator) -> None:
    with BatchClient(
        "anthropic",
        api_key="k",
        base_url=BASE,
        transport=emulator.transport(),
        sleep=emulator.advance,
    ) as client:
        batch = client.submit(
            [
                {
                    "custom_id": "a",
                    "body": {
                        "model": "m",
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": "x"}],
                    },
                }
            ]
        )
        client.wait(batch.id)
        emulator.advance(29 * 24 * 3600)
        archived = client.retrieve(batch.id)
        assert archived.raw["archived_at"] and archived.raw["results_url"] is None
        with pytest.raises(BatchStateError, match="archived"):
            client.results(batch.id)


def test_listing_pages_newest_first_both_ways(emulator: Emulator, http: httpx.Client) -> None:
    ids = []
    for i in range(5):
        ids.append(create(http, item(f"r{i}"))["id"])
        emulator.advance(1)
    newest = ids[::-1]
    first = http.get("/v1/messages/batches", params={"limit": 2}).json()
    assert [b["id"] for b in first["data"]] == newest[:2] and first["has_more"]
    assert (first["first_id"], first["last_id"]) == (newest[0], newest[1])
    second = http.get(
        "/v1/messages/batches", params={"limit": 2, "after_id": first["last_id"]}
    ).json()
    assert [b["id"] for b in second["data"]] == newest[2:4]
    back = http.get(
        "/v1/messages/batches", params={"limit": 2, "before_id": second["first_id"]}
    ).json()
    assert [b["id"] for b in back["data"]] == newest[:2] and not back["has_more"]
    assert http.get("/v1/messages/batches", params={"limit": 0}).status_code == 400


def test_injected_faults_answer_in_anthropic_s_shape(emulator: Emulator) -> None:
    plan = FaultPlan(
        rules=[
            FaultRule(route="re:^GET ", kind="429", times=1),
            FaultRule(route="re:^GET ", kind="500", times=1),
        ]
    )
    faulty = Emulator([AnthropicDialect], config=EmulatorConfig(faults=plan), clock=ManualClock())
    with httpx.Client(transport=faulty.transport(), base_url=BASE, headers=SDK_HEADERS) as http:
        limited = http.get("/v1/messages/batches")
        assert limited.status_code == 429 and "retry-after" in limited.headers
        assert limited.json()["error"]["type"] == "rate_limit_error"
        failed = http.get("/v1/messages/batches")
        assert failed.status_code == 500 and failed.json()["type"] == "error"
        assert failed.json()["error"]["type"] == "api_error"
        assert http.get("/v1/messages/batches").status_code == 200


def test_unknown_routes_are_404_in_anthropic_s_shape(http: httpx.Client) -> None:
    response = http.get("/v1/messages/nothing/here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
