"""Migrations: a database left at any earlier version upgrades to the schema a new one gets."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg

from legato.store import open_store
from legato.store.migrations import migrations
from tests.conftest import postgres_schema


async def _open_and_close(url: str) -> None:
    await (await open_store(url)).close()


def _sqlite_schema(path: Path) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
        return [conn.execute("PRAGMA application_id").fetchone(), *rows.fetchall()]
    finally:
        conn.close()


def test_an_older_sqlite_database_upgrades_to_the_schema_of_a_new_one(tmp_path: Path) -> None:
    asyncio.run(_open_and_close(f"sqlite:///{tmp_path / 'new.db'}"))
    expected = _sqlite_schema(tmp_path / "new.db")
    shipped = migrations("sqlite")
    for upto in range(1, len(shipped)):
        path = tmp_path / f"at{upto}.db"
        conn = sqlite3.connect(path)
        for version, name, text in shipped[:upto]:
            conn.executescript(text)
            conn.execute(
                "INSERT INTO legato_migrations VALUES (?, ?, ?)", (version, name, time.time())
            )
            conn.commit()
        conn.close()
        asyncio.run(_open_and_close(f"sqlite:///{path}"))
        assert _sqlite_schema(path) == expected, f"upgraded from version {upto}"


def _postgres_schema(url: str) -> list[Any]:
    with psycopg.connect(url) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        rows = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
            " ORDER BY 1, 2"
        ).fetchall()
        rows += conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " ORDER BY 1"
        ).fetchall()
        rows += conn.execute(
            "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = current_schema()"
            " ORDER BY 1"
        ).fetchall()
    assert schema is not None
    return [tuple(str(v).replace(schema[0], "S") for v in row) for row in rows]


def test_an_older_postgres_database_upgrades_to_the_schema_of_a_new_one() -> None:
    with postgres_schema() as url:
        asyncio.run(_open_and_close(url))
        expected = _postgres_schema(url)
    shipped = migrations("postgres")
    for upto in range(1, len(shipped)):
        with postgres_schema() as url:
            with psycopg.connect(url, autocommit=True) as conn:
                for version, name, text in shipped[:upto]:
                    conn.execute(text.encode())  # several statements: the simple query protocol
                    conn.execute(
                        "INSERT INTO legato_migrations VALUES (%s, %s, %s)",
                        (version, name, time.time()),
                    )
            asyncio.run(_open_and_close(url))
            assert _postgres_schema(url) == expected, f"upgraded from version {upto}"
