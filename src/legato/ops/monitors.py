"""Monitors at work: each window judged once across every worker, its actions applied, audited
and undone, its alerts delivered.

``check`` looks at every monitor: when its next window is complete (N new samples, or the
duration has passed) it claims the window (a lease in the database), reads the samples and the
baseline, judges them (``judge``: pure), and commits the new state together with the actions,
the audit events and the alerts, fenced on its claim: a window is never judged twice, and a
worker that dies under a claim leaves it to another once the lease expires. ``deliver`` posts
due alerts (an outbox, retried with backoff until a webhook answers 2xx).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from statistics import fmean
from typing import Any, Literal

import httpx

from legato.clock import Clock
from legato.durations import format_duration
from legato.errors import ConfigurationError
from legato.evals.significance import greater_than, welch_greater, wilson
from legato.governance import Policy, initial_level
from legato.governance.monitors import (
    EVALUATION_METRICS,
    RATES,
    Alert,
    LowerAutonomy,
    Monitor,
    PauseStarts,
    Reroute,
    RevokeAutonomy,
)
from legato.store.base import AuditEvent, AuditRecord, MonitorChanges, MonitorState, Store

log = logging.getLogger("legato.monitors")
Verdict = Literal["bad", "healthy", "unclear", "insufficient"]
#: an alert is tried this many times (with backoff up to 5 minutes), then given up (logged)
ALERT_ATTEMPTS = 12
_NEVER = 1e300
_RUN_COLUMNS = {"failure_rate": "failed", "cost": "cost_nanousd", "duration": "duration",
                "tokens": "tokens"}  # fmt: skip


@dataclass(frozen=True)
class Figures:
    """What one window showed: the figures a firing or a restore is audited with."""

    n: int
    value: float | None = None
    #: the interval of a rate (Wilson), at the monitor's confidence
    low: float | None = None
    high: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    baseline_n: int = 0
    #: the one-sided p-value of a mean's test
    p: float | None = None
    verdict: Verdict = "insufficient"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def judge(monitor: Monitor, values: Sequence[float], baseline: Sequence[float] = ()) -> Figures:
    """Whether a window is significantly bad, healthy, or neither (pure)."""
    n = len(values)
    if n < monitor.min_sample:
        return Figures(n)
    value = fmean(values)
    base = None
    threshold = monitor.threshold
    if monitor.baseline == "trailing":
        if len(baseline) < monitor.min_sample:
            return Figures(n, value, baseline_n=len(baseline))
        base = fmean(baseline)
        threshold = monitor.threshold * base
    below = monitor.direction == "below"
    alpha = 1 - monitor.confidence
    low = high = p = None
    if monitor.metric in RATES:
        low, high = wilson(round(sum(values)), n, 1 - 2 * alpha)  # one-sided at alpha
        bad = high < threshold if below else low > threshold
    else:
        if monitor.baseline == "trailing":
            scaled = [monitor.threshold * b for b in baseline]
            p = welch_greater(scaled, values) if below else welch_greater(values, scaled)
        else:
            p = (
                greater_than([-v for v in values], -threshold)
                if below
                else greater_than(values, threshold)
            )
        bad = p < alpha
    healthy = value >= threshold if below else value <= threshold
    verdict: Verdict = "bad" if bad else "healthy" if healthy else "unclear"
    return Figures(n, value, low, high, threshold, base, len(baseline), p, verdict)


@dataclass(frozen=True)
class MonitorView:
    """``legato monitors``: a monitor, its state, and its history (audit rows)."""

    name: str
    monitor: Monitor | None
    state: MonitorState
    history: list[AuditRecord]


@dataclass(eq=False)
class MonitorOps:
    """``ops.monitors``: check windows, deliver alerts, restore by hand, list."""

    store: Store
    clock: Clock

    async def check(
        self,
        monitors: Mapping[str, Monitor],
        owner: str,
        *,
        policy: Policy | None = None,
        lease: float = 30.0,
    ) -> list[tuple[str, Verdict, str]]:
        """Judge every monitor's next complete window that nobody judged; return
        ``(monitor, verdict, what happened)`` for each window judged here."""
        states = {s.name: s for s in await self.store.monitor_states()}
        done = []
        for name, monitor in monitors.items():
            state = states.get(name) or MonitorState(name)
            judged = await self._window(name, monitor, state, owner, policy, lease)
            if judged is not None:
                done.append(judged)
        return done

    async def _samples(
        self, monitor: Monitor, state: MonitorState, now: float
    ) -> tuple[int, list[float], list[float], tuple[float | None, str | None]] | None:
        """The monitor's next complete window that is not judged: its number, its samples,
        the baseline's, and the cursor after it; None when none is due."""
        source, column, filters, scale = _source(monitor)
        baseline: list[tuple[float, str, float]] = []
        if isinstance(monitor.window, int):
            size = monitor.window
            after = None
            if state.cursor_at is not None and state.cursor_key is not None:
                after = (state.cursor_at, state.cursor_key)
            samples = await self.store.samples(
                source, column, filters=filters, after=after, limit=size
            )
            if len(samples) < size:
                return None
            if monitor.baseline == "trailing":
                baseline = await self.store.samples(
                    source, column, filters=filters, before=(samples[0][0], samples[0][1]),
                    limit=size * monitor.baseline_windows, newest=True,
                )  # fmt: skip
            window = state.window_done + 1
            cursor: tuple[float | None, str | None] = (samples[-1][0], samples[-1][1])
        else:
            span = monitor.window.total_seconds()
            window = math.floor(now / span) - 1
            if window <= state.window_done:
                return None
            start = window * span
            samples = await self.store.samples(
                source, column, filters=filters, since=start, until=start + span
            )
            if monitor.baseline == "trailing":
                baseline = await self.store.samples(
                    source, column, filters=filters,
                    since=start - span * monitor.baseline_windows, until=start,
                )  # fmt: skip
            cursor = (state.cursor_at, state.cursor_key)
        return window, [v * scale for *_, v in samples], [v * scale for *_, v in baseline], cursor

    async def _window(
        self,
        name: str,
        monitor: Monitor,
        state: MonitorState,
        owner: str,
        policy: Policy | None,
        lease: float,
    ) -> tuple[str, Verdict, str] | None:
        now = self.clock.now()
        due = await self._samples(monitor, state, now)
        if due is None:
            return None
        window, samples, baseline, cursor = due
        claimed = await self.store.claim_monitor(name, window, owner, now, lease)
        if claimed is None:
            return None
        figures = judge(monitor, samples, baseline)
        new = dataclasses.replace(
            claimed, window_done=window, cursor_at=cursor[0], cursor_key=cursor[1],
            last_value=figures.value, last_low=figures.low, last_high=figures.high,
            last_n=figures.n, last_baseline=figures.baseline, evaluated_at=now,
        )  # fmt: skip
        changes = MonitorChanges()
        happened = "no change"
        if figures.verdict == "bad" and claimed.state == "ok":
            saved = await self._fire(name, monitor, figures, changes, policy)
            new = dataclasses.replace(new, state="firing", healthy=0, fired_at=now, saved=saved)
            happened = "fired"
        elif claimed.state == "firing" and figures.verdict == "healthy":
            new = dataclasses.replace(new, healthy=claimed.healthy + 1)
            if monitor.restore == "auto" and new.healthy >= monitor.restore_after:
                await self._restore(name, monitor, claimed, figures, changes, f"monitor:{name}")
                new = dataclasses.replace(new, state="ok", healthy=0, restored_at=now, saved="{}")
                happened = "restored"
        elif claimed.state == "firing" and figures.verdict in ("bad", "unclear"):
            new = dataclasses.replace(new, healthy=0)
        if not await self.store.commit_monitor(new, changes, now, owner=owner):
            return None  # another worker took the window over and judged it
        if happened != "no change":
            log.warning("monitor %s %s: %s", name, happened, json.dumps(figures.to_json()))
        return name, figures.verdict, happened

    async def _fire(
        self,
        name: str,
        monitor: Monitor,
        figures: Figures,
        changes: MonitorChanges,
        policy: Policy | None,
    ) -> str:
        """Apply the actions (into ``changes``); what to restore later, as JSON."""
        saved: dict[str, Any] = {"autonomy": {}, "routes": {}, "paused": [], "alerts": []}
        routes = await self.store.route_overrides()
        paused = await self.store.paused_workflows()
        done: list[dict[str, Any]] = []
        for action in monitor.actions:
            spec = action.spec
            if isinstance(spec, LowerAutonomy | RevokeAutonomy):
                current = await self.store.get_autonomy(spec.actor)
                was = current if current is not None else initial_level(policy, spec.actor)
                level = min(was, spec.to if isinstance(spec, LowerAutonomy) else 0)
                saved["autonomy"][spec.actor] = [was, level]
                changes.autonomy.append((spec.actor, level))
                done.append({"action": action.kind, "actor": spec.actor, "from": was, "to": level})
            elif isinstance(spec, Reroute):
                saved["routes"][spec.alias] = routes.get(spec.alias)
                changes.routes.append((spec.alias, spec.to))
                done.append({"action": "reroute", "alias": spec.alias, "to": spec.to})
            elif isinstance(spec, PauseStarts) and spec.workflow not in paused:
                saved["paused"].append(spec.workflow)
                changes.pause.append((spec.workflow, True))
                done.append({"action": "pause", "workflow": spec.workflow})
            elif isinstance(spec, Alert):
                saved["alerts"].append(spec.webhook)
                done.append({"action": "alert", "webhook": spec.webhook})
        body = _alert(name, "fired", monitor, figures, done)
        changes.alerts += [(url, body) for url in saved["alerts"]]
        detail = {"metric": monitor.metric, **figures.to_json(), "actions": done}
        changes.audit.insert(0, _event("monitor.fired", name, detail))
        changes.audit += [_event("monitor.action", name, {**a, "on": "fire"}) for a in done]
        return json.dumps(saved)

    async def _restore(
        self,
        name: str,
        monitor: Monitor | None,
        state: MonitorState,
        figures: Figures | None,
        changes: MonitorChanges,
        by: str,
    ) -> None:
        """Undo what firing changed (into ``changes``); a level a person changed since stays."""
        saved = json.loads(state.saved or "{}")
        done: list[dict[str, Any]] = []
        for actor, (was, set_to) in saved.get("autonomy", {}).items():
            if await self.store.get_autonomy(actor) == set_to:
                changes.autonomy.append((actor, was))
                done.append({"action": "restore_autonomy", "actor": actor, "to": was})
            else:
                done.append({"action": "left_autonomy", "actor": actor, "why": "changed since"})
        for alias, previous in saved.get("routes", {}).items():
            changes.routes.append((alias, previous))
            done.append({"action": "restore_route", "alias": alias, "to": previous})
        for workflow in saved.get("paused", []):
            changes.pause.append((workflow, False))
            done.append({"action": "resume", "workflow": workflow})
        body = _alert(name, "restored", monitor, figures, done)
        changes.alerts += [(url, body) for url in saved.get("alerts", [])]
        figures_json = figures.to_json() if figures is not None else {}
        detail = {"by": by, **figures_json, "actions": done}
        changes.audit.insert(0, _event("monitor.restored", name, detail, by))
        changes.audit += [_event("monitor.action", name, {**a, "on": "restore"}, by) for a in done]

    async def restore(
        self, name: str, *, by: str, reason: str, monitor: Monitor | None = None
    ) -> bool:
        """A person restores what a firing monitor changed; False when it is not firing."""
        if not by.strip() or not reason.strip():
            raise ConfigurationError("restoring a monitor needs who (by=...) and why (reason=...)")
        state = next((s for s in await self.store.monitor_states() if s.name == name), None)
        if state is None or state.state != "firing":
            return False
        changes = MonitorChanges()
        await self._restore(name, monitor, state, None, changes, by)
        changes.audit[0] = dataclasses.replace(
            changes.audit[0], detail=json.dumps({**json.loads(changes.audit[0].detail),
                                                 "reason": reason})
        )  # fmt: skip
        now = self.clock.now()
        new = dataclasses.replace(state, state="ok", healthy=0, restored_at=now, saved="{}")
        return await self.store.commit_monitor(new, changes, now)

    async def deliver(self, client: httpx.AsyncClient | None = None, lease: float = 30.0) -> int:
        """Post due alerts; return how many were delivered."""
        due = await self.store.claim_alerts(self.clock.now(), lease)
        if not due:
            return 0
        delivered = 0
        own = client is None
        http = client or httpx.AsyncClient(timeout=10.0)
        try:
            for alert in due:
                error = None
                try:
                    response = await http.post(
                        alert.url, content=alert.body,
                        headers={"content-type": "application/json",
                                 "idempotency-key": f"legato-alert-{alert.id}"},
                    )  # fmt: skip
                    if response.status_code // 100 != 2:
                        error = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                now = self.clock.now()
                if error is None:
                    delivered += 1
                    await self.store.alert_done(alert.id, now)
                    continue
                gave_up = alert.attempts >= ALERT_ATTEMPTS
                retry_at = _NEVER if gave_up else now + min(2.0**alert.attempts, 300.0)
                log.warning(
                    "alert %s of monitor %s to %s failed (attempt %d%s): %s", alert.id,
                    alert.monitor, alert.url, alert.attempts, ", giving up" if gave_up else "",
                    error,
                )  # fmt: skip
                await self.store.alert_done(alert.id, now, error=error, retry_at=retry_at)
        finally:
            if own:
                await http.aclose()
        return delivered

    async def list(self, monitors: Mapping[str, Monitor]) -> list[MonitorView]:
        """Every monitor defined or with a stored state, with its history (oldest first)."""
        states = {s.name: s for s in await self.store.monitor_states()}
        history: dict[str, list[AuditRecord]] = {}
        for row in await self.store.list_audit(kind_prefix="monitor.", limit=100_000):
            history.setdefault(row.subject or "", []).append(row)
        names = sorted({*monitors, *states})
        return [
            MonitorView(n, monitors.get(n), states.get(n) or MonitorState(n), history.get(n, []))
            for n in names
        ]


