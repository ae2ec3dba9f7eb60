"""The job runner over the in-process emulator: the lifecycle, resume, exactly-once creates,
upload healing, waiting, cancelling, and crashes at every checkpoint (simulated by raising;
tests/cli/test_crash.py kills real processes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from omnibatch._exceptions import (
    BatchStateError,
    ConfigurationError,
    InputValidationError,
    WaitTimeoutError,
)
from omnibatch._lifecycle import IDEMPOTENCY_KEY
from omnibatch.adapter import Capabilities
from omnibatch.emulator import Emulator, FaultPlan, FaultRule
from omnibatch.jobs import (
    JOB_METADATA_KEY,
    JobOptions,
    JobRunner,
    JobView,
    SubmissionUnknownError,
    job_key,
)
from omnibatch.ledger import Ledger
from omnibatch.testing.crash import CHECKPOINTS, CrashPlan
from tests.jobs.conftest import (
    MISTRAL,
    OPENAI,
    Crash,
    RaisingPlan,
    read_output,
    settings,
    write_input,
)

SPLIT = JobOptions(max_requests_per_batch=3)


def _batches(emulator: Emulator, job_id: str) -> list[Any]:
    return [
        b
        for b in emulator.engine.batches.values()
        if (b.metadata or {}).get(JOB_METADATA_KEY) == job_id
    ]


def _input_files(emulator: Emulator, job_id: str) -> list[str]:
    return [f.filename for f in emulator.engine.files.values() if f.filename.startswith(job_id)]


def _uploads(emulator: Emulator) -> int:
    return emulator.stats.count("POST", "/files")


def test_run_writes_one_line_per_custom_id_in_input_order(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 7)
    result = make_runner().run(source, tmp_path / "out.jsonl", OPENAI, SPLIT)
    lines = read_output(tmp_path / "out.jsonl")
    assert [line["custom_id"] for line in lines] == [f"r{i}" for i in range(7)]
    assert {line["status"] for line in lines} == {"succeeded"}
    assert all(line["response"]["object"] == "chat.completion" for line in lines)
    assert result.succeeded and not result.resumed
    assert result.summary is not None and result.summary.succeeded == 7
    assert len(_batches(emulator, result.view.id)) == 3  # 3 + 3 + 1
    assert result.view.job.phase == "done"
    # The uploaded inputs were cleaned up; the ledger says so.
    assert _input_files(emulator, result.view.id) == []
    states = {(f.role, f.state) for f in make_runner().ledger.files(result.view.id)}
    assert states == {("input", "deleted"), ("output", "kept")}


def test_batches_carry_idempotency_key_and_job(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 2)
    options = JobOptions(metadata={"team": "eval"})
    result = make_runner().run(source, tmp_path / "out.jsonl", OPENAI, options)
    (batch,) = _batches(emulator, result.view.id)
    part = result.view.parts[0]
    assert batch.metadata == {
        "team": "eval",
        JOB_METADATA_KEY: result.view.id,
        IDEMPOTENCY_KEY: part.idempotency_key,
    }


def test_rerun_resumes_instead_of_resubmitting(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 7)
    first = make_runner().run(source, tmp_path / "a.jsonl", OPENAI, SPLIT)
    again = make_runner().run(source, tmp_path / "b.jsonl", OPENAI, SPLIT)
    assert again.resumed and again.view.id == first.view.id
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    assert emulator.stats.creates["openai"] == 3
    # --new, other options, or another provider: a new job.
    new = make_runner().run(source, tmp_path / "c.jsonl", OPENAI, SPLIT, new=True)
    other = make_runner().run(source, tmp_path / "d.jsonl", OPENAI, JobOptions())
    assert len({first.view.id, new.view.id, other.view.id}) == 3
    assert emulator.stats.creates["openai"] == 3 + 3 + 1


def test_job_identity_depends_on_input_provider_and_options() -> None:
    base = job_key("h", OPENAI, SPLIT)
    assert base == job_key("h", OPENAI, JobOptions(max_requests_per_batch=3))
    assert base != job_key("h2", OPENAI, SPLIT)
    assert base != job_key("h", MISTRAL, SPLIT)
    assert base != job_key("h", OPENAI, JobOptions(max_requests_per_batch=3, model="x"))
    elsewhere = settings("openai", "http://other/openai/v1", "k")
    assert base != job_key("h", elsewhere, SPLIT)
    assert base == job_key("h", settings("openai", OPENAI.base_url, "another-key"), SPLIT)


# list-answered only happens on resume (next test); download-partial needs a streamed body,
# which MockTransport responses (preloaded) never are: tests/cli/test_crash.py covers it.
@pytest.mark.parametrize(
    "point", [p for p in CHECKPOINTS if p not in ("list-answered", "download-partial")]
)
def test_crash_at_any_checkpoint_then_resume_creates_each_batch_once(
    point: str, make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 7)
    out = tmp_path / "out.jsonl"
    nth = 2 if point in ("poll", "retrieve-answered") else 1
    runner = make_runner(crash=RaisingPlan(point, nth))
    with pytest.raises(Crash):
        runner.run(source, out, OPENAI, SPLIT)
    result = make_runner().run(source, out, OPENAI, SPLIT)
    assert result.resumed and result.succeeded
    assert [line["custom_id"] for line in read_output(out)] == [f"r{i}" for i in range(7)]
    assert len(_batches(emulator, result.view.id)) == 3
    assert _input_files(emulator, result.view.id) == []  # nothing orphaned


def test_crash_after_create_is_reattached_by_listing(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 4)
    with pytest.raises(Crash):
        make_runner(crash=RaisingPlan("create-answered")).run(source, None, OPENAI, SPLIT)
    (orphan,) = emulator.engine.batches.values()
    runner = make_runner()
    view = runner.view(runner.ledger.list_jobs()[0])
    assert view.parts[0].batch_id is None and view.parts[0].idempotency_key
    result = runner.run(source, tmp_path / "out.jsonl", OPENAI, SPLIT)
    assert result.view.parts[0].batch_id == orphan.id
    kinds = [e.kind for e in runner.ledger.events(result.view.id)]
    assert "reattached" in kinds
    assert emulator.stats.creates["openai"] == 2


def test_crash_during_recovery_still_creates_once(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 7)
    with pytest.raises(Crash):
        make_runner(crash=RaisingPlan("create-answered", 2)).run(source, None, OPENAI, SPLIT)
    with pytest.raises(Crash):
        make_runner(crash=RaisingPlan("list-answered")).run(source, None, OPENAI, SPLIT)
    result = make_runner().run(source, tmp_path / "out.jsonl", OPENAI, SPLIT)
    assert result.succeeded and len(_batches(emulator, result.view.id)) == 3


def test_upload_whose_answer_was_lost_is_reused(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 2)
    with pytest.raises(Crash):
        make_runner(crash=RaisingPlan("upload-answered")).run(source, None, OPENAI, SPLIT)
    assert _uploads(emulator) == 1
    runner = make_runner()
    result = runner.run(source, tmp_path / "out.jsonl", OPENAI, SPLIT, wait=False)
    assert _uploads(emulator) == 1  # found by its name, not uploaded again
    part = result.view.parts[0]
    (stored,) = [f for f in emulator.engine.files.values() if f.purpose == "batch"]
    assert part.file_id == stored.id


def test_duplicate_uploads_found_on_resume_are_deleted(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 2)
    runner = make_runner()
    view, _ = runner.open(source, OPENAI, SPLIT)
    view = runner.prepare(view, OPENAI)
    # Two earlier attempts reached the provider but neither answer was read.
    client = emulator.client("openai", headers={"Authorization": "Bearer x"})
    for name in ("dup-a.jsonl", "dup-b.jsonl"):
        runner.ledger.begin_upload(view.id, 0, name)
        client.post(
            "/files",
            data={"purpose": "batch"},
            files={"file": (name, view.parts[0].part_path.read_bytes())},
        )
    result = runner.run(source, tmp_path / "out.jsonl", OPENAI, SPLIT)
    assert result.succeeded and _uploads(emulator) == 2
    names = {f.filename for f in emulator.engine.files.values() if f.purpose == "batch"}
    assert names == set()  # one was used then deleted with the job, the other deleted as stray
    states = sorted(f.state for f in runner.ledger.files(view.id) if f.role == "input")
    assert states == ["deleted", "deleted"]


def test_provider_that_cannot_be_searched_refuses_to_guess(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    from omnibatch._plugins import build_registry, reset_registry
    from omnibatch.hookspecs import hookimpl
    from omnibatch_openai.adapter import OpenAIAdapter

    class NoMetadata(OpenAIAdapter):
        name = "nometa"
        capabilities = Capabilities(metadata=False, list_batches=False)

    class Plugin:
        @hookimpl
        def register_providers(self, register: Callable[[type[Any]], None]) -> None:
            register(NoMetadata)

    reset_registry(build_registry([], plugins=[("nometa", Plugin())]))
    target = settings("nometa", OPENAI.base_url, "k")
    source = write_input(tmp_path / "in.jsonl", 2)
    with pytest.raises(Crash):
        make_runner(crash=RaisingPlan("create-answered")).run(source, None, target, SPLIT)
    with pytest.raises(SubmissionUnknownError, match=r"may already exist.*--new"):
        make_runner().run(source, None, target, SPLIT)
    assert emulator.stats.creates["openai"] == 1
    # A crash before the create was sent is safe to resume there too? No: the intent row is
    # what the runner sees, so it refuses as well; --new is the documented way out.
    result = make_runner().run(source, tmp_path / "o.jsonl", target, SPLIT, new=True)
    assert result.succeeded


def test_mistral_job_with_model_override(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 5)
    options = JobOptions(model="mistral-small-latest", max_requests_per_batch=2)
    result = make_runner().run(source, tmp_path / "out.jsonl", MISTRAL, options)
    assert result.succeeded
    batches = _batches(emulator, result.view.id)
    assert len(batches) == 3 and {b.model for b in batches} == {"mistral-small-latest"}
    assert [line["custom_id"] for line in read_output(tmp_path / "out.jsonl")] == [
        f"r{i}" for i in range(5)
    ]


def test_validation_problems_name_the_real_lines(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = tmp_path / "bad.jsonl"
    good = orjson.dumps({"custom_id": "a", "body": {"model": "m", "messages": []}}).decode()
    source.write_text(f"{good}\n\n{{not json\n" + good.replace('"a"', '"b"') + "\n\n" + good + "\n")
    with pytest.raises(InputValidationError) as info:
        make_runner().run(source, None, OPENAI, JobOptions(model="other"))
    problems = [(p.line, p.field) for p in info.value.problems]
    assert problems == [(3, None), (6, "custom_id")]
    assert info.value.source == str(source)
    assert emulator.stats.count("POST") == 0  # nothing was sent


def test_wait_tolerates_transient_poll_failures(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    # 8 failures in a row: 6 exhaust the HTTP retries of one poll, the poll loop absorbs that.
    rule = FaultRule("GET */v1/batches/*", "503", times=8, when="before")
    emulator.faults = FaultPlan(rules=[rule])
    source = write_input(tmp_path / "in.jsonl", 3)
    result = make_runner().run(source, tmp_path / "out.jsonl", OPENAI, JobOptions())
    assert result.succeeded
    assert emulator.stats.faults["503:before"] == 8


def test_wait_gives_up_after_timeout(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 3)
    runner = make_runner()
    result = runner.run(source, None, OPENAI, JobOptions(), wait=False)
    # It polls until the timeout is up (not before), then gives up with the batch's state.
    with pytest.raises(WaitTimeoutError, match=r"still (validating|running) after 0\.5s"):
        runner.wait(result.view, timeout=0.5, target=OPENAI)
    view = runner.wait(result.view, timeout=100, target=OPENAI)
    assert view.ended and view.status == "succeeded"


def test_cancel_then_collect_reports_cancelled_requests(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 4)
    runner = make_runner()
    view = runner.run(source, None, OPENAI, JobOptions(), wait=False).view
    with pytest.raises(BatchStateError, match="omnibatch wait"):
        runner.collect(view, tmp_path / "out.jsonl", target=OPENAI)
    view = runner.cancel(view, target=OPENAI)
    assert view.status == "cancelling"
    view = runner.wait(view, target=OPENAI)
    assert view.status == "cancelled"
    view, summary = runner.collect(view, tmp_path / "out.jsonl", target=OPENAI)
    lines = read_output(tmp_path / "out.jsonl")
    assert [line["custom_id"] for line in lines] == ["r0", "r1", "r2", "r3"]
    assert {line["status"] for line in lines} == {"cancelled"}
    assert summary.cancelled == 4


def test_cancel_of_a_batch_that_is_finishing_is_reported_not_fatal(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 4)
    messages: list[str] = []
    runner = make_runner()
    runner.observer.message = messages.append  # type: ignore[method-assign]
    view = runner.run(source, None, OPENAI, JobOptions(max_requests_per_batch=2), wait=False).view
    emulator.advance(0.51 + 2 / 400)  # both batches have run; they are finalizing
    view = runner.cancel(view, target=OPENAI)
    assert [p.status for p in view.parts] == ["finalizing", "finalizing"]
    assert sum("can no longer be cancelled" in m for m in messages) == 2
    assert runner.wait(view, target=OPENAI).status == "succeeded"


def test_embedded_jobs_never_resume(
    make_runner: Callable[..., JobRunner], emulator: Emulator, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 2)
    runner = make_runner()
    embedded = runner.embedded("http://emulator")
    assert embedded.base_url == OPENAI.base_url and embedded.embedded
    first = runner.run(source, None, embedded, JobOptions(), wait=False)
    second = runner.run(source, tmp_path / "o.jsonl", embedded, JobOptions())
    assert second.view.id != first.view.id and not second.resumed
    assert runner.view(first.view.id).job.phase == "abandoned"
    with pytest.raises(BatchStateError, match="embedded emulator"):
        runner.settings_for(first.view.job)


def test_settings_for_a_job_uses_its_recorded_place_and_current_key(
    make_runner: Callable[..., JobRunner], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 1)
    runner = make_runner()
    view = runner.run(source, None, OPENAI, JobOptions(), wait=False).view
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OMNIBATCH_EMULATOR_URL", raising=False)
    target = runner.settings_for(view.job)
    assert (target.base_url, target.api_key) == (OPENAI.base_url, "sk-from-env")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        runner.settings_for(view.job)


def test_resolve_settings(
    make_runner: Callable[..., JobRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "OMNIBATCH_PROVIDER",
        "OMNIBATCH_EMULATOR_URL",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    runner = make_runner()
    with pytest.raises(ConfigurationError, match="no provider configured"):
        runner.resolve(None)
    monkeypatch.setenv("OMNIBATCH_EMULATOR_URL", "http://127.0.0.1:9")
    target = runner.resolve(None)
    assert (target.provider, target.base_url) == ("openai", "http://127.0.0.1:9/openai/v1")
    assert target.key_source == "emulator placeholder"


def test_job_view_status_aggregation(tmp_path: Path) -> None:
    from omnibatch.ledger import JobRecord, PartRecord

    job = JobRecord(
        "job-1",
        "k",
        "openai",
        None,
        None,
        False,
        "in",
        "h",
        {},
        "running",
        4,
        None,
        None,
        tmp_path,
        0.0,
        0.0,
    )

    def view(*statuses: str | None) -> JobView:
        parts = tuple(
            PartRecord(
                "job-1",
                i,
                2,
                tmp_path,
                tmp_path,
                "/v1/chat/completions",
                None,
                None,
                None,
                None,
                None,
                f"b{i}" if s else None,
                s,
                None,
            )
            for i, s in enumerate(statuses)
        )
        return JobView(job, parts)

    assert view("running", None).status == "submitting"
    assert view("validating", "running").status == "validating"
    assert view("succeeded", "running").status == "running"
    assert view("running", "cancelling").status == "cancelling"
    assert view("succeeded", "succeeded").status == "succeeded"
    assert view("succeeded", "expired").status == "expired"
    assert view("cancelled", "failed").status == "failed"
    assert view("succeeded", "cancelled").ended


def test_crash_plan_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = CrashPlan.parse("poll:3")
    assert (plan.point, plan.nth) == ("poll", 3)
    assert CrashPlan.parse("created").nth == 1
    with pytest.raises(ConfigurationError, match="unknown checkpoint 'nope'"):
        CrashPlan.parse("nope")
    with pytest.raises(ConfigurationError, match=">= 1"):
        CrashPlan.parse("poll:0")
    monkeypatch.setenv("OMNIBATCH_CRASH_AT", "after-create:2")
    env_plan = CrashPlan.from_env()
    assert env_plan is not None and (env_plan.point, env_plan.nth) == ("after-create", 2)


def test_http_checkpoints_see_each_request(emulator: Emulator, home: Path, tmp_path: Path) -> None:
    seen: list[str] = []

    class Recorder(CrashPlan):
        def hit(self, point: str) -> None:
            seen.append(point)

    source = write_input(tmp_path / "in.jsonl", 1)
    recorder = Recorder("done")
    with (
        Ledger(home) as ledger,
        JobRunner(
            ledger,
            transport=recorder.transport(emulator.transport()),
            checkpoint=recorder,
            sleep=lambda s: emulator.advance(s),
        ) as runner,
    ):
        runner.run(source, tmp_path / "o.jsonl", OPENAI, JobOptions())
    order = [p for p in seen if p in CHECKPOINTS]
    expected = [
        "prepared",
        "list-answered",  # the search for batches an earlier, forgotten run created
        "before-upload",
        "upload-sent",
        "upload-answered",
        "after-upload",
        "uploaded",
        "before-create",
        "create-sent",
        "create-answered",
        "after-create",
        "created",
    ]
    assert order[: len(expected)] == expected
    assert (
        order.index("before-download")
        < order.index("downloaded")
        < order.index("before-output")
        < order.index("output-written")
        < order.index("done")
    )


def test_runner_does_not_touch_the_network_without_a_transport_request(
    make_runner: Callable[..., JobRunner], tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 1)
    runner = make_runner()
    view, resumed = runner.open(source, OPENAI, JobOptions())
    view = runner.prepare(view, OPENAI)
    assert not resumed and len(view.parts) == 1 and view.status == "submitting"
    assert view.parts[0].part_path.exists()


def test_a_real_job_is_never_sent_to_a_leftover_emulator(
    make_runner: Callable[..., JobRunner], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = write_input(tmp_path / "in.jsonl", 1)
    runner = make_runner()
    view = runner.run(source, None, OPENAI, JobOptions(), wait=False).view
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OMNIBATCH_EMULATOR_URL", "http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="unset it to reach the job"):
        runner.settings_for(view.job)
