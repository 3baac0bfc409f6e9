"""Collecting the checks and running them, each on a fresh store from the caller's factory."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from types import ModuleType

from legato.store.base import Store
from legato.testing.conformance import (
    approvals,
    audit,
    breakers,
    children,
    claims_and_leases,
    control,
    deployment_facts,
    events,
    fencing,
    forks,
    gate_and_throttles,
    gc,
    journal,
    metrics,
    monitors,
    notifications,
    parking,
    runs,
    schedules,
    schema,
    usage_and_cache,
    wakeups,
    workers,
)

CheckFunction = Callable[[Store], Awaitable[None]]
#: An async function returning a fresh, empty, opened store, or an async generator yielding
#: one (code after its ``yield`` runs once the check is done: drop a schema, remove a file).
StoreFactory = Callable[[], Awaitable[Store]] | Callable[[], AsyncIterator[Store]]

_MODULES: dict[str, ModuleType] = {
    "schema": schema,
    "runs": runs,
    "journal": journal,
    "claims_and_leases": claims_and_leases,
    "fencing": fencing,
    "forks": forks,
    "events": events,
    "parking": parking,
    "children": children,
    "approvals": approvals,
    "gate_and_throttles": gate_and_throttles,
    "audit": audit,
    "control": control,
    "deployment_facts": deployment_facts,
    "usage_and_cache": usage_and_cache,
    "breakers": breakers,
    "metrics": metrics,
    "monitors": monitors,
    "gc": gc,
    "wakeups": wakeups,
    "workers": workers,
    "notifications": notifications,
    "schedules": schedules,
}
CAPABILITIES: tuple[str, ...] = tuple(_MODULES)


@dataclass(frozen=True)
class Check:
    """One behaviour a store must have: ``await check(store)`` raises AssertionError if not."""

    capability: str
    function: CheckFunction

    @property
    def name(self) -> str:
        return self.function.__name__.removeprefix("check_")

    @property
    def id(self) -> str:
        return f"{self.capability}/{self.name}"

    def __str__(self) -> str:
        return self.id

    async def __call__(self, store: Store) -> None:
        await self.function(store)


def checks(*, only: Collection[str] | None = None, exclude: Collection[str] = ()) -> list[Check]:
    """The checks of every capability (or of ``only`` those), less those in ``exclude``.

    A store without notifications (``on_wake`` never calls back; its workers poll) passes
    ``exclude=["notifications"]``.
    """
    for name in [*(only or ()), *exclude]:
        if name not in _MODULES:
            raise ValueError(f"unknown capability {name!r}; expected one of {CAPABILITIES}")
    found = []
    for capability, module in _MODULES.items():
        if (only is not None and capability not in only) or capability in exclude:
            continue
        for name, value in vars(module).items():  # in the order they are written
            mine = getattr(value, "__module__", None) == module.__name__
            if name.startswith("check_") and callable(value) and mine:
                found.append(Check(capability, value))
    return found


async def run_check(check: Check, factory: StoreFactory) -> None:
    """Run ``check`` on a fresh store from ``factory``, then close the store."""
    made = factory()
    if isinstance(made, AsyncIterator):
        store = await anext(made)
        try:
            await _run_and_close(check, store)
        finally:
            extra = await anext(made, None)  # runs the factory's clean-up after its yield
        if extra is not None:
            raise RuntimeError("a store factory must yield exactly one store")
    else:
        await _run_and_close(check, await made)


async def _run_and_close(check: Check, store: Store) -> None:
    try:
        await check(store)
    finally:
        await store.close()


@dataclass
class Report:
    """What :func:`run_all` found: the ids of the checks that passed, and of those that
    failed with their tracebacks."""

    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"{len(self.passed)} passed, {len(self.failed)} failed"]
        lines += [f"\nFAILED {check_id}\n{text}" for check_id, text in self.failed.items()]
        return "\n".join(lines)


async def run_all(
    factory: StoreFactory,
    *,
    only: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> Report:
    """Run every check (see :func:`checks`), each on a fresh store, and report."""
    report = Report()
    for check in checks(only=only, exclude=exclude):
        try:
            await run_check(check, factory)
        except Exception:
            report.failed[check.id] = traceback.format_exc()
        else:
            report.passed.append(check.id)
    return report


def conformance_test(
    factory: StoreFactory,
    *,
    only: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> Callable[[Check], None]:
    """A pytest test function, parametrized over the checks, that runs each on a fresh store
    from ``factory``: ``test_my_store = conformance_test(open_my_store)``."""
    import pytest  # only this helper needs pytest, a test dependency

    @pytest.mark.parametrize("check", checks(only=only, exclude=exclude), ids=str)
    def test_store_conformance(check: Check) -> None:
        asyncio.run(run_check(check, factory))

    return test_store_conformance
