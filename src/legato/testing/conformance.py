"""The store conformance suite: what every :class:`legato.store.base.Store` must do.

Each check is an ``async`` function taking a fresh, empty store; it raises AssertionError on a
deviation. Run them all against your backend, e.g. with pytest::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    async def test_conformance(check, my_store): await check(my_store)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from legato.errors import RunConflict, UnknownRun
from legato.store.base import Entry, RunRecord, Store, Wait

NOW = 1_800_000_000.0
LEASE = 30.0
Check = Callable[[Store], Awaitable[None]]


def _run(run_id: str, workflow: str = "wf", **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "run_id": run_id,
        "workflow": workflow,
        "status": "pending",
        "input": '{"args":[],"kwargs":{}}',
        "wake_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return RunRecord(**values)  # type: ignore[arg-type]


def _entry(run_id: str, seq: int, status: str = "completed", **fields: object) -> Entry:
    return Entry(run_id, seq, "step", f"s{seq}", status, **fields)  # type: ignore[arg-type]


async def _claim_one(store: Store, worker: str, run_id: str, now: float = NOW) -> RunRecord:
    claimed = await store.claim(worker, ["wf"], now, LEASE, 100)
    found = [r for r in claimed if r.run_id == run_id]
    assert found, f"{worker} could not claim {run_id}"
    return found[0]


async def check_create_is_idempotent(store: Store) -> None:
    run, created = await store.create_run(_run("a", input='{"args":[1],"kwargs":{}}'))
    assert created and run.run_id == "a"
    again, created = await store.create_run(_run("a", input='{"args":[2],"kwargs":{}}'))
    assert not created and again.input == '{"args":[1],"kwargs":{}}'
    got = await store.get_run("a")
    assert got is not None and got.status == "pending"
    assert await store.get_run("missing") is None


async def check_list_runs_filters_and_orders(store: Store) -> None:
    for i, wf in enumerate(["x", "y", "x"]):
        await store.create_run(_run(f"r{i}", wf, created_at=NOW + i))
    assert [r.run_id for r in await store.list_runs()] == ["r2", "r1", "r0"]
    assert [r.run_id for r in await store.list_runs(workflow="x")] == ["r2", "r0"]
    assert [r.run_id for r in await store.list_runs(limit=1)] == ["r2"]
    assert await store.list_runs(status="failed") == []


async def check_claim_takes_due_runs_of_known_workflows_once(store: Store) -> None:
    await store.create_run(_run("due"))
    await store.create_run(_run("later", wake_at=NOW + 10))
    await store.create_run(_run("other", "not-mine"))
    claimed = await store.claim("w1", ["wf"], NOW, LEASE, 10)
    assert [r.run_id for r in claimed] == ["due"]
    assert claimed[0].status == "running" and claimed[0].owner == "w1"
    assert await store.claim("w2", ["wf"], NOW + 1, LEASE, 10) == []  # leased to w1
    assert [r.run_id for r in await store.claim("w2", ["wf"], NOW + 11, LEASE, 10)] == ["later"]
    assert await store.claim("w3", ["wf"], NOW, LEASE, 0) == []


async def check_expired_lease_moves_the_run_and_fences_the_old_owner(store: Store) -> None:
    await store.create_run(_run("r"))
    await _claim_one(store, "old", "r")
    assert await store.record("old", _entry("r", 0))
    stolen = await _claim_one(store, "new", "r", now=NOW + LEASE + 1)
    assert stolen.owner == "new"
    assert not await store.record("old", _entry("r", 1))  # fenced
    assert not await store.finish_run("old", "r", "completed", "1", NOW + 40)
    assert [e.seq for e in await store.load_entries("r")] == [0]


async def check_heartbeat_extends_leases(store: Store) -> None:
    await store.create_run(_run("r"))
    await _claim_one(store, "w1", "r")
    await store.create_run(_run("forgotten"))
    await _claim_one(store, "w1", "forgotten")
    await store.heartbeat("w1", ["r"], NOW + 20, LEASE)  # "forgotten" is not held any more
    assert [r.run_id for r in await store.claim("w2", ["wf"], NOW + LEASE + 1, LEASE, 10)] == [
        "forgotten"
    ]
    assert [r.run_id for r in await store.claim("w2", ["wf"], NOW + 20 + LEASE + 1, LEASE, 10)] == [
        "r"
    ]


async def check_record_upserts_and_load_orders(store: Store) -> None:
    await store.create_run(_run("r"))
    await _claim_one(store, "w", "r")
    assert await store.record("w", _entry("r", 1, "retrying", attempts=1, wake_at=NOW + 5))
    assert await store.record("w", _entry("r", 0, output="0"))
    assert await store.record("w", _entry("r", 1, output="1", attempts=2))
    entries = await store.load_entries("r")
    assert [(e.seq, e.status, e.attempts, e.output) for e in entries] == [
        (0, "completed", 1, "0"),
        (1, "completed", 2, "1"),
    ]


async def check_events_are_buffered_in_order_and_consumed_once(store: Store) -> None:
    await store.create_run(_run("r"))
    await store.send_event("r", "reply", '{"n":1}', NOW)
    await store.send_event("r", "reply", '{"n":2}', NOW)
    await store.send_event("r", "other", '"x"', NOW)
    await _claim_one(store, "w", "r")
    assert await store.consume_event("w", Entry("r", 0, "event", "reply", "completed")) == '{"n":1}'
    assert await store.consume_event("w", Entry("r", 1, "event", "reply", "completed")) == '{"n":2}'
    # asking again for an entry that is already complete returns its payload (a retried write)
    assert await store.consume_event("w", Entry("r", 1, "event", "reply", "completed")) == '{"n":2}'
    assert await store.consume_event("w", Entry("r", 2, "event", "reply", "completed")) is None
    assert await store.consume_event("x", Entry("r", 2, "event", "other", "completed")) is None
    assert [(e.seq, e.output) for e in await store.load_entries("r")] == [
        (0, '{"n":1}'),
        (1, '{"n":2}'),
    ]


async def check_send_event_refuses_unknown_and_finished_runs(store: Store) -> None:
    try:
        await store.send_event("ghost", "e", "1", NOW)
    except UnknownRun:
        pass
    else:
        raise AssertionError("an event for an unknown run was accepted")
    await store.create_run(_run("done"))
    await _claim_one(store, "w", "done")
    assert await store.finish_run("w", "done", "completed", "1", NOW)
    try:
        await store.send_event("done", "e", "1", NOW)
    except RunConflict:
        pass
    else:
        raise AssertionError("an event for a finished run was accepted")


async def check_park_keeps_a_wake_up_that_already_happened(store: Store) -> None:
    await store.create_run(_run("r"))
    await _claim_one(store, "w", "r")
    await store.send_event("r", "reply", "1", NOW)  # arrives while the run is loaded
    assert await store.park("w", "r", Wait(None, "event 'reply'", events=["reply"]), NOW)
    parked = await store.get_run("r")
    assert parked is not None and parked.status == "waiting" and parked.wake_at == NOW

    await store.create_run(_run("s"))
    await _claim_one(store, "w", "s")
    assert await store.park("w", "s", Wait(NOW + 3600, "sleep", events=["never"]), NOW)
    slept = await store.get_run("s")
    assert slept is not None and slept.wake_at == NOW + 3600 and slept.owner is None
    await store.send_event("s", "never", "1", NOW + 1)
    woke = await store.get_run("s")
    assert woke is not None and woke.wake_at == NOW + 1


async def check_child_completion_wakes_the_parent(store: Store) -> None:
    await store.create_run(_run("p"))
    await _claim_one(store, "w", "p")
    child = _run("p:0", parent_run_id="p", parent_seq=0)
    assert await store.start_child("w", Entry("p", 0, "child", "wf", "waiting", input="p:0"), child)
    assert await store.park("w", "p", Wait(None, "child", children=["p:0"]), NOW)
    parent = await store.get_run("p")
    assert parent is not None and parent.wake_at is None
    await _claim_one(store, "w", "p:0", now=NOW + 1)
    assert await store.finish_run("w", "p:0", "completed", "42", NOW + 2)
    parent = await store.get_run("p")
    assert parent is not None and parent.wake_at == NOW + 2


async def check_release_and_deregister_make_runs_claimable_at_once(store: Store) -> None:
    await store.create_run(_run("a"))
    await store.create_run(_run("b"))
    await store.claim("w1", ["wf"], NOW, LEASE, 10)
    assert await store.release("w1", "a", NOW + 1)
    assert not await store.release("w2", "b", NOW + 1)  # not w2's run
    await store.deregister_worker("w1", NOW + 2)
    claimed = await store.claim("w2", ["wf"], NOW + 2, LEASE, 10)
    assert sorted(r.run_id for r in claimed) == ["a", "b"]


async def check_cancel_cascades_to_children(store: Store) -> None:
    await store.create_run(_run("p", status="waiting", wake_at=None))
    await store.create_run(_run("p:0", parent_run_id="p", parent_seq=0))
    await store.create_run(_run("p:0:0", parent_run_id="p:0", parent_seq=0))
    cancelled = await store.cancel_run("p", NOW)
    assert cancelled.status == "cancelled"
    for run_id in ("p:0", "p:0:0"):
        run = await store.get_run(run_id)
        assert run is not None and run.status == "cancelled" and run.wake_at is None
    try:
        await store.cancel_run("p", NOW)
    except RunConflict:
        pass
    else:
        raise AssertionError("cancelling a cancelled run was accepted")


async def check_retry_reopens_from_the_first_failed_entry(store: Store) -> None:
    await store.create_run(_run("r"))
    await store.send_event("r", "e", "1", NOW)
    await _claim_one(store, "w", "r")
    assert await store.record("w", _entry("r", 0))
    assert await store.consume_event("w", Entry("r", 1, "event", "e", "completed")) == "1"
    assert await store.record("w", _entry("r", 2, "failed", error='{"type":"X"}'))
    assert await store.finish_run("w", "r", "failed", '{"type":"X","seq":2}', NOW)
    try:
        await store.retry_run("ghost", NOW)
    except UnknownRun:
        pass
    else:
        raise AssertionError("retrying an unknown run was accepted")
    reopened = await store.retry_run("r", NOW + 5)
    assert reopened.status == "pending" and reopened.error is None and reopened.wake_at == NOW + 5
    assert [e.seq for e in await store.load_entries("r")] == [0, 1]
    await _claim_one(store, "w", "r", now=NOW + 5)
    assert await store.consume_event("w", Entry("r", 3, "event", "e", "completed")) is None


async def check_retry_after_a_code_failure_keeps_the_journal(store: Store) -> None:
    """A handled failed entry stays: the run failed in its own code, so a retry replays."""
    await store.create_run(_run("r"))
    await _claim_one(store, "w", "r")
    assert await store.record("w", _entry("r", 0, "failed", error='{"type":"X"}'))
    assert await store.record("w", _entry("r", 1))
    assert await store.finish_run("w", "r", "failed", '{"type":"ValueError"}', NOW)
    await store.retry_run("r", NOW + 1)
    assert [e.seq for e in await store.load_entries("r")] == [0, 1]


async def check_journals_load_together(store: Store) -> None:
    for run_id in ("a", "b", "c"):
        await store.create_run(_run(run_id))
    await store.claim("w", ["wf"], NOW, LEASE, 10)
    for run_id, n in (("a", 2), ("b", 1)):
        for seq in range(n):
            assert await store.record("w", _entry(run_id, seq, output=f'"{run_id}{seq}"'))
    journals = await store.load_journals(["a", "b", "c", "missing"])
    assert {k: [e.output for e in v] for k, v in journals.items()} == {
        "a": ['"a0"', '"a1"'], "b": ['"b0"'], "c": [], "missing": [],
    }  # fmt: skip


async def check_next_wake_at(store: Store) -> None:
    assert await store.next_wake_at(["wf"]) is None
    await store.create_run(_run("a", wake_at=NOW + 10))
    await store.create_run(_run("b", wake_at=NOW + 5))
    await store.create_run(_run("c", "other", wake_at=NOW + 1))
    assert await store.next_wake_at(["wf"]) == NOW + 5


async def check_workers_register_and_list(store: Store) -> None:
    from legato.store.base import WorkerRecord

    await store.register_worker(WorkerRecord("w1", "host", 123, NOW, NOW))
    assert [w.worker_id for w in await store.list_workers()] == ["w1"]
    await store.deregister_worker("w1", NOW)
    assert await store.list_workers() == []


CHECKS: list[Check] = [
    check_create_is_idempotent,
    check_list_runs_filters_and_orders,
    check_claim_takes_due_runs_of_known_workflows_once,
    check_expired_lease_moves_the_run_and_fences_the_old_owner,
    check_heartbeat_extends_leases,
    check_record_upserts_and_load_orders,
    check_events_are_buffered_in_order_and_consumed_once,
    check_send_event_refuses_unknown_and_finished_runs,
    check_park_keeps_a_wake_up_that_already_happened,
    check_child_completion_wakes_the_parent,
    check_release_and_deregister_make_runs_claimable_at_once,
    check_cancel_cascades_to_children,
    check_retry_reopens_from_the_first_failed_entry,
    check_retry_after_a_code_failure_keeps_the_journal,
    check_journals_load_together,
    check_next_wake_at,
    check_workers_register_and_list,
]
