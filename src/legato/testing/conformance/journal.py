"""The journal: entries upserted by (run, seq), read back whole and in order, written in the
order they were issued."""

from __future__ import annotations

import asyncio

from legato.store.base import Entry, Store, Wait
from legato.testing.conformance.records import NOW, claim_one, entry, run_record


async def check_record_upserts_and_load_orders(store: Store) -> None:
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    assert await store.record("w", entry("r", 1, "retrying", attempts=1, wake_at=NOW + 5))
    assert await store.record("w", entry("r", 0, output="0"))
    assert await store.record("w", entry("r", 1, output="1", attempts=2))
    entries = await store.load_entries("r")
    assert [(e.seq, e.status, e.attempts, e.output, e.wake_at) for e in entries] == [
        (0, "completed", 1, "0", None),
        (1, "completed", 2, "1", None),
    ]
    assert await store.load_entries("missing") == []


async def check_entries_round_trip_every_field(store: Store) -> None:
    """Branch and position (journal format 3) come back as written, and so does a missing
    position (entries of runs started on formats 1 and 2), alone or written together."""
    for run_id in ("r", "s"):
        await store.create_run(run_record(run_id))
    await claim_one(store, "w", "r")
    alone = Entry(
        "r", 0, "llm", "summarize", "completed", input='{"prompt":"Zoë ✓ \\"q\\" 🎵"}',
        output='"ok"', attempts=3, started_at=NOW + 0.125, finished_at=NOW + 1.5,
        branch="", position=0,
    )  # fmt: skip
    assert await store.record("w", alone)
    together = [
        Entry("r", 1, "sleep", "sleep", "waiting", started_at=NOW + 2, wake_at=NOW + 86_400.25,
              branch="1/", position=0),
        Entry("r", 2, "step", "charge", "retrying", input="{}", error='{"type":"Timeout"}',
              attempts=2, started_at=NOW + 3, wake_at=NOW + 60, branch="1/0/", position=7),
        Entry("s", 0, "now", "now", "completed", output=str(NOW), branch="", position=None),
        Entry("s", 1, "event", "reply", "failed", output='{"n":1}', error='{"type":"V"}',
              branch="", position=None),
    ]  # fmt: skip
    # issued before any is awaited: a store may write them as one batch
    assert await asyncio.gather(*(store.record("w", e) for e in together)) == [True] * 4
    assert await store.load_entries("r") == [alone, *together[:2]]
    assert await store.load_entries("s") == together[2:]
    assert [e.key for e in await store.load_entries("r")] == ["0", "1.0", "1.0.7"]


async def check_journal_format_round_trips(store: Store) -> None:
    """A run keeps the journal format it started with: replay matches entries by it."""
    for fmt in (1, 2, 3):
        run = run_record(f"f{fmt}", journal_format=fmt)
        assert (await store.create_run(run))[0] == run
        assert await store.get_run(f"f{fmt}") == run
    await claim_one(store, "w", "f1")
    child = run_record("f1~0", parent_run_id="f1", parent_seq=0, journal_format=3)
    assert await store.start_child("w", entry("f1", 0, "waiting", kind="child"), child)
    assert await store.get_run("f1~0") == child


async def check_writes_commit_in_the_order_they_were_issued(store: Store) -> None:
    """``record`` queues its write when called: later writes of the run (upserts of the same
    entry, then a fenced write such as finishing the run) land after it."""
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    pending = [
        store.record("w", entry("r", 0, "retrying", attempts=1, wake_at=NOW + 1)),
        store.record("w", entry("r", 0, output='"a"', attempts=2)),
        store.record("w", entry("r", 1, output='"b"')),
    ]
    assert await store.finish_run("w", "r", "completed", '"done"', NOW + 1)
    assert await asyncio.gather(*pending) == [True, True, True]
    assert [(e.seq, e.status, e.attempts, e.output) for e in await store.load_entries("r")] == [
        (0, "completed", 2, '"a"'),
        (1, "completed", 1, '"b"'),
    ]
    # the same before parking: the timer entry is written before the run is unloaded
    await store.create_run(run_record("s"))
    await claim_one(store, "w", "s", now=NOW + 1)
    sleeping = store.record("w", entry("s", 0, "waiting", kind="sleep", wake_at=NOW + 60))
    assert await store.park("w", "s", Wait(NOW + 60, "sleep"), NOW + 1)
    assert await sleeping
    assert [e.status for e in await store.load_entries("s")] == ["waiting"]


async def check_journals_load_together(store: Store) -> None:
    for run_id in ("a", "b", "c"):
        await store.create_run(run_record(run_id))
    await store.claim("w", ["wf"], NOW, 30.0, 10)
    for run_id, n in (("a", 2), ("b", 1)):
        for seq in range(n):
            assert await store.record("w", entry(run_id, seq, output=f'"{run_id}{seq}"'))
    journals = await store.load_journals(["a", "b", "c", "missing"])
    assert {k: [e.output for e in v] for k, v in journals.items()} == {
        "a": ['"a0"', '"a1"'], "b": ['"b0"'], "c": [], "missing": [],
    }  # fmt: skip
    assert journals["a"] == await store.load_entries("a")
    assert await store.load_journals([]) == {}
