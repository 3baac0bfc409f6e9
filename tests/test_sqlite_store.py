"""SQLite-specific behaviour: durability modes, WAL housekeeping, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from legato.store import open_store
from legato.store.migrations import migrations
from legato.store.sqlite import SQLiteStore
from legato.testing.conformance import _entry, _run


@pytest.mark.parametrize(("durability", "level"), [("normal", 1), ("full", 2)])
def test_durability_sets_the_sync_level(tmp_path: Path, durability: str, level: int) -> None:
    store = asyncio.run(open_store(f"sqlite:///{tmp_path / 'd.db'}", durability=durability))
    assert isinstance(store, SQLiteStore)
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == level
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    asyncio.run(store.close())


def test_background_checkpoints_keep_the_wal_from_growing(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"

    async def main() -> None:
        store = await open_store(f"sqlite:///{path}", long_lived=True)
        assert isinstance(store, SQLiteStore)
        store._checkpointer.__dict__.update(_every=0.05, _min=1)  # type: ignore[union-attr]
        await store.create_run(_run("r"))
        await store.claim("w", ["wf"], 1_800_000_000.0, 30, 1)
        for seq in range(2000):
            assert await store.record("w", _entry("r", seq, output="x" * 200))
        # the committing connection never checkpoints itself...
        assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        # ...the helper thread does
        deadline = time.monotonic() + 30
        while True:
            conn = sqlite3.connect(path)
            busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            conn.close()
            if frames == done and busy == 0:
                break
            assert time.monotonic() < deadline, "the WAL was never checkpointed"
            await asyncio.sleep(0.05)
        await store.close()

    asyncio.run(main())


def test_migrations_are_numbered_and_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    shipped = migrations("sqlite")
    assert [v for v, _, _ in shipped] == list(range(1, len(shipped) + 1))
    url = f"sqlite:///{tmp_path / 'm.db'}"

    async def reopen() -> None:
        await (await open_store(url)).close()

    for _ in range(2):
        asyncio.run(reopen())
    conn = sqlite3.connect(tmp_path / "m.db")
    applied = [r[0] for r in conn.execute("SELECT version FROM legato_migrations ORDER BY 1")]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert applied == [v for v, _, _ in shipped]
    assert {"runs", "entries", "events", "workers", "legato_migrations"} <= tables
