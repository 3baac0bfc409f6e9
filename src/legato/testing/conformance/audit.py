"""The audit log: append-only rows numbered from 1, each hash-chained to the one before it
(one chain per database, even under concurrent appends), read back in order and by run."""

from __future__ import annotations

import asyncio

from legato.store.base import GENESIS_HASH, AuditEvent, Store, audit_hash
from legato.testing.conformance.records import NOW, audit_chain


async def check_audit_rows_form_one_hash_chain(store: Store) -> None:
    assert await store.list_audit() == []
    first = [
        AuditEvent("workflow.paused", '{"reason":"incident"}', "alice", None, "billing"),
        AuditEvent("gate.allow", '{"tool":"send","note":"Zoë ✓"}', "agent", "r1", "send"),
    ]
    await store.append_audit(first, NOW)
    await store.append_audit([AuditEvent("gate.deny", "{}")], NOW + 1.5)
    rows = await audit_chain(store)
    assert [(r.seq, r.at, r.kind, r.actor, r.run_id, r.subject, r.detail) for r in rows] == [
        (1, NOW, *_fields(first[0])),
        (2, NOW, *_fields(first[1])),
        (3, NOW + 1.5, "gate.deny", None, None, None, "{}"),
    ]
    assert rows[0].prev_hash == GENESIS_HASH
    assert rows[0].hash == audit_hash(GENESIS_HASH, 1, NOW, *_fields(first[0]))


def _fields(e: AuditEvent) -> tuple[str, str | None, str | None, str | None, str]:
    return (e.kind, e.actor, e.run_id, e.subject, e.detail)


async def check_list_audit_filters_by_run_and_pages(store: Store) -> None:
    for i in range(6):
        run_id = "a" if i % 2 == 0 else "b"
        await store.append_audit([AuditEvent("gate.allow", "{}", "x", run_id, "t")], NOW + i)
    assert [r.seq for r in await store.list_audit()] == [1, 2, 3, 4, 5, 6]
    assert [r.seq for r in await store.list_audit(run_id="a")] == [1, 3, 5]
    assert [r.seq for r in await store.list_audit(after=2)] == [3, 4, 5, 6]
    assert [r.seq for r in await store.list_audit(after=2, limit=2)] == [3, 4]
    assert [r.seq for r in await store.list_audit(run_id="b", after=2, limit=1)] == [4]
    assert await store.list_audit(after=6) == []
    assert await store.list_audit(run_id="nobody") == []
    await store.append_audit([AuditEvent("monitor.fired", "{}", "m", None, "m")], NOW + 7)
    assert [r.seq for r in await store.list_audit(kind_prefix="monitor.")] == [7]
    assert [r.seq for r in await store.list_audit(kind_prefix="gate.", after=4)] == [5, 6]


async def check_gate_actors_are_those_the_gate_decided_for(store: Store) -> None:
    assert await store.gate_actors() == []
    await store.append_audit(
        [
            AuditEvent("gate.allow", "{}", "writer", "r1", "send"),
            AuditEvent("gate.deny", "{}", "agent", "r1", "send"),
            AuditEvent("gate.allow", "{}", "writer", "r2", "send"),
            AuditEvent("approval.decided", "{}", "alice", "r1", "send"),  # a person, not an actor
            AuditEvent("gate.allow", "{}", None, "r3", "send"),
        ],
        NOW,
    )
    assert await store.gate_actors() == ["agent", "writer"]


async def check_concurrent_appends_keep_one_chain(store: Store) -> None:
    await asyncio.gather(
        *(
            store.append_audit([AuditEvent("n", f'{{"i":{i}}}'), AuditEvent("m", "{}")], NOW + i)
            for i in range(16)
        )
    )
    rows = await audit_chain(store)
    assert len(rows) == 32
    # the two events of one append stay together, in their order
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert (first.kind, second.kind, first.at) == ("n", "m", second.at)


#: an int time is a valid float for type checkers: rows appended at one must verify
WHOLE_SECOND = 1_800_000_000  # an int, as a clock moved to a whole second returns it


async def check_audit_rows_appended_at_a_whole_second_verify(store: Store) -> None:
    await store.append_audit([AuditEvent("workflow.paused", "{}", "alice")], WHOLE_SECOND)
    paused = AuditEvent("workflow.paused", "{}", "alice", None, "billing")
    await store.set_paused("billing", True, "alice", "incident", WHOLE_SECOND + 1, paused)
    rows = await audit_chain(store)
    assert [r.at for r in rows] == [WHOLE_SECOND, WHOLE_SECOND + 1]
