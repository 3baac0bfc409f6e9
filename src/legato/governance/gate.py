"""The gate: every proposed tool call is allowed, throttled, sent to a person, or denied.

:func:`evaluate` is pure and deterministic (no I/O, no clock, no model calls): the caller
passes the actor's current autonomy level, the time and the recent allowed calls, and
journals the decision, so replay reaches the same answer. Model-as-judge checks belong to
evaluators, off this blocking path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from legato.durations import format_duration
from legato.errors import ConfigurationError, SerializationError
from legato.governance.policy import (
    RISKS,
    Policy,
    Risk,
    Rule,
    Throttle,
    Undecidable,
    risk_rank,
)

Action = Literal["allow", "throttle", "require_approval", "deny"]
ACTIONS: tuple[Action, ...] = get_args(Action)
#: The highest risk an actor at each autonomy level may run alone (0: nothing, propose only).
AUTONOMY_MAX_RISK: dict[int, Risk | None] = {0: None, 1: "low", 2: "medium", 3: "high"}
#: The level of an actor that neither the policy nor a person has set.
DEFAULT_LEVEL = 1


@dataclass(frozen=True)
class Proposal:
    """A tool call someone wants to make: who, which tool, with what, at the tool's risk."""

    actor: str
    tool: str
    args: dict[str, Any]
    #: the risk the tool declares; the gate applies the policy's override
    risk: Risk

    def __post_init__(self) -> None:
        if self.risk not in RISKS:
            raise ConfigurationError(
                f"tool {self.tool!r} has risk {self.risk!r}; use one of {', '.join(RISKS)}"
            )


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer and why, in a sentence a person reads in an approval queue."""

    action: Action
    reason: str
    #: the effective risk, after the policy's override
    risk: Risk
    #: which rule or throttle decided ("tools.send_email.rules[0]"); None for autonomy and risk
    rule: str | None = None
    #: for ``throttle``: epoch seconds when the window allows the call
    retry_at: float | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS or self.risk not in RISKS:
            raise SerializationError(
                f"not a gate decision: action {self.action!r}, risk {self.risk!r}"
            )

    @property
    def allowed(self) -> bool:
        return self.action == "allow"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "risk": self.risk,
            "rule": self.rule,
            "retry_at": self.retry_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateDecision:
        try:
            return cls(
                action=data["action"],
                reason=data["reason"],
                risk=data["risk"],
                rule=data.get("rule"),
                retry_at=data.get("retry_at"),
            )
        except (KeyError, TypeError) as exc:
            raise SerializationError(f"not a gate decision: {data!r} ({exc!r})") from None


def initial_level(policy: Policy | None, actor: str) -> int:
    """The autonomy level an actor starts at: the policy's, else :data:`DEFAULT_LEVEL`."""
    return DEFAULT_LEVEL if policy is None else policy.initial_level(actor)


def evaluate(
    policy: Policy | None,
    proposal: Proposal,
    *,
    level: int,
    now: float,
    recent_calls: Callable[[Throttle], Sequence[float]],
) -> GateDecision:
    """Decide ``proposal``; ``recent_calls(t)`` gives the times of allowed calls matching ``t``.

    In order: deny rules (all of them, wherever they stand) deny; critical risk needs a
    person; the first matching require-approval or allow rule decides whether to ask; else
    the autonomy level decides; an action that may proceed is throttled when a throttle's
    window is full. Level 0 asks a person for everything, even what an allow rule permits.
    A deny or require-approval rule that cannot be checked applies (fail closed).
    """
    if level not in AUTONOMY_MAX_RISK:
        raise ConfigurationError(f"autonomy level must be 0, 1, 2 or 3, got {level!r}")
    tool, actor = proposal.tool, proposal.actor
    risk = proposal.risk if policy is None else policy.risk_of(tool, proposal.risk)
    rules = [] if policy is None or tool not in policy.tools else policy.tools[tool].rules
    decided, allowed_by = _by_rules(rules, proposal, risk)
    if decided is not None:
        return decided
    if level == 0:
        return GateDecision(
            "require_approval",
            f"actor {actor!r} is at autonomy 0 (propose only), so every action needs a person.",
            risk,
        )
    highest = AUTONOMY_MAX_RISK[level]
    autonomy = (
        f"actor {actor!r} at autonomy {level} may act alone up to {highest} risk;"
        f" {tool} is {risk} risk."
    )
    if allowed_by is None and highest is not None and risk_rank(risk) > risk_rank(highest):
        return GateDecision("require_approval", autonomy, risk)

    throttled = check_throttles(policy, proposal, risk=risk, now=now, recent_calls=recent_calls)
    if throttled is not None:
        return throttled
    if allowed_by is not None:
        return GateDecision("allow", allowed_by[1], risk, allowed_by[0])
    return GateDecision("allow", autonomy, risk)


