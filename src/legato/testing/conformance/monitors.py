"""Monitors: one worker evaluates each window (a lease), its actions and audit events commit
with its new state, alerts wait in an outbox, and rerouted aliases are kept."""

from __future__ import annotations

import dataclasses

from legato.store.base import AuditEvent, MonitorChanges, Store
from legato.testing.conformance.records import NOW, audit_chain


async def check_each_window_is_claimed_by_one_worker_and_committed_once(store: Store) -> None:
    assert await store.monitor_states() == []
    a = await store.claim_monitor("m", 0, "a", NOW, 10)
    assert a is not None and a.state == "ok" and a.window_done == -1
    assert await store.claim_monitor("m", 0, "b", NOW + 1, 10) is None  # leased to a
    taken = await store.claim_monitor("m", 0, "b", NOW + 11, 10)  # a's lease expired
    assert taken is not None
    fired = dataclasses.replace(taken, state="firing", window_done=0, last_value=0.5, fired_at=NOW)
    changes = MonitorChanges(
        autonomy=[("agent", 1)],
        pause=[("wf", True)],
        routes=[("fast", "cheap")],
        alerts=[("http://127.0.0.1:9/hook", '{"monitor":"m"}')],
        audit=[AuditEvent("monitor.fired", '{"value":0.5}', "monitor:m", None, "m")],
    )
    assert not await store.commit_monitor(fired, changes, NOW + 12, owner="a")  # lost its lease
    assert await store.commit_monitor(fired, changes, NOW + 12, owner="b")
    assert not await store.commit_monitor(fired, changes, NOW + 13, owner="b")  # done already
    assert await store.claim_monitor("m", 0, "c", NOW + 30, 10) is None  # window 0 is done
    [state] = await store.monitor_states()
    assert (state.state, state.window_done, state.last_value) == ("firing", 0, 0.5)
    assert await store.get_autonomy("agent") == 1
    assert "wf" in await store.paused_workflows()
    assert await store.route_overrides() == {"fast": "cheap"}
    assert [r.kind for r in await audit_chain(store)] == ["monitor.fired"]
    restored = dataclasses.replace(state, state="ok", restored_at=NOW + 40)
    undo = MonitorChanges(autonomy=[("agent", 2)], pause=[("wf", False)], routes=[("fast", None)])
    assert await store.commit_monitor(restored, undo, NOW + 40)  # by a person: no claim
    assert await store.route_overrides() == {}
    assert await store.get_autonomy("agent") == 2
    assert "wf" not in await store.paused_workflows()
    assert not await store.commit_monitor(dataclasses.replace(state, name="none"), undo, NOW)


async def check_alerts_are_leased_until_delivered(store: Store) -> None:
    state = await store.claim_monitor("m", 0, "a", NOW, 10)
    assert state is not None
    alerting = MonitorChanges(
        alerts=[("http://127.0.0.1:9/a", "{}"), ("http://127.0.0.1:9/b", "{}")]
    )
    assert await store.commit_monitor(
        dataclasses.replace(state, window_done=0), alerting, NOW, owner="a"
    )
    first = await store.claim_alerts(NOW, 5)
    assert [(a.url, a.attempts) for a in first] == [
        ("http://127.0.0.1:9/a", 1),
        ("http://127.0.0.1:9/b", 1),
    ]
    assert await store.claim_alerts(NOW + 1, 5) == []  # leased
    await store.alert_done(first[0].id, NOW + 1)
    await store.alert_done(first[1].id, NOW + 1, error="refused", retry_at=NOW + 3)
    assert await store.claim_alerts(NOW + 2, 5) == []
    [again] = await store.claim_alerts(NOW + 3, 5)
    assert (again.url, again.attempts) == ("http://127.0.0.1:9/b", 2)
    listed = await store.list_alerts(monitor="m")
    assert [(a.delivered_at, a.last_error) for a in listed] == [(None, "refused"), (NOW + 1, None)]
