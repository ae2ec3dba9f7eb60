"""The OpenAI dialect in process (httpx.MockTransport + ManualClock)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from omnibatch.emulator import Emulator, EmulatorConfig, ManualClock
from omnibatch_openai.dialect import OpenAIDialect

from ._support import AUTH, chat_line, jsonl, read_jsonl

MakeBatch = Callable[..., dict[str, Any]]


def get_batch(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    response = client.get(f"/batches/{batch_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def content(client: httpx.Client, file_id: str) -> bytes:
    response = client.get(f"/files/{file_id}/content")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    return response.content


# -- lifecycle ----------------------------------------------------------------------------


def test_lifecycle_progresses_with_counts_and_timestamps(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    created = openai_batch([chat_line(f"r{i}", f"question {i}") for i in range(100)])
    t0 = created["created_at"]
    assert created["status"] == "validating"
    assert created["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert created["in_progress_at"] is None and created["output_file_id"] is None
    assert created["expires_at"] == t0 + 86_400

    emulator.advance(0.5 + 0.1)  # validation over, 40 requests done at 400/s
    running = get_batch(oai, created["id"])
    assert running["status"] == "in_progress"
    assert running["in_progress_at"] == t0
    assert running["request_counts"] == {"total": 100, "completed": 40, "failed": 0}
    assert running["model"] == "gpt-4o-mini"

    emulator.advance(0.1)
    later = get_batch(oai, created["id"])
    assert later["request_counts"]["completed"] == 80
    assert later["usage"]["output_tokens"] > running["usage"]["output_tokens"] > 0

    emulator.advance(0.06)  # all 100 done (0.25 s) -> finalizing
    finalizing = get_batch(oai, created["id"])
    assert finalizing["status"] == "finalizing"
    assert finalizing["finalizing_at"] is not None
    assert finalizing["output_file_id"] is None

    emulator.advance(0.5)
    done = get_batch(oai, created["id"])
    assert done["status"] == "completed"
    assert done["completed_at"] >= done["finalizing_at"] >= done["in_progress_at"]
    assert done["request_counts"] == {"total": 100, "completed": 100, "failed": 0}
    assert done["error_file_id"] is None
    lines = read_jsonl(content(oai, done["output_file_id"]))
    assert sorted(line["custom_id"] for line in lines) == sorted(f"r{i}" for i in range(100))
    usage = done["usage"]
    assert usage["input_tokens"] == sum(
        x["response"]["body"]["usage"]["prompt_tokens"] for x in lines
    )
    assert usage["output_tokens"] == sum(
        x["response"]["body"]["usage"]["completion_tokens"] for x in lines
    )
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_output_lines_have_the_exact_format_and_a_shuffled_order(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    ids = [f"req-{i}" for i in range(20)]
    batch = openai_batch([chat_line(cid) for cid in ids])
    emulator.complete(batch["id"])
    raw = content(oai, get_batch(oai, batch["id"])["output_file_id"])
    first = raw.split(b"\n", 1)[0]
    assert first.startswith(b'{"id":"batch_req_')
    assert b',"error":null}' in first and b", " not in first  # compact, error last
    lines = read_jsonl(raw)
    order = [line["custom_id"] for line in lines]
    assert sorted(order) == sorted(ids) and order != ids
    for line in lines:
        assert list(line) == ["id", "custom_id", "response", "error"]
        assert list(line["response"]) == ["status_code", "request_id", "body"]
        assert line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert body["object"] == "chat.completion"
        assert body["model"] == "gpt-4o-mini"
        assert body["choices"][0]["message"]["role"] == "assistant"
        assert body["choices"][0]["message"]["content"]
    assert len({line["id"] for line in lines}) == len(lines)


def test_same_request_same_answer_and_different_request_different_answer(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    def answers(content_a: str) -> dict[str, str]:
        batch = openai_batch([chat_line("a", content_a), chat_line("b", "something else")])
        emulator.complete(batch["id"])
        lines = read_jsonl(content(oai, get_batch(oai, batch["id"])["output_file_id"]))
        return {
            x["custom_id"]: x["response"]["body"]["choices"][0]["message"]["content"] for x in lines
        }

    first, second = answers("What is 2+2?"), answers("What is 2+2?")
    assert first == second
    assert first["a"] != first["b"]


def test_max_tokens_caps_the_answer(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    line = chat_line("short")
    line["body"]["max_tokens"] = 2
    batch = openai_batch([line])
    emulator.complete(batch["id"])
    (out,) = read_jsonl(content(oai, get_batch(oai, batch["id"])["output_file_id"]))
    body = out["response"]["body"]
    assert body["usage"]["completion_tokens"] == 2
    assert body["choices"][0]["finish_reason"] == "length"
    assert len(body["choices"][0]["message"]["content"].split()) == 2


def test_embeddings_are_deterministic_unit_vectors(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    def line(cid: str, text: Any, **extra: Any) -> dict[str, Any]:
        body = {"model": "text-embedding-3-small", "input": text, **extra}
        return {"custom_id": cid, "method": "POST", "url": "/v1/embeddings", "body": body}

    batch = openai_batch(
        [
            line("one", "hello world"),
            line("two", ["hello world", "bye"]),
            line("dim", "x", dimensions=5),
        ],
        endpoint="/v1/embeddings",
    )
    emulator.complete(batch["id"])
    out = {
        x["custom_id"]: x["response"]["body"]
        for x in read_jsonl(content(oai, get_batch(oai, batch["id"])["output_file_id"]))
    }
    assert out["one"]["object"] == "list"
    vec = out["one"]["data"][0]["embedding"]
    assert len(vec) == 16
    assert math.isclose(sum(v * v for v in vec), 1.0, abs_tol=1e-4)
    assert [d["index"] for d in out["two"]["data"]] == [0, 1]
    assert out["two"]["data"][0]["embedding"] == vec  # same text, same vector
    assert out["two"]["data"][1]["embedding"] != vec
    assert len(out["dim"]["data"][0]["embedding"]) == 5
    assert out["two"]["usage"]["prompt_tokens"] == out["two"]["usage"]["total_tokens"] > 0


def test_error_marker_fails_that_request_into_the_error_file(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    lines = [chat_line(f"r{i}") for i in range(6)]
    lines[2]["body"]["messages"][0]["content"] = "please fail [[emulator:error]]"
    lines[4]["body"]["metadata"] = {"note": "[[emulator:error]]"}
    batch = openai_batch(lines)
    emulator.complete(batch["id"])
    done = get_batch(oai, batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 6, "completed": 4, "failed": 2}
    errors = read_jsonl(content(oai, done["error_file_id"]))
    assert sorted(e["custom_id"] for e in errors) == ["r2", "r4"]
    for e in errors:
        assert e["error"] is None
        assert e["response"]["status_code"] == 400
        assert e["response"]["body"]["error"]["type"] == "invalid_request_error"
    outputs = read_jsonl(content(oai, done["output_file_id"]))
    assert sorted(o["custom_id"] for o in outputs) == ["r0", "r1", "r3", "r5"]


def test_request_error_rate_is_seeded_and_reproducible() -> None:
    def failing(seed: int) -> set[str]:
        emu = Emulator(
            [OpenAIDialect], EmulatorConfig(seed=seed, request_error_rate=0.3), ManualClock()
        )
        with httpx.Client(
            transport=emu.transport(), base_url="http://e/openai/v1", headers=AUTH
        ) as c:
            up = c.post(
                "/files",
                data={"purpose": "batch"},
                files={
                    "file": ("a.jsonl", jsonl([chat_line(f"r{i}", f"q{i}") for i in range(200)]))
                },
            )
            b = c.post(
                "/batches",
                json={
                    "input_file_id": up.json()["id"],
                    "endpoint": "/v1/chat/completions",
                    "completion_window": "24h",
                },
            ).json()
            emu.complete(b["id"])
            done = c.get(f"/batches/{b['id']}").json()
            errors = read_jsonl(c.get(f"/files/{done['error_file_id']}/content").content)
            assert all(e["response"]["status_code"] == 500 for e in errors)
            assert done["request_counts"]["failed"] == len(errors)
            return {e["custom_id"] for e in errors}

    first, again, other = failing(1), failing(1), failing(2)
    assert first == again
    assert first != other
    assert 30 <= len(first) <= 90  # about 30 % of 200


# -- validation failures ------------------------------------------------------------------


def _line(**overrides: Any) -> bytes:
    line = chat_line("x")
    line.update(overrides)
    return orjson.dumps({k: v for k, v in line.items() if v is not None})


VALIDATION_CASES = {
    "malformed_json": (
        [
            orjson.dumps(chat_line("a")),
            b'{"custom_id": "b", "method": ',
            orjson.dumps(chat_line("c")),
        ],
        [("invalid_json_line", 2, None)],
    ),
    "not_an_object": ([orjson.dumps(chat_line("a")), b"[1, 2]"], [("invalid_json_line", 2, None)]),
    "mixed_models": (
        [orjson.dumps(chat_line("a")), orjson.dumps(chat_line("b", model="gpt-4o"))],
        [("model_mismatch", 2, "body.model")],
    ),
    "url_mismatch": (
        [orjson.dumps(chat_line("a")), orjson.dumps(chat_line("b", url="/v1/embeddings"))],
        [("url_mismatch", 2, "url")],
    ),
    "bad_url": ([orjson.dumps(chat_line("a", url="/v1/nope"))], [("url_mismatch", 1, "url")]),
    "duplicate_custom_id": (
        [orjson.dumps(chat_line("a")), orjson.dumps(chat_line("b")), orjson.dumps(chat_line("a"))],
        [("duplicate_custom_id", 3, "custom_id")],
    ),
    "missing_custom_id": (
        [orjson.dumps(chat_line("a")), _line(custom_id=None)],
        [("missing_required_parameter", 2, "custom_id")],
    ),
    "missing_method": ([_line(method=None)], [("missing_required_parameter", 1, "method")]),
    "missing_url": ([_line(url=None)], [("missing_required_parameter", 1, "url")]),
    "missing_body": ([_line(body=None)], [("missing_required_parameter", 1, "body")]),
    "missing_model": (
        [_line(body={"messages": []})],
        [("missing_required_parameter", 1, "body.model")],
    ),
    "wrong_method": ([_line(method="GET")], [("invalid_value", 1, "method")]),
    "empty_file": ([b"", b"   "], [("empty_file", None, None)]),
    "several_errors": (
        [b"oops", orjson.dumps(chat_line("a")), orjson.dumps(chat_line("a"))],
        [("invalid_json_line", 1, None), ("duplicate_custom_id", 3, "custom_id")],
    ),
}


@pytest.mark.parametrize("case", list(VALIDATION_CASES))
def test_invalid_input_fails_validation_with_line_numbers(
    case: str, oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    raw_lines, expected = VALIDATION_CASES[case]
    batch = openai_batch(b"\n".join(raw_lines) + b"\n")
    assert batch["status"] == "validating"
    emulator.advance(0.49)
    assert get_batch(oai, batch["id"])["status"] == "validating"
    emulator.advance(0.02)
    failed = get_batch(oai, batch["id"])
    assert failed["status"] == "failed"
    assert failed["failed_at"] == failed["created_at"]
    assert failed["in_progress_at"] is None
    assert failed["output_file_id"] is None and failed["error_file_id"] is None
    assert failed["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert failed["errors"]["object"] == "list"
    got = [(e["code"], e["line"], e["param"]) for e in failed["errors"]["data"]]
    assert got == expected
    assert all(e["message"] for e in failed["errors"]["data"])
    emulator.advance(3600)  # stays failed
    assert get_batch(oai, batch["id"])["status"] == "failed"


def test_blank_lines_are_ignored_and_line_numbers_count_them(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    data = b"\n" + orjson.dumps(chat_line("a")) + b"\n\n" + b"{bad\n"
    batch = openai_batch(data)
    emulator.advance(1)
    errors = get_batch(oai, batch["id"])["errors"]["data"]
    assert [(e["code"], e["line"]) for e in errors] == [("invalid_json_line", 4)]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"endpoint": "/v1/chat/completions", "completion_window": "24h"}, "input_file_id"),
        ({"input_file_id": "F", "completion_window": "24h"}, "endpoint"),
        ({"input_file_id": "F", "endpoint": "/v1/chat/completions"}, "completion_window"),
        ({"input_file_id": "F", "endpoint": "/v1/nope", "completion_window": "24h"}, "endpoint"),
        (
            {"input_file_id": "F", "endpoint": "/v1/chat/completions", "completion_window": "48h"},
            "completion_window",
        ),
        (
            {
                "input_file_id": "file-missing",
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
            "input_file_id",
        ),
        (
            {
                "input_file_id": "F",
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
                "metadata": {str(i): "v" for i in range(17)},
            },
            "metadata",
        ),
        (
            {
                "input_file_id": "F",
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
                "metadata": {"k": 1},
            },
            "metadata",
        ),
        (
            {
                "input_file_id": "F",
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
                "output_expires_after": {"anchor": "created_at", "seconds": 60},
            },
            "output_expires_after",
        ),
    ],
)
def test_create_rejects_bad_requests_synchronously(
    body: dict[str, Any], param: str, oai: httpx.Client, emulator: Emulator
) -> None:
    up = oai.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", jsonl([chat_line("a")]))}
    )
    if body.get("input_file_id") == "F":
        body = {**body, "input_file_id": up.json()["id"]}
    response = oai.post("/batches", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert emulator.stats.creates["openai"] == 0


def test_create_refuses_a_file_uploaded_for_another_purpose(oai: httpx.Client) -> None:
    up = oai.post("/files", data={"purpose": "fine-tune"}, files={"file": ("a.jsonl", b"{}\n")})
    assert up.json()["expires_at"] is None
    body = {
        "input_file_id": up.json()["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    response = oai.post("/batches", json=body)
    assert response.status_code == 400
    assert "purpose" in response.json()["error"]["message"]


# -- expiry and cancel ----------------------------------------------------------------------


def test_expire_keeps_partial_output_and_writes_batch_expired_lines(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    lines = [chat_line(f"r{i}") for i in range(100)]
    lines[0]["body"]["messages"][0]["content"] = "[[emulator:error]]"
    batch = openai_batch(lines)
    emulator.advance(0.5 + 0.1)  # 40 processed
    emulator.expire(batch["id"])
    expired = get_batch(oai, batch["id"])
    assert expired["status"] == "expired"
    assert expired["expired_at"] is not None and expired["completed_at"] is None
    counts = expired["request_counts"]
    # The 60 that never ran are in the error file, and counted as failed.
    assert counts["total"] == 100 and counts["completed"] + counts["failed"] == 100
    outputs = read_jsonl(content(oai, expired["output_file_id"]))
    errors = read_jsonl(content(oai, expired["error_file_id"]))
    assert len(outputs) == counts["completed"] and len(errors) == counts["failed"]
    expired_lines = [e for e in errors if e["response"] is None]
    assert len(expired_lines) == 60
    for e in expired_lines:
        assert e["error"] == {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        }
    every = [x["custom_id"] for x in outputs + errors]
    assert sorted(every) == sorted(f"r{i}" for i in range(100))
    emulator.advance(10)
    assert get_batch(oai, batch["id"])["status"] == "expired"


def test_the_24h_window_expires_a_slow_batch(clock: ManualClock, openai_batch: MakeBatch) -> None:
    emu = Emulator([OpenAIDialect], EmulatorConfig(requests_per_second=0.001), clock)
    with httpx.Client(transport=emu.transport(), base_url="http://e/openai/v1", headers=AUTH) as c:
        batch = openai_batch([chat_line(f"r{i}") for i in range(200)], client=c)
        clock.advance(86_399)
        assert c.get(f"/batches/{batch['id']}").json()["status"] == "in_progress"
        clock.advance(2)
        expired = c.get(f"/batches/{batch['id']}").json()
        assert expired["status"] == "expired"
        assert expired["expired_at"] == batch["created_at"] + 86_400
        assert expired["request_counts"]["completed"] == 86  # floor(86399.5 * 0.001)
        errors = read_jsonl(c.get(f"/files/{expired['error_file_id']}/content").content)
        assert len(errors) == 200 - 86


def test_cancel_goes_through_cancelling_and_keeps_partial_results(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    batch = openai_batch([chat_line(f"r{i}") for i in range(100)])
    emulator.advance(0.5 + 0.05)  # 20 processed
    cancelling = oai.post(f"/batches/{batch['id']}/cancel")
    assert cancelling.status_code == 200
    body = cancelling.json()
    assert body["status"] == "cancelling"
    assert body["cancelling_at"] is not None and body["cancelled_at"] is None
    again = oai.post(f"/batches/{batch['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelling"
    emulator.advance(0.2)
    still = get_batch(oai, batch["id"])
    assert still["status"] == "cancelling"
    assert still["request_counts"]["completed"] == 20  # frozen at the cancel
    emulator.advance(0.4)
    cancelled = get_batch(oai, batch["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled_at"] >= cancelled["cancelling_at"]
    outputs = read_jsonl(content(oai, cancelled["output_file_id"]))
    errors = read_jsonl(content(oai, cancelled["error_file_id"]))
    assert len(outputs) == 20 and len(errors) == 80
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert {e["response"] for e in errors} == {None}


def test_cancel_during_validation_cancels_everything(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    batch = openai_batch([chat_line(f"r{i}") for i in range(5)])
    assert oai.post(f"/batches/{batch['id']}/cancel").json()["status"] == "cancelling"
    emulator.advance(5)
    cancelled = get_batch(oai, batch["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["in_progress_at"] is None and cancelled["output_file_id"] is None
    assert len(read_jsonl(content(oai, cancelled["error_file_id"]))) == 5


def test_cancel_of_a_finished_batch_is_a_409(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    batch = openai_batch([chat_line("a")])
    emulator.complete(batch["id"])
    response = oai.post(f"/batches/{batch['id']}/cancel")
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "message": "Cannot cancel a batch with status 'completed'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def test_complete_finishes_a_batch_immediately(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    batch = openai_batch([chat_line(f"r{i}") for i in range(1000)])
    snap = emulator.complete(batch["id"])
    assert snap.terminal and snap.done == 1000
    done = get_batch(oai, batch["id"])
    assert done["status"] == "completed"
    assert done["created_at"] == done["in_progress_at"] == done["completed_at"]


def test_a_thousand_requests_finish_within_ten_simulated_seconds(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    batch = openai_batch([chat_line(f"r{i}") for i in range(1000)])
    emulator.advance(3.49)
    assert get_batch(oai, batch["id"])["status"] == "finalizing"
    emulator.advance(0.02)
    assert get_batch(oai, batch["id"])["status"] == "completed"


# -- listing --------------------------------------------------------------------------------


def test_batches_list_paginates_newest_first_with_cursors(
    oai: httpx.Client, emulator: Emulator, openai_batch: MakeBatch
) -> None:
    ids = []
    for _ in range(5):
        ids.append(openai_batch([chat_line("a")])["id"])
        emulator.advance(1)
    newest_first = ids[::-1]

    page = oai.get("/batches", params={"limit": 2}).json()
    assert page["object"] == "list"
    assert [b["id"] for b in page["data"]] == newest_first[:2]
    assert page["first_id"] == newest_first[0] and page["last_id"] == newest_first[1]
    assert page["has_more"] is True

    seen, after = [], None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if after:
            params["after"] = after
        page = oai.get("/batches", params=params).json()
        seen += [b["id"] for b in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert seen == newest_first
    assert page["data"] and len(page["data"]) == 1

    default = oai.get("/batches").json()
    assert [b["id"] for b in default["data"]] == newest_first and default["has_more"] is False


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"after": "batch_nope"}]
)
def test_batches_list_rejects_bad_parameters(params: dict[str, Any], oai: httpx.Client) -> None:
    response = oai.get("/batches", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_files_list_filters_orders_and_paginates(oai: httpx.Client, emulator: Emulator) -> None:
    ids = []
    for purpose in ("batch", "fine-tune", "batch"):
        ids.append(
            oai.post(
                "/files", data={"purpose": purpose}, files={"file": ("f.jsonl", b"{}\n")}
            ).json()["id"]
        )
        emulator.advance(1)
    listed = oai.get("/files").json()
    assert [f["id"] for f in listed["data"]] == ids[::-1]
    assert [f["id"] for f in oai.get("/files", params={"order": "asc"}).json()["data"]] == ids
    batch_only = oai.get("/files", params={"purpose": "batch"}).json()
    assert [f["id"] for f in batch_only["data"]] == [ids[2], ids[0]]
    page = oai.get("/files", params={"limit": 1, "after": ids[2]}).json()
    assert [f["id"] for f in page["data"]] == [ids[1]] and page["has_more"] is True


# -- files, errors, auth ----------------------------------------------------------------------


def test_file_upload_retrieve_download_delete(oai: httpx.Client, clock: ManualClock) -> None:
    data = jsonl([chat_line("a")])
    up = oai.post(
        "/files",
        data={
            "purpose": "batch",
            "expires_after[anchor]": "created_at",
            "expires_after[seconds]": "7200",
        },
        files={"file": ("my input.jsonl", data, "application/jsonl")},
    )
    assert up.status_code == 200
    obj = up.json()
    assert obj["bytes"] == len(data) and obj["filename"] == "my input.jsonl"
    assert obj["purpose"] == "batch" and obj["object"] == "file"
    assert obj["created_at"] == int(clock.now()) and obj["expires_at"] == obj["created_at"] + 7200
    assert oai.get(f"/files/{obj['id']}").json() == obj
    assert content(oai, obj["id"]) == data
    deleted = oai.delete(f"/files/{obj['id']}")
    assert deleted.json() == {"id": obj["id"], "object": "file", "deleted": True}
    missing = oai.get(f"/files/{obj['id']}")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": f"No such File object: {obj['id']}",
            "type": "invalid_request_error",
            "param": "id",
            "code": None,
        }
    }


@pytest.mark.parametrize(
    ("data", "param"),
    [({}, "purpose"), ({"purpose": "nonsense"}, "purpose")],
)
def test_upload_rejects_bad_forms(data: dict[str, str], param: str, oai: httpx.Client) -> None:
    response = oai.post("/files", data=data, files={"file": ("a.jsonl", b"{}")})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_unknown_batch_is_a_404_in_openai_shape(oai: httpx.Client) -> None:
    response = oai.get("/batches/batch_nope")
    assert response.status_code == 404
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and "batch_nope" in error["message"]
    assert oai.post("/batches/batch_nope/cancel").status_code == 404
    assert oai.get("/nothing/here").status_code == 404


def test_missing_authorization_is_a_401_in_openai_shape(emulator: Emulator) -> None:
    with httpx.Client(transport=emulator.transport(), base_url="http://e/openai/v1") as bare:
        response = bare.get("/batches")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_api_key" and error["param"] is None
    assert "API key" in error["message"]


def test_a_configured_api_key_must_match(clock: ManualClock) -> None:
    emu = Emulator([OpenAIDialect], EmulatorConfig(api_key="right"), clock)
    transport = emu.transport()
    with httpx.Client(transport=transport, base_url="http://e/openai/v1") as c:
        wrong = c.get("/batches", headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        assert "wrong" not in wrong.text
        assert c.get("/batches", headers={"Authorization": "Bearer right"}).status_code == 200
        assert c.get("/batches", headers={"Authorization": "Basic right"}).status_code == 401


def test_download_supports_range_requests(oai: httpx.Client) -> None:
    data = bytes(range(256)) * 4
    file_id = oai.post("/files", data={"purpose": "batch"}, files={"file": ("b.bin", data)}).json()[
        "id"
    ]
    full = oai.get(f"/files/{file_id}/content")
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    tail = oai.get(f"/files/{file_id}/content", headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes 1000-1023/{len(data)}"
    assert tail.content == data[1000:]
    middle = oai.get(f"/files/{file_id}/content", headers={"Range": "bytes=10-19"})
    assert middle.status_code == 206 and middle.content == data[10:20]
    suffix = oai.get(f"/files/{file_id}/content", headers={"Range": "bytes=-5"})
    assert suffix.content == data[-5:] and suffix.headers["content-range"] == "bytes 1019-1023/1024"
    beyond = oai.get(f"/files/{file_id}/content", headers={"Range": "bytes=5000-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == "bytes */1024"


def test_stats_count_creates_and_log_requests_without_secrets(
    emulator: Emulator, openai_batch: MakeBatch, oai: httpx.Client
) -> None:
    openai_batch([chat_line("a")])
    openai_batch([chat_line("b")])
    oai.get("/batches")
    assert emulator.stats.creates["openai"] == 2
    assert emulator.stats.count("POST", "/openai/v1/batches") == 2
    record = emulator.stats.requests[-1]
    assert (record.method, record.path, record.status) == ("GET", "/openai/v1/batches", 200)
    assert record.dialect == "openai"
    assert all(r.headers["authorization"] == "<redacted>" for r in emulator.stats.requests)
    assert "test-key" not in repr(list(emulator.stats.requests))


def test_responses_include_a_request_id_header(oai: httpx.Client) -> None:
    first, second = oai.get("/batches"), oai.get("/batches")
    assert first.headers["x-request-id"].startswith("req_")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.anyio
async def test_the_transport_serves_async_clients(emulator: Emulator) -> None:
    async with httpx.AsyncClient(
        transport=emulator.transport(), base_url="http://e/openai/v1", headers=AUTH
    ) as client:
        up = await client.post(
            "/files",
            data={"purpose": "batch"},
            files={"file": ("a.jsonl", jsonl([chat_line("a")]))},
        )
        created = await client.post(
            "/batches",
            json={
                "input_file_id": up.json()["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        emulator.complete(created.json()["id"])
        done = (await client.get(f"/batches/{created.json()['id']}")).json()
        assert done["status"] == "completed"
        lines = read_jsonl((await client.get(f"/files/{done['output_file_id']}/content")).content)
        assert [line["custom_id"] for line in lines] == ["a"]


def test_emulator_client_is_wired_to_a_dialect(emulator: Emulator) -> None:
    with emulator.client("openai", headers=AUTH) as client:
        assert str(client.base_url) == "http://emulator/openai/v1/"
        assert client.get("/batches").json()["object"] == "list"
