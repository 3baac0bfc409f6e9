"""Runs: idempotent creation, reading and listing, finishing, cancelling and retrying."""

from __future__ import annotations

import asyncio

from legato.errors import RunConflict, UnknownRun
from legato.store.base import RunRecord, Store
from legato.testing.conformance.records import (
    LEASE,
    NOW,
    WF,
    claim_one,
    entry,
    raises,
    run_record,
    started,
)


async def check_create_is_idempotent(store: Store) -> None:
    run, created = await store.create_run(run_record("a", input='{"args":[1],"kwargs":{}}'))
    assert created and run.run_id == "a"
    again, created = await store.create_run(run_record("a", input='{"args":[2],"kwargs":{}}'))
    assert not created and again.input == '{"args":[1],"kwargs":{}}'
    got = await store.get_run("a")
    assert got is not None and got.status == "pending"
    assert await store.get_run("missing") is None


async def check_concurrent_creates_of_one_id_make_one_run(store: Store) -> None:
    """Starting a run twice at the same moment (a retried request) creates it once."""
    attempts = [run_record("a", input=f'{{"args":[{i}],"kwargs":{{}}}}') for i in range(5)]
    results = await asyncio.gather(*(store.create_run(r) for r in attempts))
    assert sum(created for _, created in results) == 1, results
    [winner] = [run for run, created in results if created]
    assert all(run == winner for run, _ in results), "every caller must see the stored run"
    assert await store.get_run("a") == winner


async def check_runs_round_trip_every_field(store: Store) -> None:
    waiting = RunRecord(
        run_id="job-42/ä", workflow="hire", status="waiting",
        input='{"args":["Zoë ✓ 🎵", 1.5],"kwargs":{"k":null}}', output=None, error=None,
        parent_run_id="boss", parent_seq=3, code_version="v7", owner=None, wake_at=NOW + 1.25,
        waiting_on="event 'reply' until 2027-01-15T08:00:01+00:00", created_at=NOW + 0.5,
        updated_at=NOW + 0.75, finished_at=None, journal_format=2, tenant="acme",
    )  # fmt: skip
    done = RunRecord(
        run_id="done", workflow="hire", status="completed", input="{}", output='{"ok":true}',
        created_at=NOW, updated_at=NOW + 2, finished_at=NOW + 2, journal_format=1,
    )  # fmt: skip
    failed = RunRecord(
        run_id="failed", workflow="hire", status="failed", input="{}",
        error='{"type":"StepFailed","message":"boom","seq":4}', created_at=NOW,
        finished_at=NOW + 3,
    )  # fmt: skip
    for run in (waiting, done, failed):
        stored, created = await store.create_run(run)
        assert created and stored == run
        assert await store.get_run(run.run_id) == run


async def check_list_runs_filters_and_orders(store: Store) -> None:
    """Newest first; filters combine; ``limit`` caps the answer."""
    for i, wf in enumerate(["x", "y", "x"]):
        await store.create_run(run_record(f"r{i}", wf, created_at=NOW + i))
    await store.create_run(
        run_record("w3", "x", status="waiting", wake_at=None, created_at=NOW + 3)
    )
    assert [r.run_id for r in await store.list_runs()] == ["w3", "r2", "r1", "r0"]
    assert [r.run_id for r in await store.list_runs(workflow="x")] == ["w3", "r2", "r0"]
    assert [r.run_id for r in await store.list_runs(status="pending")] == ["r2", "r1", "r0"]
    assert [r.run_id for r in await store.list_runs(status="pending", workflow="x")] == [
        "r2",
        "r0",
    ]
    assert [r.run_id for r in await store.list_runs(limit=1)] == ["w3"]
    assert [r.run_id for r in await store.list_runs(workflow="x", limit=2)] == ["w3", "r2"]
    assert await store.list_runs(status="failed") == []
    assert await store.list_runs(workflow="nope") == []
    for run_id in ("t2", "t1"):  # started at the same moment: by id
        await store.create_run(run_record(run_id, "z", created_at=NOW + 9))
    assert [r.run_id for r in await store.list_runs(workflow="z")] == ["t1", "t2"]