def _by_rules(
    rules: list[Rule], proposal: Proposal, risk: Risk
) -> tuple[GateDecision | None, tuple[str, str] | None]:
    """Deny rules, then critical risk, then the first matching rule; else (None, allow rule)."""
    tool, args = proposal.tool, proposal.args
    labelled = [(_label(rule, tool, i), rule) for i, rule in enumerate(rules)]
    for label, rule in labelled:
        if rule.effect == "deny" and (why := _applies(rule, args)) is not None:
            return GateDecision("deny", rule.reason + why, risk, label), None
    if risk == "critical":
        reason = f"{tool} is critical risk; critical actions always need a person."
        return GateDecision("require_approval", reason, risk), None
    for label, rule in labelled:
        if rule.effect == "allow" and _matches_or_false(rule, args):
            return None, (label, rule.reason)
        if rule.effect == "require_approval" and (why := _applies(rule, args)) is not None:
            return GateDecision("require_approval", rule.reason + why, risk, label), None
    return None, None


def check_throttles(
    policy: Policy | None,
    proposal: Proposal,
    *,
    risk: Risk,
    now: float,
    recent_calls: Callable[[Throttle], Sequence[float]],
) -> GateDecision | None:
    """A ``throttle`` decision when a matching throttle's window is full, else None.

    Also for callers that run a call a person approved and want it to respect the limits.
    With several full windows, ``retry_at`` is the latest, when all of them allow the call.
    """
    if policy is None:
        return None
    worst: GateDecision | None = None
    for i, throttle in enumerate(policy.throttles):
        if not throttle.applies_to(proposal.tool, proposal.actor):
            continue
        window = throttle.per.total_seconds()
        calls = sorted(t for t in recent_calls(throttle) if now - window < t <= now)
        if len(calls) < throttle.limit:
            continue
        # the call is allowed once all but limit - 1 of these have left the window
        retry_at = calls[len(calls) - throttle.limit] + window
        if worst is None or worst.retry_at is None or retry_at > worst.retry_at:
            label = throttle.name or f"throttles[{i}]"
            worst = GateDecision(
                "throttle", _throttle_reason(throttle, calls, retry_at - now), risk, label, retry_at
            )
    return worst


def _throttle_reason(throttle: Throttle, calls: list[float], wait: float) -> str:
    actor = f"actor {throttle.actor!r}" if throttle.actor is not None else None
    if throttle.tool is not None:
        scope = f"{throttle.tool} by {actor}" if actor else throttle.tool
    else:
        scope = actor or "all tools together"
    per = format_duration(throttle.per)
    return (
        f"{scope} is limited to {throttle.limit} calls per {per} and {len(calls)} were allowed in"
        f" the last {per}; the next call is allowed in {format_duration(max(wait, 0.0))}."
    )


def _label(rule: Rule, tool: str, index: int) -> str:
    where = f"tools.{tool}.rules[{index}]"
    return f"{rule.name} ({where})" if rule.name else where


def _applies(rule: Rule, args: Mapping[str, Any]) -> str | None:
    """None when the rule does not apply; else the text to add to its reason (fail closed)."""
    try:
        return "" if rule.matches(args) else None
    except Undecidable as exc:
        return f" (the rule could not be checked, so it applies: {exc})"


def _matches_or_false(rule: Rule, args: Mapping[str, Any]) -> bool:
    """An allow rule that cannot be checked does not allow anything."""
    try:
        return rule.matches(args)
    except Undecidable:
        return False
