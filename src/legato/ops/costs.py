"""Cost and token rollups over every model call (``legato costs``, ``app.costs``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from legato.clock import Clock
from legato.errors import ConfigurationError
from legato.store.base import UsageStore
from legato.store.usage import GROUP_COLUMNS, GroupBy, UsageTotals
from legato.timestamps import format_timestamp


@dataclass(eq=False)
class CostOps:
    """``ops.costs``: usage and cost rolled up from the usage rows."""

    store: UsageStore
    clock: Clock

    async def rollup(
        self, *, by: str = "workflow", since: timedelta | None = None, workflow: str | None = None
    ) -> list[tuple[str, UsageTotals]]:
        """Usage and cost grouped ``by`` workflow, model, day, tenant or run.

        ``since`` counts whole UTC days back from the clock's now (usage rows are kept per day).
        """
        if by not in GROUP_COLUMNS:
            raise ConfigurationError(
                f"costs can be grouped by {', '.join(GROUP_COLUMNS)}; got {by!r}"
            )
        since_day = None
        if since is not None:
            since_day = format_timestamp(self.clock.now() - since.total_seconds(), "day")
        group: GroupBy = by  # type: ignore[assignment]
        return await self.store.usage_rollup(group, since_day=since_day, workflow=workflow)
