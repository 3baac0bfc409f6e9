"""Former home of approvals; kept so engine code importing ``legato.hitl`` works unchanged.

Import from :mod:`legato.approvals` (value types, engine helpers), :mod:`legato.ops.approvals`
(operations) or :mod:`legato.oversight` (``app.approvals``) instead; this shim goes once the
engine's imports point there.
"""

from legato.approvals import (
    TIMEOUT_DECIDER,
    Approval,
    Decision,
    OnTimeout,
    approval_id,
    audit_event,
    data_hash,
    decision_from,
    decision_json,
    schema_of,
)

__all__ = [
    "TIMEOUT_DECIDER",
    "Approval",
    "Decision",
    "OnTimeout",
    "approval_id",
    "audit_event",
    "data_hash",
    "decision_from",
    "decision_json",
    "schema_of",
]
