"""The public API is what `legato` exports; pin it so a change to it is deliberate."""

from __future__ import annotations

import legato


def test_exported_members() -> None:
    assert set(legato.__all__) == {
        "NO_RETRY",
        "ActionDenied",
        "Agent",
        "AgentResult",
        "Compaction",
        "Budget",
        "BudgetExceeded",
        "Budgets",
        "DataBlocked",
        "EmbedResult",
        "LLMResult",
        "Message",
        "ModelError",
        "Monitor",
        "Verdict",
        "EvaluationFailed",
        "ModelUnavailable",
        "OutputValidationError",
        "ToolCall",
        "ToolSpec",
        "Approval",
        "ApprovalConflict",
        "ApprovalTimeout",
        "Decision",
        "Policy",
        "PolicyError",
        "Tool",
        "UnknownApproval",
        "UnknownSchedule",
        "Schedule",
        "App",
        "ChildFailed",
        "Clock",
        "ConfigurationError",
        "Context",
        "EventTimeout",
        "LegatoError",
        "NondeterminismError",
        "NondeterminismWarning",
        "PayloadTooLarge",
        "ResultTimeout",
        "RetryPolicy",
        "RunCancelled",
        "RunConflict",
        "RunFailed",
        "RunHandle",
        "SerializationError",
        "Step",
        "StepFailed",
        "StepInfo",
        "StoreError",
        "SystemClock",
        "UnknownRun",
        "UnknownWorkflow",
        "__version__",
        "current_step",
    }
    for name in legato.__all__:
        assert getattr(legato, name) is not None


def test_every_user_error_has_a_stable_code_and_signals_escape_except_exception() -> None:
    from legato.errors import LeaseLost, Suspended

    errors = [
        getattr(legato, n)
        for n in legato.__all__
        if isinstance(getattr(legato, n), type)
        and issubclass(getattr(legato, n), legato.LegatoError)
    ]
    codes = {e.code for e in errors}
    assert len(errors) == 27 and len(codes) == len(errors)  # one code each, none shared
    assert not issubclass(Suspended, Exception) and not issubclass(LeaseLost, Exception)
