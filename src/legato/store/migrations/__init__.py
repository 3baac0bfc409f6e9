"""Numbered SQL migrations, applied in order and recorded.

A version is written once for both dialects where they run the same statements: the file in
this folder, in which the few words the dialects spell differently are placeholders
(``$real``: SQLite's REAL is PostgreSQL's DOUBLE PRECISION, and so on, see ``_WORDS``). What
only one dialect runs is in its own folder under the same name and runs after the shared file.
"""

from __future__ import annotations

import re
import sqlite3
import time
from importlib import resources
from string import Template

from legato.errors import StoreError

LEGATO_APPLICATION_ID = 1279608641  # 'LEGA' in the SQLite header's application_id field
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_WORDS: dict[str, dict[str, str]] = {
    "sqlite": {
        "real": "REAL",
        "bigint": "INTEGER",  # SQLite's integers are 64-bit; INTEGER PRIMARY KEY is the rowid
        "bool": "INTEGER",
        "serial_key": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "without_rowid": " WITHOUT ROWID",  # a table stored in its primary key's order
    },
    "postgres": {
        "real": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "bool": "BOOLEAN",
        "serial_key": "BIGSERIAL PRIMARY KEY",
        "without_rowid": "",
    },
}


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration shipped for ``dialect``, in order."""
    shared = resources.files(__package__)
    found: dict[int, tuple[str, list[str]]] = {}
    for folder in (shared, shared.joinpath(dialect)):
        for item in sorted(folder.iterdir(), key=lambda i: i.name):
            match = _NAME.match(item.name)
            if not match:
                continue
            text = item.read_text()
            if folder is shared:
                text = Template(text).substitute(_WORDS[dialect])
            name, texts = found.setdefault(int(match.group(1)), (match.group(2), []))
            if name != match.group(2):
                raise StoreError(f"migration {item.name} has another name than its shared file")
            texts.append(text)
    return [(version, name, "\n".join(texts)) for version, (name, texts) in sorted(found.items())]


def _statements(sql: str) -> list[str]:
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf)
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise StoreError("migration ends with an incomplete SQL statement")
    return out


def check_legato_file(conn: sqlite3.Connection, path: str) -> None:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id == LEGATO_APPLICATION_ID:
        return
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if app_id == 0 and not tables:
        return  # a new, empty file: ours to set up
    shown = ", ".join(tables[:5]) + (" ..." if len(tables) > 5 else "")
    raise StoreError(
        f"{path!r} is a SQLite database that legato did not create"
        f" (application_id {app_id}, tables: {shown or 'none'}); refusing to change it."
        " Point LEGATO_DATABASE_URL at a new file"
    )


def check_version(applied: set[int], latest: int, shown: str) -> None:
    """Refuse a database migrated by a newer legato than this one."""
    newest = max(applied, default=0)
    if newest > latest:
        raise StoreError(
            f"{shown} has schema version {newest}, newer than this legato knows ({latest});"
            " upgrade legato"
        )


def apply_sqlite_migrations(conn: sqlite3.Connection, path: str) -> int:
    """Apply every missing migration; return the schema version. Safe to race."""
    known = migrations("sqlite")
    latest = known[-1][0]
    conn.execute("BEGIN IMMEDIATE")
    try:
        check_legato_file(conn, path)
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'legato_migrations'"
        ).fetchone()
        applied = (
            {r[0] for r in conn.execute("SELECT version FROM legato_migrations")}
            if has_table
            else set()
        )
        check_version(applied, latest, repr(path))
        for version, name, sql in known:
            if version in applied:
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO legato_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return latest
