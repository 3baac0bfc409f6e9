"""Persistence: the :class:`Store` protocol and the backends behind it.

``Store`` is the union of one protocol per role (see ``legato.store.base``); a layer that needs
one part can ask for just that part.
"""

from __future__ import annotations

from legato.errors import ConfigurationError
from legato.store.base import (
    TERMINAL,
    Entry,
    RunRecord,
    Store,
    Wait,
    WorkerRecord,
    redact_url,
)

DEFAULT_URL = "sqlite:///./legato.db"


async def open_store(
    url: str,
    *,
    durability: str = "normal",
    long_lived: bool = False,
    create: bool = True,
    create_schema: bool = False,
) -> Store:
    """Open (creating and migrating if needed) the store at ``url``.

    ``long_lived`` stores (an app's, which workers write through) keep housekeeping such as
    SQLite WAL checkpoints off the connection that commits journal entries. With
    ``create=False`` a SQLite file that does not exist is an error instead of a new database
    (what a command that only reads wants: a mistyped path must not print "no runs"), and so
    is a PostgreSQL schema without legato's tables. ``create_schema`` (``legato db upgrade``)
    also creates the PostgreSQL schema that the URL's search_path names when it is missing.
    """
    if url.startswith("sqlite://"):
        from legato.store.sqlite import SQLiteStore

        store = SQLiteStore.open(url, durability, create=create)  # type: ignore[arg-type]
        if long_lived:
            store.checkpoint_in_background()
        return store
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from legato.store.postgres import PostgresStore
        except ImportError as exc:
            raise ConfigurationError(
                f"PostgreSQL needs the postgres extra ({exc.name} is missing):"
                " pip install 'legato[postgres]'"
            ) from None

        return await PostgresStore.open(
            url, durability=durability, create=create, create_schema=create_schema
        )
    raise ConfigurationError(
        f"unsupported database URL {url!r}: expected sqlite:///path/to/file.db or"
        " postgresql://user@host/database"
    )


__all__ = [
    "DEFAULT_URL",
    "TERMINAL",
    "Entry",
    "RunRecord",
    "Store",
    "Wait",
    "WorkerRecord",
    "open_store",
    "redact_url",
]