async def check_finish_run_records_the_result_and_ends_the_lease(store: Store) -> None:
    await store.create_run(run_record("ok"))
    await store.create_run(run_record("bad"))
    await claim_one(store, "w", "ok")
    assert await store.finish_run("w", "ok", "completed", '"done"', NOW + 1)
    assert await store.finish_run("w", "bad", "failed", '{"type":"X"}', NOW + 2)
    ok, bad = await store.get_run("ok"), await store.get_run("bad")
    assert ok is not None and bad is not None
    assert (ok.status, ok.output, ok.error, ok.finished_at) == (
        "completed",
        '"done"',
        None,
        NOW + 1,
    )
    assert (bad.status, bad.output, bad.error, bad.finished_at) == (
        "failed",
        None,
        '{"type":"X"}',
        NOW + 2,
    )
    for run in (ok, bad):
        assert (run.owner, run.wake_at, run.waiting_on) == (None, None, None)
    # the run is no longer held: finishing it again is refused and changes nothing
    assert not await store.finish_run("w", "ok", "failed", '{"type":"Y"}', NOW + 3)
    assert await store.get_run("ok") == ok
    # and a finished run is never claimed again
    assert await store.claim("w2", [WF], NOW + 1000, LEASE, 10) == []


async def check_cancel_ends_unfinished_runs_only(store: Store) -> None:
    with raises(UnknownRun, "cancelling an unknown run"):
        await store.cancel_run("ghost", NOW)
    await store.create_run(run_record("pending"))
    await store.create_run(run_record("sleeping", status="waiting", wake_at=NOW + 60))
    await started(store, "running", now=NOW)  # also claims "pending": it is due
    await store.create_run(run_record("later", wake_at=NOW + 5))
    for run_id in ("later", "sleeping", "running"):
        cancelled = await store.cancel_run(run_id, NOW + 1)
        assert cancelled.run_id == run_id
        assert (cancelled.status, cancelled.finished_at) == ("cancelled", NOW + 1)
        assert (cancelled.owner, cancelled.wake_at) == (None, None)
        assert await store.get_run(run_id) == cancelled
    assert await store.next_wake_at([WF]) == NOW + LEASE  # only "pending", leased to w
    taken = await store.claim("w2", [WF], NOW + 1000, LEASE, 10)
    assert [r.run_id for r in taken] == ["pending"]
    for run_id in ("running", "later"):
        with raises(RunConflict, f"cancelling the cancelled run {run_id}"):
            await store.cancel_run(run_id, NOW + 2)
    assert sorted(await store.cancelled_since(NOW + 1)) == ["later", "running", "sleeping"]
    assert await store.cancelled_since(NOW + 1.5) == []
    assert await store.finish_run("w2", "pending", "completed", "1", NOW + 1001)
    with raises(RunConflict, "cancelling a completed run"):
        await store.cancel_run("pending", NOW + 1002)
    run = await store.get_run("pending")
    assert run is not None and run.status == "completed"


async def check_retry_reopens_from_the_first_failed_entry(store: Store) -> None:
    await store.create_run(run_record("r"))
    await store.send_event("r", "e", "1", NOW)
    await claim_one(store, "w", "r")
    assert await store.record("w", entry("r", 0))
    assert await store.consume_event("w", entry("r", 1, kind="event", name="e")) == "1"
    assert await store.record("w", entry("r", 2, "failed", error='{"type":"X"}'))
    assert await store.finish_run("w", "r", "failed", '{"type":"X","seq":2}', NOW)
    reopened = await store.retry_run("r", NOW + 5)
    assert (reopened.status, reopened.error, reopened.wake_at) == ("pending", None, NOW + 5)
    assert (reopened.owner, reopened.finished_at) == (None, None)
    assert await store.get_run("r") == reopened
    assert [e.seq for e in await store.load_entries("r")] == [0, 1]
    await claim_one(store, "w", "r", now=NOW + 5)
    # the event taken by an entry that stays is not handed out again
    assert await store.consume_event("w", entry("r", 2, kind="event", name="e")) is None


