"""Every store backend passes the same conformance checks (legato.testing.conformance)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from legato.store import open_store
from legato.testing.conformance import CHECKS, Check
from tests.conftest import postgres_schema

BACKENDS = ["sqlite", "postgres"]


def _check(url: str, check: Check) -> None:
    async def main() -> None:
        store = await open_store(url)
        try:
            await check(store)
        finally:
            await store.close()

    asyncio.run(main())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_store_conformance(backend: str, check: Check, tmp_path: Path) -> None:
    if backend == "sqlite":
        _check(f"sqlite:///{tmp_path / 'conformance.db'}", check)
    else:
        with postgres_schema() as url:
            _check(url, check)
