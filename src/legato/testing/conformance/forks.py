"""Forks and resuming: a fork is a new run with a copied journal and an audit row, made once;
a cancelled run resumes where it stopped; a run's own status is its newest ``status`` entry."""

from __future__ import annotations

from legato.errors import RunConflict, UnknownRun
from legato.store.base import AuditEvent, Store, Wait
from legato.testing.conformance.records import (
    NOW,
    ask,
    audit_chain,
    claim_one,
    entry,
    raises,
    run_record,
)


def _forked(event_run: str = "f") -> AuditEvent:
    return AuditEvent("run.forked", '{"entry":"1"}', "ann", event_run, "src")


async def check_fork_creates_the_run_with_its_copied_journal_once(store: Store) -> None:
    await store.create_run(run_record("src"))
    await claim_one(store, "w", "src")
    for seq in range(3):
        assert await store.record("w", entry("src", seq, position=seq))
    copied = await store.load_entries("src")
    fork = run_record("f", forked_from="src", forked_entry="2", input='{"args":[1],"kwargs":{}}')
    made, created = await store.fork_run(fork, copied[:2], _forked())
    assert created and made == fork
    assert await store.get_run("f") == fork
    journal = await store.load_entries("f")
    assert [(e.run_id, e.seq, e.name, e.position) for e in journal] == [
        ("f", 0, "s0", 0), ("f", 1, "s1", 1)
    ]  # fmt: skip
    assert len(await store.load_entries("src")) == 3  # the source is left as it was
    [row] = [r for r in await audit_chain(store) if r.kind == "run.forked"]
    assert (row.actor, row.run_id, row.subject) == ("ann", "f", "src")
    # the fork is runnable at once
    assert (await claim_one(store, "w2", "f")).run_id == "f"
    # the same fork asked again returns it, writes nothing more
    again, created = await store.fork_run(fork, copied[:1], _forked())
    assert not created and again.run_id == "f" and again.forked_entry == "2"
    assert len(await store.load_entries("f")) == 2
    assert len([r for r in await audit_chain(store) if r.kind == "run.forked"]) == 1


async def check_fork_refuses_a_taken_id_and_an_unknown_source(store: Store) -> None:
    await store.create_run(run_record("src"))
    await store.create_run(run_record("taken"))
    taken = run_record("taken", forked_from="src", forked_entry="0")
    with raises(RunConflict, "forking into the id of another run"):
        await store.fork_run(taken, [], _forked())
    orphan = run_record("f", forked_from="ghost", forked_entry="0")
    with raises(UnknownRun, "forking a run that does not exist"):
        await store.fork_run(orphan, [], _forked())
    assert await store.get_run("f") is None
    assert [r for r in await store.list_audit() if r.kind == "run.forked"] == []


async def check_retry_resumes_a_cancelled_run_where_it_stopped(store: Store) -> None:
    """Its journal stays; the approval pending at the cancel is pending again, and the child
    run it waited for (cancelled with it) resumes too."""
    await store.create_run(run_record("p"))
    await claim_one(store, "w", "p")
    assert await store.record("w", entry("p", 0))
    approval_id = await ask(store, "p", seq=1)
    child = run_record("p~2", parent_run_id="p", parent_seq=2)
    waits = entry("p", 2, "waiting", kind="child", name="wf", input='"p~2"')
    assert await store.start_child("w", waits, child)
    assert await store.park("w", "p", Wait(None, "both", children=["p~2"]), NOW)
    await store.cancel_run("p", NOW + 1)
    approval = await store.get_approval(approval_id)
    assert approval is not None and approval.status == "cancelled"
    resumed = await store.retry_run("p", NOW + 2)
    assert (resumed.status, resumed.owner, resumed.wake_at) == ("pending", None, NOW + 2)
    assert resumed.finished_at is None
    assert [e.seq for e in await store.load_entries("p")] == [0, 1, 2]
    approval = await store.get_approval(approval_id)
    assert approval is not None and (approval.status, approval.decided_at) == ("pending", None)
    again = await store.get_run("p~2")
    assert again is not None and (again.status, again.finished_at) == ("pending", None)
    claimed = {r.run_id for r in await store.claim("w", ["wf"], NOW + 2, 30.0, 10)}
    assert claimed == {"p", "p~2"}


async def check_custom_status_is_the_newest_status_entry(store: Store) -> None:
    for run_id in ("a", "b", "none"):
        await store.create_run(run_record(run_id))
    await claim_one(store, "w", "a")
    for seq, text in ((0, '"first"'), (2, '{"done":2}')):
        assert await store.record("w", entry("a", seq, kind="status", name="status", output=text))
    assert await store.record("w", entry("a", 1))
    assert await store.record("w", entry("b", 0))  # a run without a status has none
    assert await store.custom_statuses(["a", "b", "none", "ghost"]) == {"a": '{"done":2}'}
    assert await store.custom_statuses([]) == {}
