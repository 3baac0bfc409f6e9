"""The JSON shape of everything front ends print or serve (``legato ... --json``, later REST).

One function per kind of thing, so the CLI and any other front end print the same fields.
Conventions, documented in docs/reference/cli.md: times are epoch seconds (UTC, a float) or
null; JSON the user wrote (inputs, outputs, event and approval data) is embedded as JSON, not
as text; ids are never shortened.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from legato.ops.control import AutonomyLevel, Pause
from legato.ops.runs import Timeline, TimelineEntry
from legato.store.base import ApprovalRecord, AuditRecord, RunRecord
from legato.store.usage import UsageTotals

Document = dict[str, Any]


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _pick(record: object, *names: str) -> Document:
    return {name: getattr(record, name) for name in names}


def run_document(run: RunRecord) -> Document:
    """A run as ``legato runs --json`` prints it (one per line)."""
    error = _json(run.error)
    return {
        **_pick(run, "run_id", "workflow", "status", "created_at", "updated_at", "finished_at",
                "waiting_on", "tenant", "parent_run_id"),
        "error": None if error is None else {k: error.get(k) for k in ("type", "message")},
        "custom_status": _json(run.custom_status),
        "forked_from": run.forked_from,
        "forked_entry": run.forked_entry,
    }  # fmt: skip


def timeline_document(timeline: Timeline) -> Document:
    """A run with its input, output, whole error and journal (``legato show --json``)."""
    run = timeline.run
    return {
        **run_document(run),
        "code_version": run.code_version,
        "input": _json(run.input),
        "output": _json(run.output),
        "error": _json(run.error),
        "entries": [entry_document(e) for e in timeline.entries],
    }


def entry_document(e: TimelineEntry) -> Document:
    return {
        **_pick(e, "entry", "seq", "kind", "name", "status", "attempts", "duration"),
        "output": _json(e.output),
        "error": _json(e.error),
        "summary": e.summary,
    }


def approval_document(a: ApprovalRecord) -> Document:
    return {
        "id": a.approval_id,
        **_pick(a, "run_id", "name", "kind", "status", "prompt"),
        "data": _json(a.data),
        **_pick(a, "risk", "reason"),
        "assignees": _json(a.assignees) or [],
        **_pick(a, "created_at", "expires_at", "decided_by", "decided_at"),
        "decided_data": _json(a.decided_data),
        "comment": a.comment,
    }


def audit_document(r: AuditRecord) -> Document:
    return {
        **_pick(r, "seq", "at", "kind", "actor", "run_id", "subject"),
        "detail": json.loads(r.detail),
        "hash": r.hash,
    }


def autonomy_document(a: AutonomyLevel) -> Document:
    updated_at = a.updated_at.timestamp()
    return {**_pick(a, "actor", "level", "set_by", "reason"), "updated_at": updated_at}


def pause_document(p: Pause) -> Document:
    return {**_pick(p, "workflow", "paused_by", "reason"), "paused_at": p.paused_at.timestamp()}


def usd(value: Decimal) -> str:
    """Dollars in tables: six places."""
    return f"{value:.6f}"


def exact(value: Decimal) -> str:
    """Every digit, never an exponent (1.73E-8 is 0.0000000173): what JSON carries."""
    return format(value.normalize(), "f") if value else "0"


def usage_document(by: str, key: str | None, t: UsageTotals) -> Document:
    return {
        by: key,
        **_pick(
            t,
            "calls",
            "input_tokens",
            "cached_input_tokens",
            "cache_write_tokens",
            "cache_hit_rate",
            "output_tokens",
            "reasoning_tokens",
        ),
        "usd": exact(t.cost_usd),
        "cache_saved_usd": exact(Decimal(t.cache_saved_nanousd) / Decimal(1_000_000_000)),
        **_pick(t, "unknown_cost_calls", "cache_hits"),
    }
