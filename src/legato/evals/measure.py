"""What a run measured, read from its journal as it ends (pure: no I/O).

The journal holds every fact the figures need: each step's attempts and timings, the gate's
answers, approval decisions and how long they waited, and each model call's result with its
usage, cost, latency and the attempts the router made. Reading them once, at the end, costs
nothing on the hot path and counts each run once (the store writes the figures in the
transaction that ends the run).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from legato.store.base import Entry, RunMetrics, RunRecord, Tally

#: runs of these workflows (legato's own work, such as shadow evaluations) measure nothing
INTERNAL_PREFIX = "legato."


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _took(e: Entry) -> float:
    if e.started_at is None or e.finished_at is None:
        return 0.0
    return max(0.0, e.finished_at - e.started_at)


def measure(run: RunRecord, outcome: str, entries: Iterable[Entry]) -> RunMetrics:
    """The figures of ``run`` ending with ``outcome``, from its journal ``entries``."""
    m = RunMetrics(run.run_id, run.workflow, run.tenant, outcome, run.created_at)
    total = m.run
    for e in entries:
        ended = "completed" if e.status == "completed" else "failed"
        if e.kind in ("step", "tool"):
            if e.status in ("waiting", "retrying"):
                continue
            op = m.op(e.kind, e.name, ended)
            op.n += 1
            op.duration += _took(e)
            op.retries += e.attempts - 1
            total.retries += e.attempts - 1
        elif e.kind == "gate":
            answer = (_json(e.output) or {}).get("action")
            gate = m.op("tool", e.name, "gate")  # n: the gate's answers
            gate.n += 1
            if answer == "allow":
                gate.allowed += 1
            elif answer == "deny":
                gate.denied += 1
            elif answer == "throttle":
                gate.throttled += 1
        elif e.kind == "approval":
            _approval(m, total, e)
        elif e.kind in ("llm", "embed"):
            _model_call(m, total, e)
    return m


def _approval(m: RunMetrics, total: Tally, e: Entry) -> None:
    if e.status not in ("completed", "failed"):
        return
    decision = _json(e.output) or {}
    counts = Tally(approvals=1, wait=_took(e))
    if e.status == "failed" or decision.get("by") == "timeout":
        counts.timed_out = 1
    elif decision.get("approved"):
        counts.approved = 1
        counts.edited = int(bool(decision.get("edited")))
    else:
        counts.rejected = 1
    total.add(Tally(**{k: getattr(counts, k) for k in _ESCALATIONS}))
    if e.name.startswith("tool:"):  # the approval a gated tool call waited for
        m.op("tool", e.name.removeprefix("tool:"), "gate").add(counts)


_ESCALATIONS = ("approvals", "approved", "edited", "rejected", "timed_out")


def _model_call(m: RunMetrics, total: Tally, e: Entry) -> None:
    if e.status in ("waiting", "retrying"):
        return
    total.retries += e.attempts - 1
    result = _json(e.output) if e.status == "completed" else None
    if result is None:  # a call that failed: its attempts are in the error's details
        details = (_json(e.error) or {}).get("details") or {}
        attempts = details.get("attempts") or []
        deployment = attempts[-1].get("deployment", "?") if attempts else "?"
        op = m.op(e.kind, deployment, "failed")
        op.n += 1
        op.invalid += sum(1 for a in attempts if a.get("outcome") == "invalid")
        return
    deployment = str(result.get("model") or "?")
    op = m.op(e.kind, deployment, "completed")
    usage = result.get("usage") or {}
    tokens = int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)
    usd = (result.get("cost") or {}).get("usd")
    cost = 0 if usd is None else int(Decimal(str(usd)) * 1_000_000_000)
    attempts = result.get("attempts") or []
    sent = [a for a in attempts if a.get("outcome") not in ("skipped",)]
    op.add(
        Tally(
            n=1,
            calls=1,
            tokens=tokens,
            cost_nanousd=cost,
            unknown_cost=int(usd is None),
            duration=sum(a.get("latency_ms") or 0 for a in sent) / 1000.0,
            repairs=sum(1 for a in sent[:-1] if a.get("outcome") == "invalid"),
            invalid=sum(1 for a in sent if a.get("outcome") == "invalid"),
            fallbacks=len({a.get("deployment") for a in sent}) - 1 if sent else 0,
        )
    )
    total.calls += 1
    total.tokens += tokens
    total.cost_nanousd += cost
    total.unknown_cost += int(usd is None)
