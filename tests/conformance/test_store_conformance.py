"""Every store backend passes the same conformance checks (legato.testing.conformance)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from legato.store import open_store
from legato.testing.conformance import CHECKS, Check

BACKENDS = ["sqlite"]


def _url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'conformance.db'}"
    raise AssertionError(f"no such backend {backend}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_store_conformance(backend: str, check: Check, tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(_url(backend, tmp_path))
        try:
            await check(store)
        finally:
            await store.close()

    asyncio.run(main())
