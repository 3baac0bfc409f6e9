"""Run-time control by people: autonomy levels per actor and the pause switch per workflow.

Both take effect on the next proposal or entry of runs already in flight, and both are audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from legato.clock import Clock
from legato.errors import ConfigurationError
from legato.store.base import AuditEvent, ControlStore
from legato.timestamps import utc

#: what each autonomy level lets an actor do alone
LEVELS = {
    0: "every action needs approval",
    1: "acts alone on low-risk tools",
    2: "acts alone up to medium risk",
    3: "acts alone up to high risk",
}


@dataclass(frozen=True)
class AutonomyLevel:
    """A level set at run time (``app.autonomy.list``, ``legato autonomy``)."""

    actor: str
    level: int
    set_by: str
    reason: str
    updated_at: datetime


@dataclass(frozen=True)
class Pause:
    """A paused workflow (``legato pause`` without a name)."""

    workflow: str
    paused_by: str
    reason: str
    paused_at: datetime


@dataclass(eq=False)
class ControlOps:
    """``ops.control``: autonomy and pause operations."""

    store: ControlStore
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
            AutonomyLevel(a, level, by, reason, utc(at))
            for a, level, by, reason, at in await self.store.list_autonomy()
        ]

    async def pause(self, workflow: str, *, by: str, reason: str) -> bool:
        """Stop new entries of ``workflow`` from starting; False if it was paused already."""
        return await self._set_paused(workflow, True, by, reason)

    async def resume(self, workflow: str, *, by: str, reason: str = "resumed") -> bool:
        """Let ``workflow`` run again; False if it was not paused."""
        return await self._set_paused(workflow, False, by, reason)

    async def paused(self) -> list[Pause]:
        return [
            Pause(w, by, reason, utc(at))
            for w, (by, reason, at) in sorted((await self.store.paused_workflows()).items())
        ]

    async def _set_paused(self, workflow: str, paused: bool, by: str, reason: str) -> bool:
        if not workflow:
            raise ConfigurationError("a workflow name must be a non-empty string")
        if not by.strip():
            raise ConfigurationError("pausing or resuming needs who (by=...)")
        kind = "workflow.paused" if paused else "workflow.resumed"
        event = AuditEvent(kind, json.dumps({"reason": reason}), actor=by, subject=workflow)
        return await self.store.set_paused(workflow, paused, by, reason, self.clock.now(), event)
