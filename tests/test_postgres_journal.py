"""The PostgreSQL journal: a write alone and a batch of writes are fenced alike, a caller's
cancellation leaves its write in the ordering barrier, and ``durability`` decides
``synchronous_commit`` on the journal's own connection only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from legato.store import open_store, postgres
from legato.store.base import Entry, RunRecord
from legato.store.postgres import PostgresStore
from tests.conftest import sql

NOW = 1_800_000_000.0
LEASE = 30.0


def _run(run_id: str) -> RunRecord:
    return RunRecord(run_id, "wf", "pending", '{"args":[],"kwargs":{}}', wake_at=NOW,
                     created_at=NOW, updated_at=NOW)  # fmt: skip


def _entry(run_id: str, seq: int) -> Entry:
    return Entry(run_id, seq, "step", f"s{seq}", "completed", output=f'"{run_id}{seq}"')


def _seqs(url: str, run_id: str) -> list[int]:
    return [seq for (seq,) in sql(url, "SELECT seq FROM entries WHERE run_id = ? ORDER BY seq",
                                  (run_id,))]  # fmt: skip


async def _store(url: str, durability: str = "normal") -> PostgresStore:
    store = await open_store(url, durability=durability)
    assert isinstance(store, PostgresStore)
    return store


async def _two_runs_one_lost(store: PostgresStore) -> None:
    """Runs "a" and "b", claimed by "old"; then "a" moves to "new" (its lease expired), while
    "old" still holds "b" (it heartbeated)."""
    for run_id in ("a", "b"):
        await store.create_run(_run(run_id))
    assert len(await store.claim("old", ["wf"], NOW, LEASE, 10)) == 2
    await store.heartbeat("old", ["b"], NOW + 20, LEASE)
    assert [r.run_id for r in await store.claim("new", ["wf"], NOW + LEASE + 1, LEASE, 10)] == ["a"]


def _spy_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which journal statement each write sent: "one" (a row alone) or "many" (a batch)."""
    sent: list[str] = []
    names = {postgres._UPSERT_ONE: "one", postgres._UPSERT_MANY: "many"}
    execute = psycopg.AsyncCursor.execute

    async def spy(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if query in names:
            sent.append(names[query])
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", spy)
    return sent


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll until ``check`` holds (a bound on a hang, not a timing assertion)."""
    deadline = time.monotonic() + 30
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def _journal_waits_on_a_lock(
    store: PostgresStore, url: str, writes: list[asyncio.Future[bool]]
) -> None:
    """Until the journal's connection waits for a row lock (or, had it not, its writes ended)."""
    conn = store._journal._conn
    assert conn is not None, "the journal has not connected yet"
    pid = conn.info.backend_pid

    async def waiting() -> bool:
        rows = sql(url, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = ?", (pid,))
        return rows == [("Lock",)] or all(w.done() for w in writes)

    await _until(waiting, "the journal's write to wait for the run's row lock")


def test_a_write_alone_and_a_batch_are_fenced_alike(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _spy_statements(monkeypatch)

    async def main() -> None:
        store = await _store(pg_url)
        try:
            await _two_runs_one_lost(store)
            # one write at a time: the single-row statement
            assert not await store.record("old", _entry("a", 0))
            assert await store.record("old", _entry("b", 0))
            assert sent == ["one", "one"]
            # writes queued in the same loop turn: one batch
            both = await asyncio.gather(
                store.record("old", _entry("a", 1)),
                store.record("old", _entry("b", 1)),
                store.record("old", _entry("a", 2)),
            )
            assert both == [False, True, False]
            assert sent == ["one", "one", "many"]
            assert await store.record("new", _entry("a", 0))  # the run's owner now
        finally:
            await store.close()

    asyncio.run(main())
    assert _seqs(pg_url, "a") == [0]
    assert _seqs(pg_url, "b") == [0, 1]
    assert sql(pg_url, "SELECT output FROM entries WHERE run_id = 'a'") == [('"a0"',)]


@pytest.mark.parametrize("writes", [1, 2], ids=["alone", "batch"])
def test_a_claim_in_flight_refuses_the_writes_it_held_up(
    pg_url: str, writes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fence locks the run's row (FOR SHARE), it does not read a snapshot: a write that
    meets a claim moving the run elsewhere waits for it, then sees it and writes nothing."""
    sent = _spy_statements(monkeypatch)

    async def main() -> None:
        store = await _store(pg_url)
        claim = await psycopg.AsyncConnection.connect(pg_url)  # one open transaction
        try:
            await _two_runs_one_lost(store)
            assert await store.record("old", _entry("b", 0))  # the journal is connected
            await claim.execute("UPDATE runs SET owner = 'other' WHERE run_id = 'b'")
            pending = [
                asyncio.ensure_future(store.record("old", _entry("b", seq)))
                for seq in range(1, writes + 1)
            ]
            await _journal_waits_on_a_lock(store, pg_url, pending)
            await claim.commit()
            assert await asyncio.gather(*pending) == [False] * writes
        finally:
            await claim.close()
            await store.close()

    asyncio.run(main())
    assert sent == ["one", "one" if writes == 1 else "many"]
    assert _seqs(pg_url, "b") == [0]


def test_a_cancelled_caller_leaves_its_write_in_the_barrier(pg_url: str) -> None:
    """A run parked while its write is on the way: the write still lands, and a fenced write
    of that run (``drain``) waits for it."""

    async def main() -> None:
        store = await _store(pg_url)
        blocker = await psycopg.AsyncConnection.connect(pg_url)
        try:
            await _two_runs_one_lost(store)
            assert await store.record("old", _entry("b", 0))
            await blocker.execute("SELECT 1 FROM runs WHERE run_id = 'b' FOR UPDATE")

            async def caller() -> bool:
                return await store.record("old", _entry("b", 1))

            task = asyncio.create_task(caller())
            await _journal_waits_on_a_lock(store, pg_url, [task])
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            drained = asyncio.create_task(store._journal.drain("b"))
            for _ in range(5):
                await asyncio.sleep(0)
            assert not drained.done()  # the write cannot commit while the row is locked
            await blocker.rollback()
            await drained
            assert _seqs(pg_url, "b") == [0, 1]
        finally:
            await blocker.close()
            await store.close()

    asyncio.run(main())


async def _settings(store: PostgresStore) -> tuple[str, set[str]]:
    """``synchronous_commit`` of the journal's connection, and of pooled connections."""
    await store.create_run(_run("r"))
    await store.claim("w", ["wf"], NOW, LEASE, 1)
    assert await store.record("w", _entry("r", 0))  # the journal connects
    conn = store._journal._conn
    assert conn is not None
    row = await (await conn.execute("SHOW synchronous_commit")).fetchone()
    assert row is not None
    pooled = set()
    async with store._pool.connection() as one, store._pool.connection() as two:
        for pool_conn in (one, two):
            shown = await (await pool_conn.execute("SHOW synchronous_commit")).fetchone()
            assert shown is not None
            pooled.add(shown[0])
    return row[0], pooled


@pytest.mark.parametrize("relaxed", [False, True], ids=["server-default", "url-says-off"])
def test_durability_decides_synchronous_commit_of_the_journal_only(
    pg_url: str, relaxed: bool
) -> None:
    """normal: the journal commits asynchronously, everything else as the server (or URL)
    says; full: every connection commits synchronously."""
    url = pg_url + "%20-csynchronous_commit%3Doff" if relaxed else pg_url
    default = sql(url, "SHOW synchronous_commit")[0][0]

    async def settings(durability: str) -> tuple[str, set[str]]:
        store = await _store(url, durability)
        try:
            return await _settings(store)
        finally:
            await store.close()

    assert asyncio.run(settings("normal")) == ("off", {default})
    sql(pg_url, "DELETE FROM entries")
    sql(pg_url, "DELETE FROM runs")
    assert asyncio.run(settings("full")) == ("on", {"on"})


def test_a_reconnected_journal_keeps_its_durability(pg_url: str) -> None:
    async def main() -> None:
        store = await _store(pg_url)
        try:
            assert await _settings(store) == ("off", {sql(pg_url, "SHOW synchronous_commit")[0][0]})
            conn = store._journal._conn
            assert conn is not None
            sql(pg_url, "SELECT pg_terminate_backend(?)", (conn.info.backend_pid,))
            assert await store.record("w", _entry("r", 1))  # reconnects, then writes
            again = store._journal._conn
            assert again is not None and again is not conn
            row = await (await again.execute("SHOW synchronous_commit")).fetchone()
            assert row == ("off",)
        finally:
            await store.close()

    asyncio.run(main())
    assert _seqs(pg_url, "r") == [0, 1]
