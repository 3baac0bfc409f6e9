"""The gate: a tool proposal is decided on the calls already allowed in each throttle window,
and journaled and audited in the same transaction, serialized with every other gate decision
so that a throttle holds when many runs propose at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from legato.store.base import AuditEvent, Entry, Store, Window
from legato.testing.conformance.records import (
    LEASE,
    NOW,
    WF,
    audit_chain,
    claim_one,
    run_record,
)

Decide = Callable[[list[list[float]]], tuple[Entry, AuditEvent]]


def _decider(run_id: str, seq: int, seen: list[list[list[float]]], limit: int = 10**6) -> Decide:
    """Allows while the first window holds fewer than ``limit`` calls; keeps what it saw."""

    def decide(times: list[list[float]]) -> tuple[Entry, AuditEvent]:
        seen.append(times)
        action = "allow" if not times or len(times[0]) < limit else "throttle"
        output = f'{{"action":"{action}"}}'
        return (
            Entry(run_id, seq, "gate", "send", "completed", input='{"actor":"agent"}',
                  output=output, started_at=NOW, finished_at=NOW),
            AuditEvent(f"gate.{action}", output, "agent", run_id, "send"),
        )  # fmt: skip

    return decide


async def check_record_gate_journals_and_audits_the_decision(store: Store) -> None:
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    seen: list[list[list[float]]] = []
    written = await store.record_gate("w", "r", [], _decider("r", 0, seen), NOW + 1)
    assert written is not None
    gate_entry, event = written
    assert seen == [[]], "decide is called once, with one list of times per window"
    assert await store.load_entries("r") == [gate_entry]
    [row] = await audit_chain(store)
    assert (row.at, row.kind, row.actor, row.run_id, row.subject, row.detail) == (
        NOW + 1,
        event.kind,
        event.actor,
        event.run_id,
        event.subject,
        event.detail,
    )


async def check_windows_count_allowed_and_approved_calls(store: Store) -> None:
    """A window counts ``gate.allow`` and ``tool.approved`` rows of its tool and actor (None:
    any) after its start; denials, throttles and older calls do not count."""
    history = [
        (NOW - 200, "gate.allow", "a", "send"),  # before every window
        (NOW - 50, "gate.allow", "a", "send"),
        (NOW - 40, "gate.deny", "a", "send"),
        (NOW - 35, "gate.throttle", "a", "send"),
        (NOW - 30, "gate.allow", "b", "send"),
        (NOW - 20, "tool.approved", "a", "send"),
        (NOW - 10, "gate.allow", "a", "pay"),
    ]
    for at, kind, actor, tool in history:
        await store.append_audit([AuditEvent(kind, "{}", actor, "old", tool)], at)
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    windows = [
        Window("send", "a", NOW - 100),
        Window("send", None, NOW - 100),
        Window(None, "a", NOW - 100),
        Window(None, None, NOW - 100),
        Window(None, "b", NOW - 100),
        Window("send", "a", NOW - 25),
        Window("send", "a", NOW - 1000),
    ]
    seen: list[list[list[float]]] = []
    assert await store.record_gate("w", "r", windows, _decider("r", 0, seen), NOW)
    [times] = seen
    assert [sorted(t) for t in times] == [
        [NOW - 50, NOW - 20],
        [NOW - 50, NOW - 30, NOW - 20],
        [NOW - 50, NOW - 20, NOW - 10],
        [NOW - 50, NOW - 30, NOW - 20, NOW - 10],
        [NOW - 30],
        [NOW - 20],
        [NOW - 200, NOW - 50, NOW - 20],
    ]


async def check_concurrent_gate_decisions_hold_a_throttle(store: Store) -> None:
    """Twelve runs propose at once under a limit of three calls: exactly three are allowed."""
    run_ids = [f"r{i:02}" for i in range(12)]
    for run_id in run_ids:
        await store.create_run(run_record(run_id))
    await store.claim("w", [WF], NOW, LEASE, 100)
    window = [Window("send", None, NOW - 60)]
    seen: list[list[list[float]]] = []
    results = await asyncio.gather(
        *(store.record_gate("w", r, window, _decider(r, 0, seen, limit=3), NOW) for r in run_ids)
    )
    actions = [r[1].kind for r in results if r is not None]
    assert len(actions) == 12 and actions.count("gate.allow") == 3, actions
    assert sorted(len(t[0]) for t in seen) == [0, 1, 2] + [3] * 9
    rows = await audit_chain(store)
    assert [r.kind for r in rows].count("gate.allow") == 3
    for run_id, result in zip(run_ids, results, strict=True):
        assert result is not None and await store.load_entries(run_id) == [result[0]]