Source = Literal["runs", "evaluations"]


def _source(monitor: Monitor) -> tuple[Source, str, list[tuple[str, Any]], float]:
    """Where a monitor's samples come from: (source, column, filters, scale)."""
    scope = monitor.scope
    filters: list[tuple[str, Any]] = []
    if monitor.metric in EVALUATION_METRICS:
        filters.append(("evaluator", monitor.evaluator))
        if scope.target is not None:
            filters.append(("target", scope.target))
    if scope.workflow is not None:
        filters.append(("workflow", scope.workflow))
    if scope.tenant is not None:
        filters.append(("tenant", scope.tenant))
    if monitor.metric in EVALUATION_METRICS:
        return "evaluations", "passed" if monitor.metric == "pass_rate" else "score", filters, 1.0
    scale = 1e-9 if monitor.metric == "cost" else 1.0  # nano-dollars to dollars
    return "runs", _RUN_COLUMNS[monitor.metric], filters, scale


def _event(kind: str, name: str, detail: dict[str, Any], by: str | None = None) -> AuditEvent:
    return AuditEvent(kind, json.dumps(detail), by or f"monitor:{name}", None, name)


def _alert(
    name: str,
    event: str,
    monitor: Monitor | None,
    figures: Figures | None,
    actions: list[dict[str, Any]],
) -> str:
    body: dict[str, Any] = {"monitor": name, "event": event}
    if monitor is not None:
        body |= {"metric": monitor.metric, monitor.direction: monitor.threshold}
    if figures is not None:
        body |= figures.to_json()
    return json.dumps({**body, "actions": list(actions)})


def window_text(window: int | timedelta) -> str:
    """How a window reads in ``legato monitors``."""
    return f"last {window}" if isinstance(window, int) else format_duration(window)


__all__ = ["Figures", "MonitorOps", "MonitorView", "judge", "window_text"]
