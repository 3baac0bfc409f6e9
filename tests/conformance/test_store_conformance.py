"""Every store backend passes the same conformance checks (legato.testing.conformance)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from legato.store import open_store
from legato.testing.conformance import Check, checks, run_check
from tests.conftest import postgres_schema

# SQLite has no notifications: its workers poll (on_wake never calls back)
SQLITE_CHECKS = checks(exclude=["notifications"])
POSTGRES_CHECKS = checks()


@pytest.mark.parametrize("check", SQLITE_CHECKS, ids=str)
def test_sqlite_store(check: Check, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conformance.db'}"
    asyncio.run(run_check(check, lambda: open_store(url)))


@pytest.mark.parametrize("check", POSTGRES_CHECKS, ids=str)
def test_postgres_store(check: Check) -> None:
    with postgres_schema() as url:
        asyncio.run(run_check(check, lambda: open_store(url)))
