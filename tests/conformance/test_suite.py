"""The conformance suite itself: it calls every store method, catches broken stores, and its
entry points (checks, run_check, run_all, conformance_test) work as documented."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from legato.store import open_store
from legato.store.base import Entry, Store
from legato.store.usage import UsageTotals
from legato.testing import conformance
from legato.testing.conformance import CAPABILITIES, checks, conformance_test, run_all


class _Proxy:
    """A store that forwards to a real one; subclasses change or watch what passes."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _factory(tmp: Path, wrap: Callable[[Store], Any]) -> Callable[[], Awaitable[Store]]:
    count = 0

    async def make() -> Store:
        nonlocal count
        count += 1
        store: Store = wrap(await open_store(f"sqlite:///{tmp / f'{count}.db'}"))
        return store

    return make


def test_the_suite_calls_every_store_method(tmp_path: Path) -> None:
    """Every method and attribute of every role protocol that makes up ``Store``."""
    seen: set[str] = set()

    class Watched(_Proxy):
        def __getattr__(self, name: str) -> Any:
            seen.add(name)
            return super().__getattr__(name)

    report = asyncio.run(run_all(_factory(tmp_path, Watched), exclude=["notifications"]))
    assert report.ok, report
    roles = [c for c in Store.__mro__ if c.__module__ == Store.__module__]
    protocol = {n for c in roles for n in (*vars(c), *c.__annotations__) if not n.startswith("_")}
    assert len(roles) > 1 and len(protocol) > 40  # the roles were found
    assert protocol - seen == set()


def _failures(tmp_path: Path, wrap: Callable[[Store], Any], capability: str) -> set[str]:
    report = asyncio.run(run_all(_factory(tmp_path, wrap), only=[capability]))
    return set(report.failed)


def test_a_store_that_creates_a_run_twice_fails(tmp_path: Path) -> None:
    class Duplicating(_Proxy):
        async def create_run(self, run: Any) -> tuple[Any, bool]:
            stored, _ = await self._store.create_run(run)
            return stored, True

    assert "runs/create_is_idempotent" in _failures(tmp_path, Duplicating, "runs")


def test_a_store_that_does_not_fence_fails(tmp_path: Path) -> None:
    class Unfenced(_Proxy):
        async def record(self, owner: str, entry: Entry) -> bool:
            run = await self._store.get_run(entry.run_id)
            return await self._store.record(run.owner if run else owner, entry)

    failed = _failures(tmp_path, Unfenced, "fencing")
    assert "fencing/journal_and_run_writes_of_a_lost_run_are_refused" in failed
    assert "journal/writes_commit_in_the_order_they_were_issued" in _failures(
        tmp_path, Unfenced, "journal"
    )


def test_a_store_that_sums_costs_as_floats_fails(tmp_path: Path) -> None:
    class Floating(_Proxy):
        async def usage_totals(self, **filters: Any) -> UsageTotals:
            exact = await self._store.usage_totals(**filters)
            return dataclasses.replace(exact, cost_nanousd=int(float(exact.cost_nanousd)))

    failed = _failures(tmp_path, Floating, "usage_and_cache")
    assert failed == {"usage_and_cache/usage_totals_sum_exactly_over_the_matching_rows"}


def test_a_store_that_never_expires_the_cache_fails(tmp_path: Path) -> None:
    class Forever(_Proxy):
        async def cache_get(self, key: str, now: float) -> str | None:
            return await self._store.cache_get(key, 0.0)

    assert "usage_and_cache/cached_responses_expire" in _failures(
        tmp_path, Forever, "usage_and_cache"
    )


def test_a_store_without_notifications_fails_the_notification_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite never calls back: it fails them by design (so it leaves them out)."""
    monkeypatch.setattr(conformance.records, "WAKE_TIMEOUT", 0.2)
    failed = _failures(tmp_path, lambda s: s, "notifications")
    assert failed == {str(c) for c in checks(only=["notifications"])}


def test_checks_are_selected_by_capability() -> None:
    everything = checks()
    assert [c.id for c in everything] == [c.id for c in conformance.CHECKS]
    assert len({c.id for c in everything}) == len(everything)
    assert [c.capability for c in everything[:1]] == ["schema"]
    assert {c.capability for c in everything} == set(CAPABILITIES)
    assert {c.capability for c in checks(only=["gc", "audit"])} == {"gc", "audit"}
    assert "notifications" not in {c.capability for c in checks(exclude=["notifications"])}
    with pytest.raises(ValueError, match="unknown capability 'runz'"):
        checks(only=["runz"])


def test_every_module_of_the_package_is_a_capability() -> None:
    folder = Path(conformance.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__", "records", "suite"}
    assert modules == set(CAPABILITIES)


async def _store_in_a_temporary_folder() -> AsyncIterator[Store]:
    with tempfile.TemporaryDirectory() as folder:
        yield await open_store(f"sqlite:///{folder}/t.db")


# the helper third-party store authors use, here with an async generator factory
test_conformance_test_helper = conformance_test(_store_in_a_temporary_folder, only=["schema"])