async def check_retry_gives_back_events_taken_after_the_failure(store: Store) -> None:
    """Entries from the failed one on are removed; the events they took go back to the buffer,
    except one whose entry failed (its payload was refused: a retry waits for a new one)."""
    await store.create_run(run_record("r"))
    for payload in ("1", "2"):
        await store.send_event("r", "e", payload, NOW)
    await claim_one(store, "w", "r")
    assert await store.record("w", entry("r", 0))
    assert await store.record("w", entry("r", 1, "failed", error='{"type":"X"}'))
    assert await store.consume_event("w", entry("r", 2, kind="event", name="e")) == "1"
    assert await store.consume_event("w", entry("r", 3, kind="event", name="e")) == "2"
    refused = entry("r", 3, "failed", kind="event", name="e", output="2", error='{"type":"V"}')
    assert await store.record("w", refused)
    assert await store.finish_run("w", "r", "failed", '{"type":"X","seq":1}', NOW + 1)
    await store.retry_run("r", NOW + 2)
    assert [e.seq for e in await store.load_entries("r")] == [0]
    await claim_one(store, "w", "r", now=NOW + 2)
    assert await store.consume_event("w", entry("r", 1, kind="event", name="e")) == "1"
    assert await store.consume_event("w", entry("r", 2, kind="event", name="e")) is None


async def check_retry_after_a_code_failure_keeps_the_journal(store: Store) -> None:
    """A handled failed entry stays: the run failed in its own code, so a retry replays."""
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    assert await store.record("w", entry("r", 0, "failed", error='{"type":"X"}'))
    assert await store.record("w", entry("r", 1))
    assert await store.finish_run("w", "r", "failed", '{"type":"ValueError"}', NOW)
    reopened = await store.retry_run("r", NOW + 1)
    assert reopened.status == "pending"
    assert [e.seq for e in await store.load_entries("r")] == [0, 1]


async def check_retry_refuses_unknown_and_unfailed_runs(store: Store) -> None:
    with raises(UnknownRun, "retrying an unknown run"):
        await store.retry_run("ghost", NOW)
    await store.create_run(run_record("pending", wake_at=NOW + 100))
    await started(store, "running")
    await store.create_run(run_record("cancelled", wake_at=NOW + 100))
    await store.cancel_run("cancelled", NOW)
    await started(store, "completed")
    assert await store.finish_run("w", "completed", "completed", "1", NOW)
    for run_id in ("pending", "running", "cancelled", "completed"):
        before = await store.get_run(run_id)
        with raises(RunConflict, f"retrying the {run_id} run"):
            await store.retry_run(run_id, NOW + 1)
        assert await store.get_run(run_id) == before


async def check_wait_for_end_returns_ended_runs_and_times_out_on_others(store: Store) -> None:
    assert await store.wait_for_end("nobody", 0.01) is None
    await store.create_run(run_record("open"))
    late = await store.wait_for_end("open", 0.05)  # as it is once the timeout passed
    assert late is not None and late.status == "pending"
    await claim_one(store, "w", "open")
    waiting = asyncio.ensure_future(store.wait_for_end("open", 30))
    await asyncio.sleep(0)  # it starts waiting (an end before it looks is seen all the same)
    assert await store.finish_run("w", "open", "completed", '"ok"', NOW + 1)
    ended = await asyncio.wait_for(waiting, 10)  # an end this process wrote: at once
    assert ended is not None and (ended.status, ended.output) == ("completed", '"ok"')
    assert await store.wait_for_end("open", None) == ended  # already ended: no wait
