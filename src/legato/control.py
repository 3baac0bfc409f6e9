"""Run-time control by people: autonomy levels per actor and the pause switch per workflow.

Both take effect on the next proposal or entry of runs already in flight, and both are audited.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from legato.clock import Clock
from legato.errors import ConfigurationError
from legato.store.base import AuditEvent, Store

if TYPE_CHECKING:
    from legato.app import App

DEFAULT_LEVEL = 1  # safe by default: low-risk tools run, anything riskier asks a person
LEVELS = {
    0: "every action needs approval",
    1: "acts alone on low-risk tools",
    2: "acts alone up to medium risk",
    3: "acts alone up to high risk",
}


@dataclass(frozen=True)
class AutonomyLevel:
    actor: str
    level: int
    set_by: str
    reason: str
    updated_at: datetime


@dataclass(frozen=True)
class Pause:
    workflow: str
    paused_by: str
    reason: str
    paused_at: datetime


def default_person() -> str:
    """Who is acting at a terminal when no --by is given."""
    return os.environ.get("LEGATO_USER") or os.environ.get("USER") or "cli"


class ControlOps:
    """Autonomy and pause operations (mixed into legato.ops.Operations)."""

    store: Store
    clock: Clock

    async def set_autonomy(self, actor: str, level: int, *, by: str, reason: str) -> None:
        if not actor:
            raise ConfigurationError("an actor name must be a non-empty string")
        if level not in LEVELS:
            raise ConfigurationError(
                f"autonomy level must be 0, 1, 2 or 3, got {level!r}: "
                + "; ".join(f"{k} {v}" for k, v in LEVELS.items())
            )
        if not by.strip() or not reason.strip():
            raise ConfigurationError("changing autonomy needs who (by=...) and why (reason=...)")
        before = await self.store.get_autonomy(actor)
        detail = json.dumps({"level": level, "was": before, "reason": reason})
        event = AuditEvent("autonomy.set", detail, actor=by, subject=actor)
        await self.store.set_autonomy(actor, level, by, reason, self.clock.now(), event)

    async def autonomy_levels(self) -> list[AutonomyLevel]:
        return [
            AutonomyLevel(a, level, by, reason, datetime.fromtimestamp(at, tz=UTC))
            for a, level, by, reason, at in await self.store.list_autonomy()
        ]

    async def pause(self, workflow: str, *, by: str, reason: str) -> bool:
        """Stop new entries of ``workflow`` from starting; False if it was paused already."""
        return await self._set_paused(workflow, True, by, reason)

    async def resume(self, workflow: str, *, by: str, reason: str = "resumed") -> bool:
        """Let ``workflow`` run again; False if it was not paused."""
        return await self._set_paused(workflow, False, by, reason)

    async def _set_paused(self, workflow: str, paused: bool, by: str, reason: str) -> bool:
        if not workflow:
            raise ConfigurationError("a workflow name must be a non-empty string")
        if not by.strip():
            raise ConfigurationError("pausing or resuming needs who (by=...)")
        kind = "workflow.paused" if paused else "workflow.resumed"
        event = AuditEvent(kind, json.dumps({"reason": reason}), actor=by, subject=workflow)
        return await self.store.set_paused(workflow, paused, by, reason, self.clock.now(), event)

    async def paused(self) -> list[Pause]:
        return [
            Pause(w, by, reason, datetime.fromtimestamp(at, tz=UTC))
            for w, (by, reason, at) in sorted((await self.store.paused_workflows()).items())
        ]


class Autonomy:
    """``app.autonomy``: grant or revoke autonomy at run time (sync and ``*_async``)."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def set_async(self, actor: str, level: int, *, by: str, reason: str) -> None:
        await (await self._app.ops_async()).set_autonomy(actor, level, by=by, reason=reason)
        self._app._notify_workers()

    def set(self, actor: str, level: int, *, by: str, reason: str) -> None:
        """Set ``actor``'s level (0-3); the next proposal of any run uses it."""
        self._app._sync(self.set_async(actor, level, by=by, reason=reason))

    async def list_async(self) -> list[AutonomyLevel]:
        return await (await self._app.ops_async()).autonomy_levels()

    def list(self) -> list[AutonomyLevel]:
        """Levels set at run time (actors not listed use the policy's, or 1)."""
        return self._app._sync(self.list_async())
