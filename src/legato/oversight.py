"""``app.approvals`` and ``app.autonomy``: what people use to oversee runs in flight."""

from __future__ import annotations

import builtins
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from legato.approvals import Approval
from legato.ops import AutonomyLevel, Operations
from legato.sync import blocking

if TYPE_CHECKING:
    from legato.app import App

T = TypeVar("T")


class Approvals:
    """``app.approvals``: list, inspect and decide approvals (sync and ``*_async``)."""

    def __init__(self, app: App) -> None:
        self._app = app

    def _sync(self, coro: Coroutine[Any, Any, T], /) -> T:
        return self._app._sync(coro)

    async def _ops(self) -> Operations:
        return await self._app.ops_async()

    async def list_async(
        self, status: str | None = "pending", *, run_id: str | None = None, limit: int = 100
    ) -> builtins.list[Approval]:
        """Approvals in ``status`` ("pending" by default; None for all), oldest first."""
        records = await (await self._ops()).approvals.list(status, run_id, limit)
        return [Approval.from_record(r) for r in records]

    async def get_async(self, approval_id: str) -> Approval:
        """One approval; :class:`legato.UnknownApproval` if there is none."""
        return Approval.from_record(await (await self._ops()).approvals.get(approval_id))

    async def decide_async(
        self,
        approval_id: str,
        approved: bool,
        by: str,
        data: Any = None,
        comment: str | None = None,
    ) -> Approval:
        """Approve or reject (``data`` replaces what is approved, validated against its type).

        Deciding again the same way returns the decision; deciding differently raises
        ApprovalConflict; exactly one of several people deciding at once wins.
        """
        ops = await self._ops()
        record = await ops.approvals.decide(approval_id, approved, by, data=data, comment=comment)
        self._app._notify_workers()
        return Approval.from_record(record)

    list = blocking(list_async)
    get = blocking(get_async)
    decide = blocking(decide_async)


class Autonomy:
    """``app.autonomy``: grant or revoke autonomy at run time (sync and ``*_async``)."""

    def __init__(self, app: App) -> None:
        self._app = app

    def _sync(self, coro: Coroutine[Any, Any, T], /) -> T:
        return self._app._sync(coro)

    async def set_async(self, actor: str, level: int, *, by: str, reason: str) -> None:
        """Set ``actor``'s level (0-3); the next proposal of any run uses it."""
        ops = await self._app.ops_async()
        await ops.control.set_autonomy(actor, level, by=by, reason=reason)
        self._app._notify_workers()

    async def list_async(self) -> builtins.list[AutonomyLevel]:
        """Levels set at run time (actors not listed use the policy's, or 1)."""
        return await (await self._app.ops_async()).control.autonomy_levels()

    set = blocking(set_async)
    list = blocking(list_async)
