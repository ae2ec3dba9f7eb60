"""The provider contract suite: lifecycle scenarios every provider must pass.

A provider's test module subclasses :class:`ProviderContract` and names the provider::

    from omnibatch.testing import ProviderContract

    class TestMyGateway(ProviderContract):
        provider = "mygateway"
        model = "my-model-1"

pytest then runs every scenario below against the in-process emulator (the provider's own
emulator dialect behind ``httpx.MockTransport``, on a :class:`~omnibatch.emulator.ManualClock`,
so ``wait()`` finishes instantly and deterministically), through both ``BatchClient`` and
``AsyncBatchClient``, and once over a real 127.0.0.1 socket. Scenarios a provider cannot run
(no cancel, no listing, no stored files) are skipped with the capability that is missing.

Customise with class attributes (``adapter_cls``, ``dialect_cls``, ``model``, ``endpoint``,
``api_key``, ``create_options``) and by overriding the hooks ``make_request``,
``set_raw_status`` and ``emulator_config``. Importing this module needs pytest.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import pytest

from omnibatch._answers import line_normalizer
from omnibatch._exceptions import (
    AuthenticationError,
    InputValidationError,
    NotFoundError,
    ProviderServerError,
)
from omnibatch._http import RetryPolicy
from omnibatch._lifecycle import PollPolicy, can_reconcile
from omnibatch._plugins import check_adapter_class, get_registry
from omnibatch._status import BatchStatus, UnknownStatusWarning
from omnibatch.adapter import ProviderAdapter, ResultSource
from omnibatch.client import AsyncBatchClient, BatchClient
from omnibatch.emulator import (
    ERROR_MARKER,
    Dialect,
    Emulator,
    EmulatorConfig,
    FaultPlan,
    FaultRule,
    ManualClock,
    serve,
)
from omnibatch.models import Batch, BatchRequest, BatchResult, ResultStatus
from omnibatch.results import complete_result

__all__ = ["ContractDriver", "ContractHarness", "ProviderContract"]

T = TypeVar("T")

MODES = ("sync", "async")
BOGUS_STATUS = "omnibatch_contract_bogus_status"
_ROOT = "http://emulator.invalid"


# --- drivers: one synchronous face over both clients -----------------------------------------


class ContractDriver:
    """Runs the client verbs the scenarios need, for ``BatchClient`` or ``AsyncBatchClient``.

    The async client really runs on an event loop (one ``asyncio.Runner`` per driver), so the
    scenarios are written once and exercise both clients' own code paths.
    """

    def __init__(self, client: BatchClient | AsyncBatchClient) -> None:
        self.client = client
        self._runner = asyncio.Runner() if isinstance(client, AsyncBatchClient) else None
        self._closed = False

    @property
    def mode(self) -> str:
        return "async" if self._runner is not None else "sync"

    def _do(self, value: Any) -> Any:
        if self._runner is not None:
            return self._runner.run(value)
        return value

    def submit(self, source: Any, **kwargs: Any) -> Batch:
        batch: Batch = self._do(self.client.submit(source, **kwargs))
        return batch

    def wait(self, batch_id: str, **kwargs: Any) -> Batch:
        batch: Batch = self._do(self.client.wait(batch_id, **kwargs))
        return batch

    def retrieve(self, batch_id: str) -> Batch:
        batch: Batch = self._do(self.client.retrieve(batch_id))
        return batch

    def cancel(self, batch_id: str) -> Batch:
        batch: Batch = self._do(self.client.cancel(batch_id))
        return batch

    def results(
        self, batch_id: str, expected_ids: Iterable[str] | None = None
    ) -> list[BatchResult]:
        result_set = self._do(self.client.results(batch_id, expected_ids=expected_ids))
        return list(result_set)

    def list_all(self, page_size: int) -> list[Batch]:
        if isinstance(self.client, AsyncBatchClient):
            batches: list[Batch] = self._do(_collect(self.client.list(page_size=page_size)))
            return batches
        return list(self.client.list(page_size=page_size))

    def list_page(self, page_size: int) -> Any:
        return self._do(self.client.list_page(page_size=page_size))

    def cleanup(self, batch_id: str) -> list[str]:
        deleted: list[str] = self._do(self.client.cleanup(batch_id))
        return deleted

    def download_file(self, file_id: str) -> Path:
        path: Path = self._do(self.client.download_file(file_id))
        return path

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if isinstance(self.client, AsyncBatchClient):
            assert self._runner is not None
            self._runner.run(self.client.aclose())
            self._runner.close()
        else:
            self.client.close()


async def _collect(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]


# --- the harness: one emulator and its clients per test --------------------------------------


@dataclass
class ContractHarness:
    """The emulator a scenario runs against, and factories for clients wired to it."""

    contract: ProviderContract
    adapter_cls: type[ProviderAdapter]
    dialect_cls: type[Dialect]
    workdir: Path
    clock: ManualClock = field(default_factory=ManualClock)
    emulator: Emulator = field(init=False)
    _drivers: list[ContractDriver] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.emulator = self.new_emulator()

    def new_emulator(self, faults: FaultPlan | None = None, api_key: str | None = None) -> Emulator:
        config = self.contract.emulator_config()
        config.faults = faults
        config.api_key = api_key
        return Emulator(dialects=[self.dialect_cls], config=config, clock=self.clock)

    @property
    def dialect_name(self) -> str:
        return self.dialect_cls.name

    @property
    def creates(self) -> int:
        """How many batches the emulator has created for this provider."""
        return self.emulator.stats.creates[self.dialect_name]

    def base_url(self, root: str = _ROOT) -> str:
        return root.rstrip("/") + self.adapter_cls.emulator_prefix

    def driver(
        self,
        mode: str,
        *,
        api_key: str | None = None,
        root: str | None = None,
        handler: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> ContractDriver:
        """A driver over a new client of ``mode`` (``sync`` or ``async``) talking to the
        emulator: in process through ``handler`` (default: the emulator's), or over the
        network to a server at ``root``."""
        clock = self.clock
        transport = None if root else httpx.MockTransport(handler or self.emulator.handle)

        def sleep(seconds: float) -> None:
            clock.advance(seconds)

        async def async_sleep(seconds: float) -> None:
            clock.advance(seconds)

        kwargs: dict[str, Any] = {
            "api_key": api_key or self.contract.api_key,
            "base_url": self.base_url(root or _ROOT),
            "clock": clock.now,
            "workdir": self.workdir / f"{mode}-{len(self._drivers)}",
            "seed": 7,
            "retry": RetryPolicy(max_attempts=6),
            "poll": PollPolicy(initial=1.0, multiplier=2.0, maximum=30.0),
            "options": dict(self.contract.create_options),
        }
        if self.contract.adapter_cls is not None:
            kwargs["adapter"] = self.adapter_cls(
                api_key=kwargs["api_key"], base_url=kwargs["base_url"], options=kwargs["options"]
            )
            provider = None
        else:
            provider = self.contract.provider
        client: BatchClient | AsyncBatchClient
        if mode == "sync":
            client = BatchClient(provider, transport=transport, sleep=sleep, **kwargs)
        elif mode == "async":
            client = AsyncBatchClient(provider, transport=transport, sleep=async_sleep, **kwargs)
        else:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        driver = ContractDriver(client)
        self._drivers.append(driver)
        return driver

    def requests(self, count: int, *, failing: Iterable[int] = ()) -> list[dict[str, Any]]:
        """``count`` input lines; those at the ``failing`` indexes carry the emulator's error
        marker, so the emulator fails them inside the batch."""
        bad = set(failing)
        marker = ERROR_MARKER.decode()
        lines = []
        for index in range(count):
            text = f"Contract request number {index}: reply with one short sentence."
            if index in bad:
                text += f" {marker}"
            lines.append(self.contract.make_request(index, text))
        return lines

    def create_route(self) -> str:
        """The exact ``METHOD /path`` of the provider's create call, found by watching which
        request makes a throwaway emulator create a batch."""
        probe = Emulator(
            dialects=[self.dialect_cls], config=self.contract.emulator_config(), clock=self.clock
        )
        found: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            before = sum(probe.stats.creates.values())
            response = probe.handle(request)
            if sum(probe.stats.creates.values()) > before:
                found.append(f"{request.method} {request.url.path}")
            return response

        self.driver("sync", handler=handler).submit(self.requests(1))
        if len(found) != 1:
            pytest.fail(f"expected one create request while submitting, saw {found!r}")
        return found[0]

    def close(self) -> None:
        for driver in self._drivers:
            driver.close()
        self._drivers.clear()


def _route_rule(route: str, kind: str, *, when: str = "before", times: int = 1) -> FaultRule:
    return FaultRule(route="re:^" + re.escape(route) + "$", kind=kind, times=times, when=when)


def _ids(lines: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(line["custom_id"]) for line in lines]


def _by_id(results: list[BatchResult]) -> dict[str, BatchResult]:
    return {r.custom_id: r for r in results}


def _assert_each_once(results: list[BatchResult], expected: list[str]) -> None:
    seen = [r.custom_id for r in results]
    duplicates = sorted({i for i in seen if seen.count(i) > 1})
    assert not duplicates, f"custom ids returned more than once: {duplicates}"
    assert sorted(seen) == sorted(expected), (
        f"results do not cover the input exactly: missing {sorted(set(expected) - set(seen))}, "
        f"unexpected {sorted(set(seen) - set(expected))}"
    )


# --- the suite ---------------------------------------------------------------------------------


class ProviderContract:
    """Base class of a provider's contract tests (see the module docstring).

    Class attributes:
        provider: the provider name, as registered (required).
        adapter_cls: the adapter class; default: the registered one for ``provider``.
        dialect_cls: the emulator dialect; default: the registered dialect named like the
            provider (or mounted where the adapter's ``emulator_prefix`` points).
        model: the model the sample requests use.
        endpoint: the batch endpoint of the sample requests.
        api_key: the key the clients send (the suite checks it never leaks).
        create_options: provider options passed to the client (``options=``).
    """

    provider: ClassVar[str] = ""
    adapter_cls: ClassVar[type[ProviderAdapter] | None] = None
    dialect_cls: ClassVar[type[Dialect] | None] = None
    model: ClassVar[str] = "contract-model-1"
    endpoint: ClassVar[str] = "/v1/chat/completions"
    api_key: ClassVar[str] = "contract-key-3f9a1c0e7b5d"
    create_options: ClassVar[Mapping[str, Any]] = {}

    # --- hooks a provider may override ---------------------------------------------------------

    def make_request(self, index: int, text: str) -> dict[str, Any]:
        """Input line ``index`` (omnibatch's format) whose prompt is ``text``. Keep ``text`` in
        the body verbatim: the suite puts the emulator's error marker in it."""
        return {
            "custom_id": f"request-{index}",
            "method": "POST",
            "url": self.endpoint,
            "body": {
                "model": self.model,
                "messages": [{"role": "user", "content": text}],
                "max_tokens": 32,
            },
        }

    def set_raw_status(self, batch: Batch, status: str) -> dict[str, Any]:
        """A copy of ``batch.raw`` (the provider's batch object) with its raw status replaced
        by ``status``. The default replaces every value equal to ``batch.provider_status``,
        however deeply nested; override it if that is ambiguous for your batch object."""
        current = batch.provider_status

        def swap(value: Any) -> Any:
            if isinstance(value, Mapping):
                return {k: swap(v) for k, v in value.items()}
            if isinstance(value, list):
                return [swap(v) for v in value]
            return status if value == current else value

        swapped: dict[str, Any] = swap(batch.raw)
        return swapped

    def emulator_config(self) -> EmulatorConfig:
        """The emulator's settings: one request per simulated second, so a scenario can stop a
        batch part-way (cancel, expiry) at a known point."""
        return EmulatorConfig(
            seed=1234,
            validating_seconds=1.0,
            requests_per_second=1.0,
            finalizing_seconds=1.0,
            cancelling_seconds=1.0,
        )

    # --- resolution --------------------------------------------------------------------------

    def resolve_adapter_cls(self) -> type[ProviderAdapter]:
        if self.adapter_cls is not None:
            return self.adapter_cls
        if not self.provider:
            pytest.fail(f"{type(self).__name__} must set provider = '<name>'")
        return get_registry().provider(self.provider)

    def resolve_dialect_cls(self, adapter_cls: type[ProviderAdapter]) -> type[Dialect]:
        if self.dialect_cls is not None:
            return self.dialect_cls
        dialects = {name: entry.dialect for name, entry in get_registry().dialects.items()}
        if adapter_cls.name in dialects:
            return dialects[adapter_cls.name]
        for cls in dialects.values():
            mount = cls.prefix.rstrip("/")
            if mount and adapter_cls.emulator_prefix.startswith(mount + "/"):
                return cls
        pytest.fail(
            f"no emulator dialect for provider {adapter_cls.name!r}: register one with the "
            "register_emulator_dialects hook, or set dialect_cls on the test class"
        )

    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[ContractHarness]:
        adapter_cls = self.resolve_adapter_cls()
        harness = ContractHarness(
            self, adapter_cls, self.resolve_dialect_cls(adapter_cls), tmp_path
        )
        try:
            yield harness
        finally:
            harness.close()

    # --- static checks -------------------------------------------------------------------------

    def test_adapter_class_is_valid(self) -> None:
        cls = self.resolve_adapter_cls()
        assert check_adapter_class(cls) == [], check_adapter_class(cls)
        if self.adapter_cls is None:
            assert cls.name == self.provider

    def test_status_map_covers_documented_statuses(self) -> None:
        cls = self.resolve_adapter_cls()
        assert cls.documented_statuses, (
            f"{cls.__name__}.documented_statuses is empty: list every raw status the provider "
            "documents, so the suite can check each is mapped"
        )
        unmapped = sorted(set(cls.documented_statuses) - set(cls.status_map))
        assert not unmapped, f"{cls.__name__}.status_map misses documented statuses {unmapped}"
        for raw, status in cls.status_map.items():
            assert isinstance(status, BatchStatus), f"status_map[{raw!r}] is not a BatchStatus"
        reached = set(cls.status_map.values())
        assert BatchStatus.SUCCEEDED in reached, "no raw status maps to BatchStatus.SUCCEEDED"
        assert BatchStatus.UNKNOWN not in reached, (
            "status_map must not map a documented status to UNKNOWN (it is for undocumented ones)"
        )

    def test_emulator_prefix_matches_dialect(self, harness: ContractHarness) -> None:
        dialect = harness.dialect_cls
        mounted = dialect.prefix.rstrip("/") + dialect.base_url_suffix
        assert harness.adapter_cls.emulator_prefix == mounted, (
            f"{harness.adapter_cls.__name__}.emulator_prefix is "
            f"{harness.adapter_cls.emulator_prefix!r} but the dialect serves the API at "
            f"{mounted!r}; OMNIBATCH_EMULATOR_URL would point the client at the wrong place"
        )

    # --- statuses through the real batch object -------------------------------------------------

    def test_parse_batch_normalizes_every_documented_status(self, harness: ContractHarness) -> None:
        batch = harness.driver("sync").submit(harness.requests(1))
        adapter = harness.adapter_cls(api_key=self.api_key)
        for raw_status in sorted(harness.adapter_cls.documented_statuses):
            parsed = adapter.parse_batch(self.set_raw_status(batch, raw_status))
            assert parsed.provider_status == raw_status
            assert parsed.status is harness.adapter_cls.status_map[raw_status], raw_status

    def test_unknown_status_becomes_unknown_with_warning(self, harness: ContractHarness) -> None:
        batch = harness.driver("sync").submit(harness.requests(1))
        adapter = harness.adapter_cls(api_key=self.api_key)
        raw = self.set_raw_status(batch, BOGUS_STATUS)
        with pytest.warns(UnknownStatusWarning, match=BOGUS_STATUS):
            parsed = adapter.parse_batch(raw)
        assert parsed.status is BatchStatus.UNKNOWN
        assert parsed.provider_status == BOGUS_STATUS
        assert not parsed.is_terminal

    # --- the lifecycle ---------------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    def test_submit_wait_results(self, harness: ContractHarness, mode: str) -> None:
        driver = harness.driver(mode)
        lines = harness.requests(5)
        batch = driver.submit(lines)
        assert batch.provider == harness.adapter_cls.name
        assert harness.creates == 1
        done = driver.wait(batch.id)
        assert done.id == batch.id
        assert done.status is BatchStatus.SUCCEEDED, done.provider_status
        assert done.request_counts.total == len(lines)
        assert done.request_counts.succeeded == len(lines)
        results = driver.results(batch.id)
        _assert_each_once(results, _ids(lines))
        for result in results:
            assert result.status is ResultStatus.SUCCEEDED, result
            assert result.ok and result.error is None
            assert result.batch_id == batch.id
            assert isinstance(result.response, dict) and result.response, result
            assert result.usage is not None, f"{result.custom_id}: no usage on a success"
            assert (result.usage.input_tokens or 0) > 0, result.usage

    @pytest.mark.parametrize("mode", MODES)
    def test_request_failures_come_back_errored(self, harness: ContractHarness, mode: str) -> None:
        driver = harness.driver(mode)
        lines = harness.requests(4, failing=[1, 3])
        batch = driver.submit(lines)
        done = driver.wait(batch.id)
        assert done.status is BatchStatus.SUCCEEDED, done.provider_status
        assert done.request_counts.failed == 2
        assert done.request_counts.succeeded == 2
        results = _by_id(driver.results(batch.id))
        _assert_each_once(list(results.values()), _ids(lines))
        for index, line in enumerate(lines):
            result = results[line["custom_id"]]
            if index in (1, 3):
                assert result.status is ResultStatus.ERRORED, result
                assert result.error is not None and result.error.message, result
                assert result.error.code != "missing_result", "the provider's error was lost"
            else:
                assert result.status is ResultStatus.SUCCEEDED, result

    def test_fast_paths_agree_with_their_slow_twins(self, harness: ContractHarness) -> None:
        """``encode_line`` gives what ``encode_request`` gives, and ``output_line`` what
        ``parse_result_line(...).to_output_line()`` gives, on every line the emulator writes
        (successes, in-batch failures, and requests an expiry stopped)."""
        adapter = harness.adapter_cls(api_key=self.api_key)
        lines = harness.requests(6, failing=[1])
        for line in lines:
            body = dict(line["body"])
            slow = adapter.encode_request(
                BatchRequest(custom_id=line["custom_id"], url=line["url"], body=line["body"])
            )
            assert adapter.encode_line(line["custom_id"], line["url"], body) == slow
            assert body == line["body"], "encode_line must not modify the body"
        driver = harness.driver("sync")
        batch = driver.submit(lines)
        config = self.emulator_config()
        harness.clock.advance(config.validating_seconds + 3.5 / config.requests_per_second)
        harness.emulator.expire(batch.id)
        driver.wait(batch.id)
        records = [r.raw for r in driver.results(batch.id) if r.raw]
        if type(adapter).output_line is not ProviderAdapter.output_line:
            assert records, "output_line is overridden but results keep no raw record"
        source = ResultSource("results", name="contract")
        # Both as the merge writes them: normalized by the adapter's answer reader.
        normalize = line_normalizer(adapter.read_answer)
        for record in records:
            result = complete_result(adapter.parse_result_line(record, source), adapter.read_answer)
            assert normalize(adapter.output_line(record, source)) == result.to_output_line(), record

    @pytest.mark.parametrize("mode", MODES)
    def test_cancel_keeps_partial_results(self, harness: ContractHarness, mode: str) -> None:
        if not harness.adapter_cls.capabilities.cancel:
            pytest.skip(f"{harness.adapter_cls.name} cannot cancel batches (capabilities.cancel)")
        driver = harness.driver(mode)
        lines = harness.requests(6)
        batch = driver.submit(lines)
        config = self.emulator_config()
        # Stop after two requests have run (validation, then one request per second).
        harness.clock.advance(config.validating_seconds + 2.5 / config.requests_per_second)
        cancelled = driver.cancel(batch.id)
        assert cancelled.status in (BatchStatus.CANCELLING, BatchStatus.CANCELLED), cancelled
        done = driver.wait(batch.id)
        assert done.status is BatchStatus.CANCELLED, done.provider_status
        results = driver.results(batch.id, expected_ids=_ids(lines))
        _assert_each_once(results, _ids(lines))
        outcomes = [r.status for r in results]
        assert outcomes.count(ResultStatus.SUCCEEDED) == 2, outcomes
        assert outcomes.count(ResultStatus.CANCELLED) == 4, outcomes

    @pytest.mark.parametrize("mode", MODES)
    def test_expiry_keeps_partial_results(self, harness: ContractHarness, mode: str) -> None:
        driver = harness.driver(mode)
        lines = harness.requests(6)
        batch = driver.submit(lines)
        config = self.emulator_config()
        harness.clock.advance(config.validating_seconds + 2.5 / config.requests_per_second)
        harness.emulator.expire(batch.id)
        done = driver.wait(batch.id)
        assert done.status is BatchStatus.EXPIRED, done.provider_status
        results = driver.results(batch.id, expected_ids=_ids(lines))
        _assert_each_once(results, _ids(lines))
        outcomes = [r.status for r in results]
        assert outcomes.count(ResultStatus.SUCCEEDED) == 2, outcomes
        assert outcomes.count(ResultStatus.EXPIRED) == 4, outcomes

    @pytest.mark.parametrize("mode", MODES)
    def test_list_pages_newest_first(self, harness: ContractHarness, mode: str) -> None:
        if not harness.adapter_cls.capabilities.list_batches:
            pytest.skip(
                f"{harness.adapter_cls.name} cannot list batches (capabilities.list_batches)"
            )
        driver = harness.driver(mode)
        created = []
        for _ in range(5):
            created.append(driver.submit(harness.requests(1)).id)
            harness.clock.advance(2.0)  # distinct creation times
        first = driver.list_page(page_size=2)
        assert len(first.items) <= 2 and first.next_cursor, "page_size=2 must give several pages"
        listed = [batch.id for batch in driver.list_all(page_size=2)]
        assert listed == created[::-1], "every batch exactly once, newest first"

    @pytest.mark.parametrize("mode", MODES)
    def test_invalid_input_is_refused_before_any_request(
        self, harness: ContractHarness, mode: str
    ) -> None:
        import orjson

        good = harness.requests(3)
        good[2]["custom_id"] = good[0]["custom_id"]
        path = harness.workdir / "invalid.jsonl"
        path.write_bytes(
            orjson.dumps(good[0])
            + b"\n{not json\n"
            + orjson.dumps(good[1])
            + b"\n"
            + orjson.dumps(good[2])
            + b"\n"
        )
        driver = harness.driver(mode)
        with pytest.raises(InputValidationError) as caught:
            driver.submit(path)
        lines = {p.line for p in caught.value.problems}
        assert lines == {2, 4}, caught.value.problems
        assert "line 2" in str(caught.value) and "line 4" in str(caught.value)
        assert "duplicate" in str(caught.value)
        assert len(harness.emulator.stats.requests) == 0, "nothing may be sent for a bad input"

    @pytest.mark.parametrize("mode", MODES)
    def test_transient_faults_never_create_twice(self, harness: ContractHarness, mode: str) -> None:
        route = harness.create_route()
        rules = [
            _route_rule(route, "429"),  # refused: the HTTP layer retries it
            _route_rule(route, "503", when="before"),  # ambiguous to the client: reconcile
        ]
        reconcilable = can_reconcile(harness.adapter_cls(api_key=self.api_key))
        if reconcilable:
            # Created, answer lost: only the listing can tell.
            rules.append(_route_rule(route, "500", when="after"))
        rules.append(FaultRule(route="re:^GET ", kind="503", times=2, when="before"))
        harness.emulator = harness.new_emulator(faults=FaultPlan(rules=rules, seed=3))
        driver = harness.driver(mode)
        lines = harness.requests(3)
        if not reconcilable:
            with pytest.raises(ProviderServerError):
                driver.submit(lines)
            assert harness.creates == 0, "an ambiguous create must not be resent blindly"
            return
        batch = driver.submit(lines)
        assert harness.creates == 1, f"{harness.creates} batches created for one submit"
        assert sum(harness.emulator.stats.faults.values()) >= 4
        done = driver.wait(batch.id)
        assert done.status is BatchStatus.SUCCEEDED, done.provider_status
        results = driver.results(batch.id)
        _assert_each_once(results, _ids(lines))
        assert all(r.ok for r in results)

    @pytest.mark.parametrize("mode", MODES)
    def test_results_joined_by_custom_id_not_position(
        self, harness: ContractHarness, mode: str
    ) -> None:
        driver = harness.driver(mode)
        lines = []
        for index in range(8):
            # Prompts of growing length: each result's token count tells which request it is.
            words = " ".join(["word"] * (6 * (index + 1)))
            lines.append(self.make_request(index, f"Request {index}: {words}"))
        batch = driver.submit(lines)
        driver.wait(batch.id)
        results = driver.results(batch.id)
        _assert_each_once(results, _ids(lines))
        assert [r.custom_id for r in results] != _ids(lines), (
            "the emulator writes results out of order; this provider returned them in input "
            "order, so the join cannot be checked"
        )
        by_id = _by_id(results)
        tokens = []
        for line in lines:
            usage = by_id[line["custom_id"]].usage
            assert usage is not None and usage.input_tokens is not None
            tokens.append(usage.input_tokens)
        assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens), (
            f"results attached to the wrong requests (input tokens in input order: {tokens})"
        )

    @pytest.mark.parametrize("mode", MODES)
    def test_cleanup_deletes_the_batch_files(self, harness: ContractHarness, mode: str) -> None:
        caps = harness.adapter_cls.capabilities
        if not caps.file_upload or not caps.delete_files:
            pytest.skip(
                f"{harness.adapter_cls.name} stores no files to delete "
                "(capabilities.file_upload / delete_files)"
            )
        driver = harness.driver(mode)
        lines = harness.requests(3, failing=[0])
        batch = driver.submit(lines)
        done = driver.wait(batch.id)
        assert len(driver.results(batch.id)) == 3
        owned = set(harness.adapter_cls(api_key=self.api_key).files_of(done))
        assert set(done.input_file_ids) <= owned and set(done.output_file_ids) <= owned
        assert done.input_file_ids and (done.output_file_ids or done.error_file_ids)
        deleted = driver.cleanup(batch.id)
        assert set(deleted) == owned
        for file_id in deleted:
            assert harness.emulator.engine.get_file(file_id) is None, f"{file_id} still stored"
        with pytest.raises(NotFoundError):
            driver.download_file(deleted[0])

    # --- credentials ------------------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    def test_wrong_key_is_an_authentication_error_that_never_shows_the_key(
        self, harness: ContractHarness, mode: str
    ) -> None:
        harness.emulator = harness.new_emulator(api_key="the-only-accepted-key")
        driver = harness.driver(mode)
        with pytest.raises(AuthenticationError) as caught:
            driver.submit(harness.requests(1))
        exc = caught.value
        for text in (
            str(exc),
            repr(exc),
            repr(exc.body),
            repr(driver.client),
            repr(driver.client.adapter),
        ):
            assert self.api_key not in text, "the API key leaked into an error or repr"
        good = harness.driver(mode, api_key="the-only-accepted-key")
        batch = good.submit(harness.requests(1))
        assert good.wait(batch.id).status is BatchStatus.SUCCEEDED

    # --- over a real socket ----------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    def test_lifecycle_over_a_real_socket(self, harness: ContractHarness, mode: str) -> None:
        with serve(host="127.0.0.1", port=0, emulator=harness.emulator) as server:
            driver = harness.driver(mode, root=server.base_url)
            lines = harness.requests(3, failing=[2])
            batch = driver.submit(lines)
            done = driver.wait(batch.id)
            assert done.status is BatchStatus.SUCCEEDED, done.provider_status
            results = _by_id(driver.results(batch.id))
            _assert_each_once(list(results.values()), _ids(lines))
            assert [results[i].status for i in _ids(lines)] == [
                ResultStatus.SUCCEEDED,
                ResultStatus.SUCCEEDED,
                ResultStatus.ERRORED,
            ]
            driver.close()
