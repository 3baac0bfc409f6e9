"""Governance: policies, the gate that decides every tool call, tool argument schemas, and
data rules (what may reach which model provider).

Everything here is pure (no database, no engine): the engine journals and audits what the
gate decides.
"""

from legato.errors import PolicyError
from legato.governance.arguments import InvalidArguments, json_schema_for, validate_args
from legato.governance.data_rules import DATA_CLASSES, DataOutcome, DataRules
from legato.governance.gate import (
    ACTIONS,
    AUTONOMY_MAX_RISK,
    DEFAULT_LEVEL,
    Action,
    GateDecision,
    Proposal,
    check_throttles,
    evaluate,
    initial_level,
)
from legato.governance.monitors import (
    Alert,
    LowerAutonomy,
    Monitor,
    PauseStarts,
    Reroute,
    RevokeAutonomy,
)
from legato.governance.policy import (
    OPS,
    RISKS,
    Condition,
    Intent,
    Policy,
    Risk,
    RiskDefaults,
    Rule,
    RuleFn,
    Throttle,
    ToolPolicy,
    parse_duration,
)

__all__ = [
    "Alert",
    "LowerAutonomy",
    "Monitor",
    "PauseStarts",
    "Reroute",
    "RevokeAutonomy",
    "ACTIONS",
    "AUTONOMY_MAX_RISK",
    "DATA_CLASSES",
    "DEFAULT_LEVEL",
    "OPS",
    "RISKS",
    "Action",
    "Condition",
    "DataOutcome",
    "DataRules",
    "GateDecision",
    "Intent",
    "InvalidArguments",
    "Policy",
    "PolicyError",
    "Proposal",
    "Risk",
    "RiskDefaults",
    "Rule",
    "RuleFn",
    "Throttle",
    "ToolPolicy",
    "check_throttles",
    "evaluate",
    "initial_level",
    "json_schema_for",
    "parse_duration",
    "validate_args",
]
