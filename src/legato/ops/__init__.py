"""The operations layer: what every front end (Python API, CLI, later REST) may do.

Front ends call these and never touch SQL. Everything here validates its input and raises a
:class:`legato.LegatoError` that says what is wrong and what to do. One collaborator per
aggregate, all bound to one store and clock::

    ops = Operations(store, clock)
    await ops.runs.timeline("order-42")
    await ops.approvals.decide(approval_id, True, by="ann")

This layer sits above the worker and below the client facades (``App``, ``RunHandle``,
``app.approvals``, ``app.autonomy``), which it never imports.
"""

from __future__ import annotations

from legato import serde
from legato.clock import Clock
from legato.ops.approvals import ApprovalOps
from legato.ops.audit import AuditCheck, AuditOps
from legato.ops.control import LEVELS, AutonomyLevel, ControlOps, Pause
from legato.ops.costs import CostOps
from legato.ops.evals import EvalOps, EvaluatorStats
from legato.ops.monitors import Figures, MonitorOps, MonitorView
from legato.ops.runs import RunOps, Timeline, TimelineEntry, summarize
from legato.ops.schedules import Schedule, ScheduleOps
from legato.store.base import Store


class Operations:
    """The operations on one store: ``runs``, ``approvals``, ``control``, ``audit``, ``costs``,
    ``evals``, ``monitors``, ``schedules``."""

    def __init__(
        self, store: Store, clock: Clock, payload_limit: int | None = serde.DEFAULT_PAYLOAD_LIMIT
    ) -> None:
        self.store = store
        self.clock = clock
        self.runs = RunOps(store, clock, payload_limit)
        self.approvals = ApprovalOps(store, clock, payload_limit)
        self.control = ControlOps(store, clock)
        self.audit = AuditOps(store)
        self.costs = CostOps(store, clock)
        self.evals = EvalOps(store, clock)
        self.monitors = MonitorOps(store, clock)
        self.schedules = ScheduleOps(store, clock, payload_limit)


__all__ = [
    "LEVELS",
    "ApprovalOps",
    "AuditCheck",
    "AuditOps",
    "AutonomyLevel",
    "ControlOps",
    "CostOps",
    "EvalOps",
    "EvaluatorStats",
    "Figures",
    "MonitorOps",
    "MonitorView",
    "Operations",
    "Pause",
    "RunOps",
    "Schedule",
    "ScheduleOps",
    "Timeline",
    "TimelineEntry",
    "summarize",
]
