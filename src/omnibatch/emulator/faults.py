"""Seeded, reproducible fault injection.

A :class:`FaultPlan` decides, request by request, whether the emulator misbehaves and
how. Kinds:

========== ==================================================================
``429``    rate limited, with ``Retry-After`` (simulated seconds, scaled)
``500``    internal server error (JSON, in the dialect's error shape)
``502``    bad gateway (an HTML page, as a real proxy sends)
``503``    service unavailable (JSON, in the dialect's error shape)
``reset``  the connection is reset (TCP RST) instead of answering
``slow``   the answer is held back for ``slow_delay`` wall seconds
``truncate`` the body is cut short: ``Content-Length`` says N, fewer bytes come
========== ==================================================================

Each fault strikes either ``before`` the request is processed (nothing changed on the
server) or ``after`` it (the state changed, the answer is lost). ``429`` is always
``before`` and ``truncate`` always ``after``.
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "FAULT_KINDS",
    "FaultDecision",
    "FaultKind",
    "FaultPlan",
    "FaultRule",
    "FaultWhen",
]

FaultKind = Literal["429", "500", "502", "503", "reset", "slow", "truncate"]
FaultWhen = Literal["before", "after", "any"]

#: Every kind, in a fixed order (the order matters for seeded reproducibility).
FAULT_KINDS: tuple[FaultKind, ...] = ("429", "500", "502", "503", "reset", "slow", "truncate")
_WHEN: tuple[FaultWhen, ...] = ("before", "after", "any")


def _check_kind(kind: str) -> FaultKind:
    for known in FAULT_KINDS:
        if kind == known:
            return known
    raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")


def _check_when(when: str) -> FaultWhen:
    for known in _WHEN:
        if when == known:
            return known
    raise ValueError(f"unknown fault timing {when!r}; expected before, after or any")


@dataclass
class FaultRule:
    """Inject ``kind`` on requests whose ``"METHOD /path"`` matches ``route``.

    ``route`` is a glob (``"POST */v1/batches"``, ``"GET */content"``, ``"*"``) matched
    against ``"METHOD /full/path"`` (path without the query string, with the dialect
    prefix, e.g. ``"POST /openai/v1/batches"``); a glob without a space is matched
    against the path alone, whatever the method. Prefix it with ``re:`` for a regular
    expression searched in ``"METHOD /full/path"``.

    ``rate`` is the probability for each matching request, ``times`` the maximum
    number of injections (``None``: unlimited), ``when`` is ``"before"`` (nothing
    is processed), ``"after"`` (processed, answer lost) or ``"any"`` (seeded coin).
    """

    route: str
    kind: str
    rate: float = 1.0
    times: int | None = None
    when: str = "any"
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        self.kind = _check_kind(str(self.kind))
        self.when = _check_when(self.when)
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rule rate must be within [0, 1], got {self.rate}")
        if self.times is not None and self.times < 0:
            raise ValueError("fault rule times must be >= 0")
        if self.route.startswith("re:"):
            self._regex: re.Pattern[str] | None = re.compile(self.route[3:])
        else:
            self._regex = None

    def matches(self, method: str, path: str) -> bool:
        target = f"{method.upper()} {path}"
        if self._regex is not None:
            return self._regex.search(target) is not None
        if " " in self.route:
            method_glob, _, path_glob = self.route.partition(" ")
            return fnmatch.fnmatchcase(method.upper(), method_glob.upper()) and (
                fnmatch.fnmatchcase(path, path_glob.strip())
            )
        return fnmatch.fnmatchcase(path, self.route)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


@dataclass(frozen=True)
class FaultDecision:
    """One injected fault: what and when (``before`` or ``after`` processing)."""

    kind: FaultKind
    when: Literal["before", "after"]
    rule: FaultRule | None = None


def _is_download(method: str, path: str) -> bool:
    return method.upper() == "GET" and path.rstrip("/").endswith("/content")


class FaultPlan:
    """Which requests fail, and how; reproducible for a given ``seed``.

    ``FaultPlan(rate=0.1, seed=7)`` makes about one request in ten fail with a kind
    drawn from ``kinds`` (``truncate`` only strikes file downloads in this random mix);
    ``rules`` target routes precisely and are checked first, in order.

    ``retry_after`` is the ``Retry-After`` of a ``429`` in *simulated* seconds (divided
    by the clock's speed on the wire), ``slow_delay`` the hold of a ``slow`` fault in
    wall seconds, ``truncate_fraction`` how much of the body a ``truncate`` sends.
    """

    def __init__(
        self,
        rate: float = 0.0,
        seed: int | None = None,
        kinds: Iterable[str] = FAULT_KINDS,
        rules: Sequence[FaultRule] = (),
        *,
        retry_after: float = 1.0,
        slow_delay: float = 2.0,
        truncate_fraction: float = 0.5,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], got {rate}")
        if retry_after < 0 or slow_delay < 0:
            raise ValueError("retry_after and slow_delay must be >= 0")
        if not 0.0 <= truncate_fraction < 1.0:
            raise ValueError("truncate_fraction must be within [0, 1)")
        self.rate = float(rate)
        self.seed = seed
        self.kinds: tuple[FaultKind, ...] = tuple(_check_kind(str(k)) for k in kinds)
        if rate > 0 and not self.kinds:
            raise ValueError("a fault rate needs at least one fault kind")
        self.rules: list[FaultRule] = list(rules)
        self.retry_after = float(retry_after)
        self.slow_delay = float(slow_delay)
        self.truncate_fraction = float(truncate_fraction)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: list[tuple[str, str, FaultDecision]] = []

    def __repr__(self) -> str:
        return (
            f"FaultPlan(rate={self.rate!r}, seed={self.seed!r}, kinds={list(self.kinds)!r}, "
            f"rules={self.rules!r})"
        )

    def reset(self) -> None:
        """Start the seeded sequence again and re-arm every rule."""
        with self._lock:
            self._rng = random.Random(self.seed)
            for rule in self.rules:
                rule.fired = 0
            self.injected.clear()

    def add_rule(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def _timing(self, kind: FaultKind, when: FaultWhen) -> Literal["before", "after"]:
        if kind == "429":
            return "before"
        if kind == "truncate":
            return "after"
        if when == "before":
            return "before"
        if when == "after":
            return "after"
        return "before" if self._rng.random() < 0.5 else "after"

    def decide(self, method: str, path: str) -> FaultDecision | None:
        """The fault for this request, or ``None``. Consumes the seeded sequence."""
        with self._lock:
            for rule in self.rules:
                if rule.exhausted or not rule.matches(method, path):
                    continue
                if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                    continue
                rule.fired += 1
                kind = _check_kind(rule.kind)
                decision = FaultDecision(kind, self._timing(kind, _check_when(rule.when)), rule)
                self.injected.append((method.upper(), path, decision))
                return decision
            if self.rate <= 0.0 or self._rng.random() >= self.rate:
                return None
            kinds = self.kinds if _is_download(method, path) else self._no_truncate
            if not kinds:
                return None
            kind = kinds[self._rng.randrange(len(kinds))]
            decision = FaultDecision(kind, self._timing(kind, "any"))
            self.injected.append((method.upper(), path, decision))
            return decision

    @property
    def _no_truncate(self) -> tuple[FaultKind, ...]:
        return tuple(k for k in self.kinds if k != "truncate")

    # -- configuration files -------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        """Build a plan from the TOML structure documented in ``docs/emulator.md``.

        Keys: ``rate``, ``seed``, ``kinds``, ``retry_after``, ``slow_delay``,
        ``truncate_fraction`` and a list of ``rules`` (tables with ``route``, ``kind``,
        ``rate``, ``times``, ``when``). Everything may also sit under a ``[faults]`` table.
        """
        if "faults" in data and isinstance(data["faults"], Mapping):
            data = data["faults"]
        known = {"rate", "seed", "kinds", "retry_after", "slow_delay", "truncate_fraction"}
        unknown = set(data) - known - {"rules"}
        if unknown:
            raise ValueError(f"unknown fault configuration keys: {', '.join(sorted(unknown))}")
        rules = []
        for i, raw in enumerate(data.get("rules", ())):
            if not isinstance(raw, Mapping):
                raise ValueError(f"fault rule #{i + 1} must be a table")
            extra = set(raw) - {"route", "kind", "rate", "times", "when"}
            if extra:
                raise ValueError(f"fault rule #{i + 1}: unknown keys {', '.join(sorted(extra))}")
            if "route" not in raw or "kind" not in raw:
                raise ValueError(f"fault rule #{i + 1} needs a route and a kind")
            times = raw.get("times")
            rules.append(
                FaultRule(
                    route=str(raw["route"]),
                    kind=str(raw["kind"]),
                    rate=float(raw.get("rate", 1.0)),
                    times=None if times is None else int(times),
                    when=str(raw.get("when", "any")),
                )
            )
        seed = data.get("seed")
        return cls(
            rate=float(data.get("rate", 0.0)),
            seed=None if seed is None else int(seed),
            kinds=[str(k) for k in data.get("kinds", FAULT_KINDS)],
            rules=rules,
            retry_after=float(data.get("retry_after", 1.0)),
            slow_delay=float(data.get("slow_delay", 2.0)),
            truncate_fraction=float(data.get("truncate_fraction", 0.5)),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> FaultPlan:
        """Load a plan from a TOML file (see :meth:`from_dict` for the keys)."""
        with open(path, "rb") as fh:
            return cls.from_dict(tomllib.load(fh))
