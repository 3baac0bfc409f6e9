"""legato: durable, governed AI workflows for Python.

This module is the public API; everything else may change between versions.
"""

from legato.agents import Agent, AgentResult
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
from legato.clock import Clock, SystemClock
from legato.context import Context
from legato.engine.definitions import Step, Tool
from legato.engine.runtime import StepInfo, current_step
from legato.errors import (
    ActionDenied,
    ApprovalConflict,
    ApprovalTimeout,
    ChildFailed,
    ConfigurationError,
    EventTimeout,
    LegatoError,
    NondeterminismError,
    ResultTimeout,
    RunCancelled,
    RunConflict,
    RunFailed,
    SerializationError,
    StepFailed,
    StoreError,
    UnknownApproval,
    UnknownRun,
    UnknownWorkflow,
)
from legato.governance import Policy, PolicyError
from legato.handle import RunHandle
from legato.hitl import Approval, Decision
from legato.retry import NO_RETRY, RetryPolicy
from legato.serde import PayloadTooLarge

__version__ = "0.1.0"

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
    "ConfigurationError",
    "Context",
    "DataBlocked",
    "Decision",
    "EmbedResult",
    "EventTimeout",
    "LLMResult",
    "LegatoError",
    "Message",
    "ModelError",
    "ModelUnavailable",
    "NO_RETRY",
    "NondeterminismError",
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
    "UnknownWorkflow",
    "__version__",
    "current_step",
]
