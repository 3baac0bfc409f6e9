"""Errors a user can meet, and the control-flow signals the engine uses internally.

Every user-facing error derives from :class:`LegatoError` and carries a stable ``code``.
Signals that unwind workflow code (suspension, lost leases) derive from ``BaseException`` so a
workflow's ``except Exception`` cannot swallow them.
"""

from __future__ import annotations

from typing import Any


class LegatoError(Exception):
    """Base class of every error legato raises on purpose."""

    code = "legato_error"


class ConfigurationError(LegatoError):
    """Bad configuration: a database URL, an option, a missing registration."""

    code = "configuration"


class PolicyError(LegatoError):
    """A policy that cannot be used: bad YAML, an unknown field, a wrong type or value."""

    code = "policy"


class StoreError(LegatoError):
    """The database cannot be used: not a legato database, corrupted, or too new."""

    code = "store"


class DatabaseUnavailable(StoreError):
    """The database cannot be reached now (down, restarting, unreachable); it may come back."""

    code = "database_unavailable"


class SerializationError(LegatoError):
    """A value cannot be stored as JSON (legato never pickles)."""

    code = "serialization"


class UnknownWorkflow(LegatoError):
    """A workflow name that this app does not register."""

    code = "unknown_workflow"


class UnknownRun(LegatoError):
    """A run id that the database does not hold."""

    code = "unknown_run"


class RunConflict(LegatoError):
    """An operation that the run's current state does not allow (or a run id reused)."""

    code = "run_conflict"


class NondeterminismError(LegatoError):
    """The workflow code no longer matches the journal it is replaying."""

    code = "nondeterminism"


class EventTimeout(LegatoError):
    """``ctx.wait_for_event`` reached its timeout before the event arrived."""

    code = "event_timeout"

    def __init__(self, name: str, timeout_seconds: float) -> None:
        super().__init__(f"no event {name!r} arrived within {timeout_seconds:g}s")
        self.name = name
        self.timeout_seconds = timeout_seconds


class StepFailed(LegatoError):
    """A step failed for good (not retryable, or out of attempts).

    Raised inside the workflow the same way on the first execution and on replay, so workflow
    code that handles it stays deterministic. The original exception type is kept by name.
    """

    code = "step_failed"

    def __init__(
        self,
        step: str,
        error_type: str,
        message: str,
        attempts: int,
        details: dict[str, Any] | None = None,
    ) -> None:
        plural = "attempt" if attempts == 1 else "attempts"
        super().__init__(f"step {step!r} failed after {attempts} {plural}: {error_type}: {message}")
        self.step = step
        self.error_type = error_type
        self.message = message
        self.attempts = attempts
        #: structured facts the original error carried (legato's own errors), JSON only
        self.details = details


class ChildFailed(LegatoError):
    """A child workflow awaited with ``ctx.child`` ended failed or cancelled."""

    code = "child_failed"

    def __init__(self, run_id: str, status: str, error_type: str | None, message: str) -> None:
        detail = f"{error_type}: {message}" if error_type else message
        super().__init__(f"child run {run_id!r} {status}: {detail}")
        self.run_id = run_id
        self.status = status
        self.error_type = error_type
        self.message = message


class RunFailed(LegatoError):
    """The run ended ``failed``; carries the workflow's error, its type and traceback."""

    code = "run_failed"

    def __init__(
        self,
        run_id: str,
        workflow: str,
        error_type: str,
        message: str,
        traceback: str | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(f"run {run_id!r} (workflow {workflow!r}) failed: {error_type}: {message}")
        self.run_id = run_id
        self.workflow = workflow
        self.error_type = error_type
        self.message = message
        self.traceback = traceback
        #: the ``code`` of the workflow's error when it was a LegatoError ("step_failed", ...)
        self.error_code = error_code

    @classmethod
    def from_error(cls, run_id: str, workflow: str, error: dict[str, Any]) -> RunFailed:
        return cls(
            run_id,
            workflow,
            str(error.get("type", "Error")),
            str(error.get("message", "")),
            error.get("traceback"),
            error.get("code"),
        )


class RunCancelled(LegatoError):
    """The run was cancelled before it finished."""

    code = "run_cancelled"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} was cancelled")
        self.run_id = run_id


class ResultTimeout(LegatoError):
    """``RunHandle.result(timeout=...)`` gave up waiting; the run goes on."""

    code = "result_timeout"


# -- control-flow signals (never seen by users) -------------------------------------------


class _Signal(BaseException):
    """Unwinds workflow code; user ``except Exception`` blocks cannot catch it."""


class Suspended(_Signal):
    """The run is being unloaded (parked, released or stopped); its task must unwind."""


class StoreUnavailable(_Signal):
    """The database failed under a running workflow: release the run, never fail it."""


class LeaseLost(_Signal):
    """This worker no longer owns the run (cancelled, or claimed by another worker)."""


class UnknownApproval(LegatoError):
    """An approval id that the database does not hold."""

    code = "unknown_approval"


class UnknownSchedule(LegatoError):
    """A schedule id that the database does not hold."""

    code = "unknown_schedule"


class ApprovalConflict(LegatoError):
    """An approval was already decided differently; the first decision stands."""

    code = "approval_conflict"


class ApprovalTimeout(LegatoError):
    """An approval with ``on_timeout="fail"`` was not decided in time."""

    code = "approval_timeout"

    def __init__(self, name: str, approval_id: str) -> None:
        super().__init__(f"approval {name!r} ({approval_id}) was not decided in time")
        self.name = name
        self.approval_id = approval_id


class ActionDenied(LegatoError):
    """The gate denied a proposed tool call, or a person rejected it; the tool did not run."""

    code = "action_denied"

    def __init__(
        self,
        tool: str,
        reason: str,
        *,
        by: str | None = None,
        comment: str | None = None,
    ) -> None:
        who = f" by {by}" if by else ""
        note = f": {comment}" if comment else ""
        super().__init__(f"{tool} was denied{who}: {reason}{note}")
        self.tool = tool
        self.reason = reason
        self.by = by
        self.comment = comment
