"""A lab that works while it measures: the next synthesis overlaps this sample's measurement.

The MAOSIC authors start the next synthesis while the previous sample is still characterized.
A compiled experiment splits where the reactor's part ends: the *synthesis* is everything up
to the last call that changes what leaves the reactor (pumps, heater, valves); the
*characterization* is the rest (take the sample, carry it to the spectrometer, scan, clean up).
While experiment n's characterization runs on a second daemon client, experiment n+1's
synthesis runs on the first, under the same lab lease (both clients carry its epoch, and the
daemon lets moving calls of one holder run side by side: hardware_interface/motion_gate.py).

Two rules keep the overlap physically right, whatever the rig:

* **The sample is taken first.** The characterization's first call takes the sample (the arm
  draws it at the reactor outlet, or the flow cell reads it); the next synthesis starts only
  after that call has returned, so the next product can never reach the previous sample.
* **No module is shared.** If the next synthesis would use a module the characterization still
  uses after its first call (the same arm, a valve, a ``system.*`` call), the next synthesis waits
  until the characterization has finished: the rig does not allow that overlap.

The daemon's interlocks hold on every call as before: overlapping changes when calls run, never
what they may do. A plan without such a split (no reactor call, no spectrometer call after it,
or a single characterization call, where nothing could overlap) runs one experiment at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from maosic.batching import group_calls

Call = dict[str, Any]
Resource = tuple[str, str]  # (kind, module id); id "*" = every module of the kind

REACTOR_KINDS = frozenset({"pump", "heater", "valve", "peristaltic"})
MEASURE_KIND = "spectrometer"
EVERYTHING: Resource = ("*", "*")
CLOCK: Call = {"method": "system.status", "params": {}}  # the lab clock, read with a stage


def _kind(call: Call) -> str:
    return str(call["method"]).split(".", 1)[0]


def _reads_only(call: Call) -> bool:
    return str(call["method"]).rsplit(".", 1)[-1] in ("status", "describe", "state")


def resources(call: Call) -> set[Resource]:
    """The modules a call occupies: the ones its parameters name, else every module of its
    kind (a call that names none acts on the rig's only one, or lets the daemon choose)."""
    if _reads_only(call):
        return set()
    kind = _kind(call)
    if kind == "system":
        return {EVERYTHING}
    params = call.get("params") or {}
    ids = {params[key] for key in ("pump", "module") if isinstance(params.get(key), str)}
    moves = params.get("moves")
    if isinstance(moves, list):
        ids |= {m["pump"] for m in moves if isinstance(m, dict) and isinstance(m.get("pump"), str)}
    return {(kind, module) for module in ids} or {(kind, "*")}


def _clash(a: Iterable[Resource], b: Iterable[Resource]) -> bool:
    b = list(b)
    for kind_a, id_a in a:
        for kind_b, id_b in b:
            if "*" in (kind_a, kind_b):
                return True
            if kind_a == kind_b and (id_a == id_b or "*" in (id_a, id_b)):
                return True
    return False


@dataclass(frozen=True)
class Split:
    synthesis: list[Call]
    characterization: list[Call]

    def may_overlap(self, next_synthesis: list[Call]) -> bool:
        """Whether ``next_synthesis`` may run beside this characterization after its first
        call (no module in common)."""
        later = set().union(*(resources(c) for c in self.characterization[1:]))
        ahead = set().union(*(resources(c) for c in next_synthesis))
        return not _clash(later, ahead)


def split(plan: list[Call]) -> Split | None:
    """The plan's synthesis and characterization, or None when nothing could overlap."""
    reactor = [i for i, call in enumerate(plan) if _kind(call) in REACTOR_KINDS]
    if not reactor:
        return None
    cut = reactor[-1] + 1
    synthesis, characterization = plan[:cut], plan[cut:]
    if len(characterization) < 2 or not any(_kind(c) == MEASURE_KIND for c in characterization):
        return None
    return Split(synthesis, characterization)


@dataclass
class StageResult:
    """What a stage's calls returned: the spectra by method result and the lab clock reads."""

    results: list[tuple[Call, Any]] = field(default_factory=list)
    clocks: list[float | None] = field(default_factory=list)
    round_trips: int = 0


def run_stage(
    call_batch: Callable[[list[tuple[str, dict[str, Any]]]], list[Any]],
    calls: list[Call],
    *,
    clock_first: bool = False,
    clock_last: bool = False,
    first_alone: bool = False,
    after_first: Callable[[], None] | None = None,
    before_group: Callable[[list[Call]], None] | None = None,
) -> StageResult:
    """Send ``calls`` in round trips (maosic.batching), reading the lab clock before and/or
    after; with ``first_alone`` the first call goes in a round trip of its own and
    ``after_first`` runs once it has returned (the sample has been taken)."""
    out = StageResult()
    head: list[Call] = [CLOCK] if clock_first else []
    tail: list[Call] = [CLOCK] if clock_last else []
    if first_alone and calls:
        groups = [[*head, calls[0]], *group_calls([*calls[1:], *tail])]
    else:
        groups = group_calls([*head, *calls, *tail])
    for index, group in enumerate(groups):
        if before_group is not None:
            before_group(group)
        replies = call_batch([(call["method"], call["params"]) for call in group])
        out.round_trips += 1
        for call, reply in zip(group, replies, strict=True):
            if call is CLOCK:
                out.clocks.append(reply.get("clock_s") if isinstance(reply, dict) else None)
            else:
                out.results.append((call, reply))
        if index == 0 and first_alone and after_first is not None:
            after_first()
    return out


class Flight:
    """One experiment's characterization, running on its own thread and daemon client."""

    def __init__(self, name: str, work: Callable[[Callable[[], None]], StageResult]) -> None:
        self.sample_taken = threading.Event()
        self._work = work
        self._result: StageResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Flight:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._result = self._work(self.sample_taken.set)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the campaign's thread
            self._error = exc
        finally:
            self.sample_taken.set()  # a failed first call releases the next synthesis too

    def wait_sample_taken(self) -> None:
        self.sample_taken.wait()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> StageResult:
        """The stage's result, or the exception it raised (raised here)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result
