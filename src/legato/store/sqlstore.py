"""One store over SQL: every role's domain logic, for a dialect to complete.

A dialect subclasses :class:`SQLStore` and supplies the plumbing of ``dialect.Dialect`` plus
the methods whose SQL truly differs: ``create_run``, ``record`` and ``release`` (how it batches
and signals writes), the claims, leases, wake-ups and workers of ``WorkerStore``, and ``close``.
"""

from __future__ import annotations

from legato.store.approvals import SQLApprovals
from legato.store.audit import SQLAudit
from legato.store.breakers import SQLBreakers
from legato.store.control import SQLControl
from legato.store.deployments import SQLDeployments
from legato.store.forks import SQLForks
from legato.store.journal import SQLJournal
from legato.store.metrics import SQLMetrics
from legato.store.monitors import SQLMonitors
from legato.store.runs import SQLRuns
from legato.store.schedules import SQLSchedules
from legato.store.usage import SQLUsage


class SQLStore(
    SQLRuns,
    SQLForks,
    SQLJournal,
    SQLApprovals,
    SQLAudit,
    SQLUsage,
    SQLBreakers,
    SQLDeployments,
    SQLControl,
    SQLSchedules,
    SQLMetrics,
    SQLMonitors,
):
    """The roles' logic, written once for SQLite and PostgreSQL."""

    async def schema_version(self) -> int:
        rows = await self._select("SELECT MAX(version) FROM legato_migrations")
        return int(rows[0][0])
