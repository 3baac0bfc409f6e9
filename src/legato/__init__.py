"""legato: durable, governed AI workflows for Python.

This module is the public API; everything else may change between versions.

Names are loaded on first use (PEP 562), so ``import legato`` and ``legato --help`` stay fast;
``from legato import App`` loads what ``App`` needs. The errors are cheap and loaded at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from legato.errors import (
    ActionDenied,
    ApprovalConflict,
    ApprovalTimeout,
    ChildFailed,
    ConfigurationError,
    EventTimeout,
    LegatoError,
    NondeterminismError,
    NondeterminismWarning,
    ResultTimeout,
    RunCancelled,
    RunConflict,
    RunFailed,
    SerializationError,
    StepFailed,
    StoreError,
    UnknownApproval,
    UnknownRun,
    UnknownSchedule,
    UnknownWorkflow,
)

if TYPE_CHECKING:
    from legato.agents import Agent, AgentResult, Compaction
    from legato.ai.config import Budget, Budgets
    from legato.ai.messages import Message, ToolCall, ToolSpec
    from legato.ai.model import ModelError
    from legato.ai.results import (
        BudgetExceeded,
        DataBlocked,
        EmbedResult,
        LLMResult,
        ModelUnavailable,
        OutputValidationError,
    )
    from legato.app import App
    from legato.approvals import Approval, Decision
    from legato.clock import Clock, SystemClock
    from legato.context import Context
    from legato.engine.definitions import Step, Tool
    from legato.engine.runtime import StepInfo, current_step
    from legato.evals import EvaluationFailed, Verdict
    from legato.governance import Monitor, Policy, PolicyError
    from legato.handle import RunHandle
    from legato.ops.schedules import Schedule
    from legato.retry import NO_RETRY, RetryPolicy
    from legato.serde import PayloadTooLarge

__version__ = "0.1.0"

# name -> the module that defines it, imported by __getattr__ on first use
_LAZY = {
    "Agent": "legato.agents",
    "AgentResult": "legato.agents",
    "Compaction": "legato.agents",
    "App": "legato.app",
    "Approval": "legato.approvals",
    "Schedule": "legato.ops.schedules",
    "Budget": "legato.ai.config",
    "BudgetExceeded": "legato.ai.results",
    "Budgets": "legato.ai.config",
    "Clock": "legato.clock",
    "Context": "legato.context",
    "DataBlocked": "legato.ai.results",
    "Decision": "legato.approvals",
    "EmbedResult": "legato.ai.results",
    "EvaluationFailed": "legato.evals",
    "LLMResult": "legato.ai.results",
    "Message": "legato.ai.messages",
    "ModelError": "legato.ai.model",
    "Monitor": "legato.governance",
    "ModelUnavailable": "legato.ai.results",
    "NO_RETRY": "legato.retry",
    "OutputValidationError": "legato.ai.results",
    "PayloadTooLarge": "legato.serde",
    "Policy": "legato.governance",
    "PolicyError": "legato.governance",
    "RetryPolicy": "legato.retry",
    "RunHandle": "legato.handle",
    "Step": "legato.engine.definitions",
    "StepInfo": "legato.engine.runtime",
    "SystemClock": "legato.clock",
    "Tool": "legato.engine.definitions",
    "ToolCall": "legato.ai.messages",
    "ToolSpec": "legato.ai.messages",
    "Verdict": "legato.evals",
    "current_step": "legato.engine.runtime",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'legato' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ActionDenied",
    "Agent",
    "AgentResult",
    "App",
    "Approval",
    "ApprovalConflict",
    "ApprovalTimeout",
    "Budget",
    "BudgetExceeded",
    "Budgets",
    "ChildFailed",
    "Clock",
    "Compaction",
    "ConfigurationError",
    "Context",
    "DataBlocked",
    "Decision",
    "EmbedResult",
    "EvaluationFailed",
    "EventTimeout",
    "LLMResult",
    "LegatoError",
    "Message",
    "ModelError",
    "ModelUnavailable",
    "Monitor",
    "NO_RETRY",
    "NondeterminismError",
    "NondeterminismWarning",
    "OutputValidationError",
    "PayloadTooLarge",
    "Policy",
    "PolicyError",
    "ResultTimeout",
    "RetryPolicy",
    "RunCancelled",
    "RunConflict",
    "RunFailed",
    "RunHandle",
    "Schedule",
    "SerializationError",
    "Step",
    "StepFailed",
    "StepInfo",
    "StoreError",
    "SystemClock",
    "Tool",
    "ToolCall",
    "ToolSpec",
    "UnknownApproval",
    "UnknownRun",
    "UnknownSchedule",
    "UnknownWorkflow",
    "Verdict",
    "__version__",
    "current_step",
]
