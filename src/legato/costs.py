"""Cost and token rollups over every model call (``legato costs``, ``app.costs``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legato.errors import ConfigurationError
from legato.store.base import Store
from legato.store.usage import GROUP_COLUMNS, GroupBy, UsageTotals


class CostOps:
    """Cost operations (mixed into legato.ops.Operations)."""

    store: Store

    async def costs(
        self,
        *,
        by: str = "workflow",
        since: timedelta | None = None,
        workflow: str | None = None,
        now: float,
    ) -> list[tuple[str, UsageTotals]]:
        """Usage and cost grouped ``by`` workflow, model, day, tenant or run."""
        if by not in GROUP_COLUMNS:
            raise ConfigurationError(
                f"costs can be grouped by {', '.join(GROUP_COLUMNS)}; got {by!r}"
            )
        since_day = None
        if since is not None:
            start = datetime.fromtimestamp(now, UTC) - since
            since_day = start.strftime("%Y-%m-%d")
        group: GroupBy = by  # type: ignore[assignment]
        return await self.store.usage_rollup(group, since_day=since_day, workflow=workflow)
