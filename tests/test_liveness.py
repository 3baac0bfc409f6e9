"""Dead workers' runs are taken over long before their leases expire, on any machine; waiting
for a result ends when the run does, whoever ends it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

import legato
from legato.store import WorkerRecord, open_store
from legato.store.base import AuditEvent, Entry, RunRecord
from legato.store.postgres_session import WORKER_SEED
from tests.apps import crash_app, notify_app
from tests.apps.counters import counts
from tests.conftest import WorkerProcess, sql, wait_until

NOW = 1_800_000_000.0


@pytest.fixture
def crash(db_url: str) -> Iterator[legato.App]:
    crash_app.app.database_url = db_url
    yield crash_app.app
    crash_app.app.close()


def _status(db_url: str, run_id: str) -> str | None:
    rows = sql(db_url, "SELECT status FROM runs WHERE run_id = ?", (run_id,))
    return str(rows[0][0]) if rows else None


def _workers(db_url: str) -> int:
    rows = sql(db_url, "SELECT count(*) FROM workers")
    return int(rows[0][0]) if rows else 0


def test_a_sigkilled_worker_is_taken_over_by_another_long_before_its_lease(
    crash: legato.App,
    db_url: str,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    """Each worker runs in a process group of its own. On PostgreSQL the two also have
    different host identities, as on two machines: no pid can tell that the victim died,
    only its database session. SQLite lives on one host, where its pid tells."""
    postgres = db_url.startswith("postgresql")

    def machine(name: str) -> dict[str, str]:
        return {"LEGATO_HOST_IDENTITY": name} if postgres else {}

    log = tmp_path / "executions.log"
    crash.start(crash_app.ten_steps, 4, run_id="victim")
    # A 10-minute lease: within this test's bounds only the takeover can free the run.
    lease = ("--lease", "600")
    victim = spawn_worker("tests.apps.crash_app:app", *lease, env=machine("a"), new_session=True)
    wait_until(lambda: counts(log)[("victim", "4")] == 1, what="step 4 to start")  # it blocks
    survivor = spawn_worker("tests.apps.crash_app:app", *lease, env=machine("b"), new_session=True)
    wait_until(lambda: _workers(db_url) == 2, what="the survivor to register")
    victim.kill()

    wait_until(lambda: _status(db_url, "victim") == "completed", timeout=120, what="takeover")
    assert crash.handle("victim").result() == sum(i * i for i in range(1, 11))
    ran = counts(log)
    assert [ran[("victim", str(i))] for i in range(1, 11)] == [1, 1, 1, 2, 1, 1, 1, 1, 1, 1]
    why = "its database session ended" if postgres else f"its process {victim.pid} is gone"
    assert f"is gone ({why}); its runs are claimable now" in survivor.output()
    assert survivor.stop() == 0


async def _lock_holder(conn: psycopg.AsyncConnection, worker_id: str) -> int | None:  # type: ignore[type-arg]
    """The backend that holds the worker's liveness lock, if any."""
    cur = await conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(%s, %s)",
        (worker_id, WORKER_SEED),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


def test_postgres_tells_a_worker_whose_process_ended_from_live_ones(pg_url: str) -> None:
    async def main() -> None:
        mine, gone, live = [await open_store(pg_url) for _ in range(3)]
        for store, name in ((mine, "w-mine"), (gone, "w-gone"), (live, "w-live")):
            await store.register_worker(WorkerRecord(name, "somewhere", 1, NOW, NOW))
        assert await mine.disconnected_workers() == []
        await gone.close()  # as when its process dies: the session ends, the row stays

        seen: list[str] = []
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:  # seen free twice, a moment apart
            seen = list(await mine.disconnected_workers() or [])
            await asyncio.sleep(0.05)
        assert seen == ["w-gone"]
        await mine.deregister_worker("w-gone", NOW)
        assert sorted(w.worker_id for w in await mine.list_workers()) == ["w-live", "w-mine"]

        # A live worker whose session is cut takes its lock back at once, and keeps its row.
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            before = await _lock_holder(admin, "w-live")
            assert before is not None
            await admin.execute("SELECT pg_terminate_backend(%s)", (before,))
            holder: int | None = before
            while holder in (before, None) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                holder = await _lock_holder(admin, "w-live")
            assert holder not in (before, None)
        assert "w-live" in [w.worker_id for w in await mine.list_workers()]
        await mine.close()
        await live.close()

    asyncio.run(main())


def _record(run_id: str, workflow: str, wake_at: float) -> RunRecord:
    return RunRecord(
        run_id, workflow, "pending", "[]", wake_at=wake_at, created_at=NOW, updated_at=NOW
    )


def test_claim_next_takes_runs_with_journals_and_says_when_the_rest_is_due(db_url: str) -> None:
    async def main() -> None:
        store = await open_store(db_url)
        for run in (
            _record("a1", "a", NOW),
            _record("b1", "b", NOW),
            _record("a2", "a", NOW + 50),
            _record("b2", "b", NOW + 20),
        ):
            await store.create_run(run)
        audit = AuditEvent("workflow.paused", "{}", actor="ops", subject="b")
        assert await store.set_paused("b", True, "ops", "test", NOW, audit)

        claim = await store.claim_next("w1", ["a", "b"], NOW + 1, 30.0, 10)
        assert [r.run_id for r in claim.runs] == ["a1"]  # b1 is due, but b is paused
        assert claim.runs[0].owner == "w1" and claim.runs[0].status == "running"
        assert claim.journals == {"a1": []}
        assert claim.next_wake_at == NOW + 50  # paused b2 does not count

        entry = Entry("a1", 0, "step", "s", "completed", output="7", started_at=NOW)
        assert await store.record("w1", entry)
        assert await store.release("w1", "a1", NOW + 2)
        again = await store.claim_next("w2", ["a"], NOW + 3, 30.0, 10)
        assert [r.run_id for r in again.runs] == ["a1"]
        assert [(e.seq, e.output) for e in again.journals["a1"]] == [(0, "7")]
        assert again.next_wake_at == NOW + 50

        full = await store.claim_next("w3", ["a"], NOW + 100, 30.0, 0)
        assert full.runs == [] and full.next_wake_at is not None
        await store.close()

    asyncio.run(main())


def test_waiting_for_a_result_ends_with_the_run_whoever_ends_it(
    db_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    notify_app.app.database_url = db_url
    other = legato.App("other", db_url)  # another client of the database
    other.workflow(name="waits")(notify_app.waits)
    try:
        spawn_worker("tests.apps.notify_app:app")
        done = notify_app.app.start(notify_app.waits, run_id="done")
        stopped = notify_app.app.start(notify_app.waits, run_id="stopped")
        with pytest.raises(legato.ResultTimeout):
            done.result(timeout=0.2)  # it waits for an event nobody sent yet

        async def wait_for_both() -> tuple[object, BaseException | None]:
            waiting = [
                asyncio.create_task(notify_app.app.handle(r).result_async(timeout=60))
                for r in ("done", "stopped")
            ]
            # ended by another client: the run by a worker process, the other by a cancel
            await other.send_event_async("done", "go", {"ok": True})
            await other.cancel_async("stopped")
            results = await asyncio.gather(*waiting, return_exceptions=True)
            await other.close_async()
            await notify_app.app.close_async()
            return results[0], results[1] if isinstance(results[1], BaseException) else None

        result, error = asyncio.run(wait_for_both())
        assert result == {"ok": True}
        assert isinstance(error, legato.RunCancelled)
        assert stopped.status() == "cancelled"
    finally:
        other.close()
        notify_app.app.close()
