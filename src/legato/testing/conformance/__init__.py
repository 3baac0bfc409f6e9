"""The store conformance suite: what every :class:`legato.store.base.Store` must do.

legato's SQLite and PostgreSQL stores pass all of it, and so must yours. Each check is an async
function of a fresh, empty, opened store; it raises AssertionError where the store does not
behave as the engine, the workers and the operations layer need. Checks are grouped by
capability, one module each: ``schema``, ``runs``, ``journal``, ``claims_and_leases``,
``fencing``, ``forks``, ``events``, ``parking``, ``children``, ``approvals``,
``gate_and_throttles``, ``audit``, ``control`` (autonomy and pause), ``usage_and_cache``,
``breakers`` (circuit breakers), ``deployment_facts``, ``metrics``, ``monitors``, ``gc``,
``wakeups``, ``workers``, ``notifications`` and ``schedules``. Times are explicit (the store
API takes ``now``): nothing sleeps.

In your pytest suite, give a factory that returns a fresh store (an async function, or an
async generator that cleans up after its ``yield``)::

    from legato.testing.conformance import conformance_test

    async def open_my_store():
        return await MyStore.open("mystore://localhost/test-" + uuid.uuid4().hex)

    test_my_store = conformance_test(open_my_store)

That is one test per check, named like ``test_my_store[runs/create_is_idempotent]``. To use
fixtures (a temporary folder, a database per test), parametrize yourself::

    import asyncio
    import pytest
    from legato.testing.conformance import checks, run_check

    @pytest.mark.parametrize("check", checks(), ids=str)
    def test_my_store(check, tmp_path):
        asyncio.run(run_check(check, lambda: MyStore.open(tmp_path / "db")))

Without pytest, ``report = await run_all(open_my_store)`` runs them all and ``report.ok``,
``report.passed`` and ``report.failed`` (check id -> traceback) say how it went.

``checks(only=[...], exclude=[...])`` selects capabilities. A store without notifications
(``on_wake`` never calls back; workers poll it) excludes ``"notifications"``.
"""

from __future__ import annotations

from legato.testing.conformance.records import entry, run_record
from legato.testing.conformance.suite import (
    CAPABILITIES,
    Check,
    Report,
    StoreFactory,
    checks,
    conformance_test,
    run_all,
    run_check,
)

#: Every check (kept for code written against the single-module suite).
CHECKS: list[Check] = checks()

# older names of the record builders (tests/test_sqlite_store.py imports them)
_run = run_record
_entry = entry

__all__ = [
    "CAPABILITIES",
    "CHECKS",
    "Check",
    "Report",
    "StoreFactory",
    "checks",
    "conformance_test",
    "entry",
    "run_all",
    "run_check",
    "run_record",
]
