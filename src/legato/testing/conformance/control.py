"""Run-time control by people: autonomy levels per actor and the pause switch per workflow,
each change audited in the same transaction."""

from __future__ import annotations

from legato.store.base import AuditEvent, Store
from legato.testing.conformance.records import NOW, audit_chain


def _autonomy_event(actor: str, level: int, by: str) -> AuditEvent:
    return AuditEvent("autonomy.set", f'{{"level":{level}}}', by, None, actor)


async def check_autonomy_levels_are_set_read_and_audited(store: Store) -> None:
    assert await store.get_autonomy("agent") is None
    assert await store.list_autonomy() == []
    await store.set_autonomy("zed", 3, "bob", "trusted", NOW, _autonomy_event("zed", 3, "bob"))
    await store.set_autonomy(
        "agent", 2, "alice", "pilot", NOW + 1, _autonomy_event("agent", 2, "alice")
    )
    await store.set_autonomy(
        "agent", 0, "carol", "incident", NOW + 2, _autonomy_event("agent", 0, "carol")
    )
    assert await store.get_autonomy("agent") == 0
    assert await store.get_autonomy("zed") == 3
    assert await store.list_autonomy() == [
        ("agent", 0, "carol", "incident", NOW + 2),
        ("zed", 3, "bob", "trusted", NOW),
    ]
    rows = await audit_chain(store)
    assert [(r.kind, r.actor, r.subject, r.detail, r.at) for r in rows] == [
        ("autonomy.set", "bob", "zed", '{"level":3}', NOW),
        ("autonomy.set", "alice", "agent", '{"level":2}', NOW + 1),
        ("autonomy.set", "carol", "agent", '{"level":0}', NOW + 2),
    ]


def _pause_event(workflow: str, paused: bool, by: str) -> AuditEvent:
    kind = "workflow.paused" if paused else "workflow.resumed"
    return AuditEvent(kind, '{"reason":"r"}', by, None, workflow)


async def check_pause_and_resume_change_state_once_and_are_audited(store: Store) -> None:
    assert await store.paused_workflows() == {}

    async def pause(workflow: str, paused: bool, by: str, at: float) -> bool:
        reason = "incident" if paused else "fixed"
        event = _pause_event(workflow, paused, by)
        return await store.set_paused(workflow, paused, by, reason, at, event)

    assert await pause("billing", True, "alice", NOW)
    assert not await pause("billing", True, "bob", NOW + 1)  # already paused: nothing changes
    assert await pause("hiring", True, "carol", NOW + 2)
    assert await store.paused_workflows() == {
        "billing": ("alice", "incident", NOW),
        "hiring": ("carol", "incident", NOW + 2),
    }
    assert await pause("billing", False, "dan", NOW + 3)
    assert not await pause("billing", False, "dan", NOW + 4)  # not paused any more
    assert not await pause("never", False, "dan", NOW + 4)
    assert await store.paused_workflows() == {"hiring": ("carol", "incident", NOW + 2)}
    rows = await audit_chain(store)
    assert [(r.kind, r.actor, r.subject, r.at) for r in rows] == [
        ("workflow.paused", "alice", "billing", NOW),
        ("workflow.paused", "carol", "hiring", NOW + 2),
        ("workflow.resumed", "dan", "billing", NOW + 3),
    ]
