"""Workers: registered with their host and process, kept alive by heartbeats, and on
deregistration every run they held is released (pending, no owner), claimable at once."""

from __future__ import annotations

from legato.store.base import Store, WorkerRecord
from legato.testing.conformance.records import LEASE, NOW, WF, run_record


async def check_workers_register_heartbeat_and_list(store: Store) -> None:
    assert await store.list_workers() == []
    w1 = WorkerRecord("w1", "host-a", 123, NOW, NOW)
    w2 = WorkerRecord("w2", "host-b", 456, NOW - 10, NOW - 10)
    await store.register_worker(w1)
    await store.register_worker(w2)
    assert await store.list_workers() == [w2, w1]  # longest running first
    await store.heartbeat("w1", [], NOW + 5, LEASE)
    assert await store.list_workers() == [w2, WorkerRecord("w1", "host-a", 123, NOW, NOW + 5)]
    await store.register_worker(WorkerRecord("w1", "host-a", 123, NOW, NOW + 7))  # again
    assert await store.list_workers() == [w2, WorkerRecord("w1", "host-a", 123, NOW, NOW + 7)]
    await store.deregister_worker("w1", NOW + 8)
    assert await store.list_workers() == [w2]
    await store.deregister_worker("w1", NOW + 9)  # already gone: nothing to do
    await store.deregister_worker("w2", NOW + 9)
    assert await store.list_workers() == []


async def check_deregister_makes_the_workers_runs_claimable_at_once(store: Store) -> None:
    for run_id in ("a", "b", "c"):
        await store.create_run(run_record(run_id))
    await store.register_worker(WorkerRecord("w1", "host", 1, NOW, NOW))
    await store.claim("w1", [WF], NOW, LEASE, 2)
    await store.claim("w2", [WF], NOW, LEASE, 2)
    await store.deregister_worker("w1", NOW + 2)
    runs = await store.list_runs()
    assert sorted((r.status, r.owner) for r in runs) == [
        ("pending", None), ("pending", None), ("running", "w2")
    ]  # fmt: skip
    freed = await store.claim("w3", [WF], NOW + 2, LEASE, 10)
    assert len(freed) == 2 and all(r.owner == "w3" for r in freed)
    assert await store.claim("w3", [WF], NOW + 2, LEASE, 10) == []  # w2's lease holds


async def check_a_live_worker_is_never_reported_disconnected(store: Store) -> None:
    """``disconnected_workers``: None where the backend cannot tell (its workers judge each
    other by pid and lease); otherwise never a worker whose process still holds its store."""
    await store.register_worker(WorkerRecord("alive", "host-a", 1, NOW, NOW))
    gone = await store.disconnected_workers()
    assert gone is None or "alive" not in gone
    gone = await store.disconnected_workers()  # asked again (a store may confirm twice)
    assert gone is None or "alive" not in gone
    await store.deregister_worker("alive", NOW + 1)
