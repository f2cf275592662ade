"""Which consecutive daemon calls of an experiment may share one JSON-RPC batch.

A batch saves HTTP round trips, but the daemon runs every call of a batch even when an earlier
one failed (JSON-RPC 2.0 batches are independent calls). So a call that acts on the lab (fill,
heat, infuse, move, measure) never follows another call in a batch: if the earlier one failed,
the experiment must stop before anything else moves. Only calls that are harmless after any
failure may follow: reading state, and stopping pumps (what the daemon does itself to make
a pump safe). A batch is therefore at most one acting call, first, then harmless calls.
"""

from __future__ import annotations

from typing import Any

# Daemon methods that read state or make a module safe, and nothing else: running one of them
# after a failed call changes nothing that matters. Everything not listed here acts on the lab.
HARMLESS_METHODS: frozenset[str] = frozenset(
    {
        "system.status",
        "system.describe",
        "heater.status",
        "pump.status",
        "pump.stop",
        "robot.status",
        "peristaltic.status",
        "stepper.status",
    }
)

Call = dict[str, Any]  # {"method": str, "params": dict}


def group_calls(calls: list[Call]) -> list[list[Call]]:
    """Split ``calls`` (in order) into round trips: each an acting call or none, then harmless.

    >>> [[c["method"] for c in g] for g in group_calls([
    ...     {"method": "system.status", "params": {}}, {"method": "pump.stop", "params": {}},
    ...     {"method": "pump.fill", "params": {}}, {"method": "robot.move", "params": {}},
    ...     {"method": "system.status", "params": {}}])]
    [['system.status', 'pump.stop'], ['pump.fill'], ['robot.move', 'system.status']]
    """
    groups: list[list[Call]] = []
    for call in calls:
        if groups and call["method"] in HARMLESS_METHODS:
            groups[-1].append(call)
        else:
            groups.append([call])
    return groups
