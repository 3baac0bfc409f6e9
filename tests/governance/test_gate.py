"""The gate's answers: deny, critical, rules, autonomy levels, throttles, and no policy."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from legato.errors import ConfigurationError, SerializationError
from legato.governance import (
    AUTONOMY_MAX_RISK,
    RISKS,
    Condition,
    GateDecision,
    Policy,
    Proposal,
    Risk,
    Rule,
    Throttle,
    ToolPolicy,
    check_throttles,
    evaluate,
    initial_level,
)

NOW = 1_700_000_000.0


def no_calls(throttle: Throttle) -> list[float]:
    return []


def decide(
    policy: Policy | None,
    tool: str = "send_email",
    args: dict[str, Any] | None = None,
    *,
    risk: Risk = "low",
    level: int = 1,
    actor: str = "outreach-agent",
    calls: Sequence[float] = (),
) -> GateDecision:
    return evaluate(
        policy,
        Proposal(actor=actor, tool=tool, args=args or {}, risk=risk),
        level=level,
        now=NOW,
        recent_calls=lambda throttle: list(calls),
    )


def rule(effect: str, reason: str, **condition: Any) -> Rule:
    when = [Condition.model_validate(condition)] if condition else []
    return Rule.model_validate({"when": when, "effect": effect, "reason": reason})


def email_policy(*rules: Rule, risk: Risk | None = None, **fields: Any) -> Policy:
    return Policy(tools={"send_email": ToolPolicy(risk=risk, rules=list(rules))}, **fields)


# -- deny ----------------------------------------------------------------------------------

COMPETITOR = {"arg": "to", "op": "endswith", "value": "@rival.io"}


def test_a_matching_deny_rule_denies_with_its_reason() -> None:
    policy = email_policy(rule("deny", "We never email competitors.", **COMPETITOR))
    decision = decide(policy, args={"to": "ceo@rival.io"})
    assert decision.action == "deny"
    assert decision.reason == "We never email competitors."
    assert decision.rule == "tools.send_email.rules[0]"
    assert decide(policy, args={"to": "ceo@example.com"}).action == "allow"


def test_deny_beats_an_earlier_allow_rule() -> None:
    policy = email_policy(
        rule("allow", "Anything goes."),
        rule("deny", "We never email competitors.", **COMPETITOR),
    )
    decision = decide(policy, args={"to": "ceo@rival.io"}, level=3)
    assert (decision.action, decision.rule) == ("deny", "tools.send_email.rules[1]")


def test_deny_beats_an_earlier_require_approval_rule_and_critical_risk() -> None:
    policy = email_policy(
        rule("require_approval", "Ask first."),
        rule("deny", "Never.", **COMPETITOR),
        risk="critical",
    )
    assert decide(policy, args={"to": "a@rival.io"}).action == "deny"
    assert decide(policy, args={"to": "a@example.com"}).action == "require_approval"


def test_deny_applies_at_every_autonomy_level() -> None:
    policy = email_policy(rule("deny", "Never.", **COMPETITOR))
    for level in range(4):
        assert decide(policy, args={"to": "a@rival.io"}, level=level).action == "deny"


def test_named_rules_are_labelled_by_name_and_position() -> None:
    named = Rule(when=[], effect="deny", reason="Frozen.", name="change freeze")
    decision = decide(email_policy(named))
    assert decision.rule == "change freeze (tools.send_email.rules[0])"


def test_rules_of_other_tools_do_not_apply() -> None:
    policy = Policy(tools={"delete_account": ToolPolicy(rules=[rule("deny", "No.")])})
    assert decide(policy, "send_email").action == "allow"
    assert decide(policy, "delete_account").action == "deny"


# -- critical ------------------------------------------------------------------------------


@pytest.mark.parametrize("level", range(4))
def test_critical_always_needs_a_person(level: int) -> None:
    decision = decide(None, "wire_money", risk="critical", level=level)
    assert decision.action == "require_approval"
    assert decision.reason == "wire_money is critical risk; critical actions always need a person."
    assert decision.risk == "critical"


def test_critical_beats_allow_rules() -> None:
    policy = email_policy(rule("allow", "Internal is fine."), risk="critical")
    decision = decide(policy, level=3)
    assert decision.action == "require_approval" and "critical" in decision.reason


# -- autonomy --------------------------------------------------------------------------------

# level -> the risks an actor may run alone
ALONE: dict[int, set[str]] = {
    0: set(),
    1: {"low"},
    2: {"low", "medium"},
    3: {"low", "medium", "high"},
}


@pytest.mark.parametrize(("level", "risk"), list(itertools.product(range(4), RISKS)))
def test_autonomy_levels_against_each_risk(level: int, risk: Risk) -> None:
    decision = decide(None, "tool_x", risk=risk, level=level)
    expected = "allow" if risk in ALONE[level] else "require_approval"
    assert decision.action == expected
    assert decision.risk == risk


def test_autonomy_table() -> None:
    assert AUTONOMY_MAX_RISK == {0: None, 1: "low", 2: "medium", 3: "high"}


def test_the_autonomy_reason_names_actor_level_and_risks() -> None:
    decision = decide(None, "send_email", risk="high", level=1)
    assert decision.reason == (
        "actor 'outreach-agent' at autonomy 1 may act alone up to low risk;"
        " send_email is high risk."
    )
    assert decision.rule is None


def test_level_zero_asks_for_everything_even_what_an_allow_rule_permits() -> None:
    policy = email_policy(rule("allow", "Internal is fine."))
    decision = decide(policy, level=0)
    assert decision.action == "require_approval"
    assert "autonomy 0 (propose only)" in decision.reason


def test_the_policy_risk_override_is_what_autonomy_compares() -> None:
    raised = email_policy(risk="high")
    assert decide(raised, risk="low", level=2).action == "require_approval"
    assert decide(raised, risk="low", level=2).risk == "high"
    lowered = email_policy(risk="low")
    assert decide(lowered, risk="high", level=1).action == "allow"


def test_bad_levels_are_refused() -> None:
    for level in (-1, 4):
        with pytest.raises(ConfigurationError, match="autonomy level"):
            decide(None, level=level)


def test_initial_levels() -> None:
    assert initial_level(None, "anyone") == 1
    policy = Policy(autonomy={"planner": 3, "intern": 0}, default_autonomy=2)
    assert initial_level(policy, "planner") == 3
    assert initial_level(policy, "intern") == 0
    assert initial_level(policy, "someone") == 2
    assert initial_level(Policy(), "someone") == 1


# -- allow and require_approval rules ---------------------------------------------------------

INTERNAL = {"arg": "to", "op": "endswith", "value": "@example.com"}


def test_an_allow_rule_lets_an_actor_act_above_its_level() -> None:
    policy = email_policy(rule("allow", "Internal emails are fine.", **INTERNAL))
    allowed = decide(policy, args={"to": "a@example.com"}, risk="high", level=1)
    assert allowed.action == "allow"
    assert allowed.reason == "Internal emails are fine."
    assert allowed.rule == "tools.send_email.rules[0]"
    outside = decide(policy, args={"to": "a@gmail.com"}, risk="high", level=1)
    assert outside.action == "require_approval" and outside.rule is None


def test_a_require_approval_rule_asks_even_within_autonomy() -> None:
    policy = email_policy(
        rule(
            "require_approval",
            "Salary needs a recruiter.",
            arg="subject",
            op="matches",
            value="(?i)salary",
        )
    )
    decision = decide(policy, args={"subject": "Salary band"}, risk="low", level=3)
    assert decision.action == "require_approval"
    assert decision.reason == "Salary needs a recruiter."
    assert decide(policy, args={"subject": "Hello"}, risk="low", level=3).action == "allow"


def test_the_first_matching_non_deny_rule_decides() -> None:
    ask_first = email_policy(
        rule("require_approval", "Ask about salary.", arg="subject", op="contains", value="salary"),
        rule("allow", "Internal is fine.", **INTERNAL),
    )
    allow_first = email_policy(
        rule("allow", "Internal is fine.", **INTERNAL),
        rule("require_approval", "Ask about salary.", arg="subject", op="contains", value="salary"),
    )
    args = {"to": "a@example.com", "subject": "salary"}
    assert decide(ask_first, args=args, risk="high").action == "require_approval"
    assert decide(allow_first, args=args, risk="high").action == "allow"


def test_rules_that_cannot_be_checked_fail_closed() -> None:
    big_refund = {"arg": "amount", "op": "gt", "value": 500}
    deny = email_policy(rule("deny", "No big refunds.", **big_refund))
    denied = decide(deny, args={"amount": "lots"})
    assert denied.action == "deny"
    assert denied.reason.startswith("No big refunds. (the rule could not be checked")
    assert "'lots'" in denied.reason

    ask = email_policy(rule("require_approval", "Big refunds need a person.", **big_refund))
    assert decide(ask, args={"amount": "lots"}, level=3).action == "require_approval"

    allow = email_policy(rule("allow", "Small refunds are fine.", arg="amount", op="lt", value=5))
    assert decide(allow, args={"amount": "lots"}, risk="high").action == "require_approval"


# -- callables in Python-built policies -----------------------------------------------------


def test_callable_rules() -> None:
    def over_budget(args: dict[str, Any]) -> bool:
        return bool(sum(line["price"] for line in args["lines"]) > 100)

    policy = Policy(
        tools={
            "order": ToolPolicy(
                rules=[
                    Rule(when=over_budget, effect="deny", reason="Over budget."),
                    Rule(when=lambda a: a["vendor"] == "acme", effect="allow", reason="Trusted."),
                ]
            )
        }
    )
    cheap = {"lines": [{"price": 10}], "vendor": "acme"}
    assert decide(policy, "order", cheap, risk="high").action == "allow"
    expensive = {"lines": [{"price": 60}, {"price": 50}], "vendor": "acme"}
    assert decide(policy, "order", expensive).action == "deny"
    other = {"lines": [{"price": 10}], "vendor": "globex"}
    assert decide(policy, "order", other, risk="high").action == "require_approval"
    broken = {"vendor": "acme"}  # over_budget raises KeyError: the deny applies
    decision = decide(policy, "order", broken)
    assert decision.action == "deny" and "raised KeyError" in decision.reason


# -- throttles --------------------------------------------------------------------------------


def throttled_policy(*throttles: Throttle) -> Policy:
    return Policy(throttles=list(throttles))


def test_a_throttle_allows_up_to_its_limit_in_the_window() -> None:
    policy = throttled_policy(Throttle(limit=3, per=timedelta(minutes=10), tool="send_email"))
    assert decide(policy, calls=[NOW - 60, NOW - 30]).action == "allow"
    decision = decide(policy, calls=[NOW - 300, NOW - 60, NOW - 30])
    assert decision.action == "throttle"
    assert decision.retry_at == NOW - 300 + 600
    assert decision.rule == "throttles[0]"
    assert decision.reason == (
        "send_email is limited to 3 calls per 10m and 3 were allowed in the last 10m;"
        " the next call is allowed in 5m."
    )


def test_calls_outside_the_window_do_not_count() -> None:
    policy = throttled_policy(Throttle(limit=2, per=timedelta(minutes=1), tool="send_email"))
    assert decide(policy, calls=[NOW - 120, NOW - 60, NOW - 10]).action == "allow"
    assert decide(policy, calls=[NOW - 59, NOW - 10]).action == "throttle"


def test_retry_at_is_when_enough_calls_left_the_window() -> None:
    # the limit was lowered to 2 after 4 calls: the call waits until 3 of them have left
    policy = throttled_policy(Throttle(limit=2, per=timedelta(seconds=100)))
    decision = decide(policy, calls=[NOW - 10, NOW - 90, NOW - 50, NOW - 70])
    assert decision.retry_at == NOW - 50 + 100
    # at retry_at the gate allows it
    later = evaluate(
        policy,
        Proposal("a", "t", {}, "low"),
        level=1,
        now=NOW + 50,
        recent_calls=lambda t: [NOW - 10, NOW - 90, NOW - 50, NOW - 70],
    )
    assert later.action == "allow"


def test_throttles_are_scoped_by_tool_and_actor() -> None:
    by_tool = Throttle(limit=1, per=timedelta(hours=1), tool="send_email")
    by_actor = Throttle(limit=1, per=timedelta(hours=1), actor="outreach-agent")
    both = Throttle(limit=1, per=timedelta(hours=1), tool="send_email", actor="scheduler")
    everything = Throttle(limit=1, per=timedelta(hours=1))
    assert by_tool.applies_to("send_email", "anyone") and not by_tool.applies_to("search", "x")
    assert by_actor.applies_to("search", "outreach-agent")
    assert not by_actor.applies_to("search", "scheduler")
    assert both.applies_to("send_email", "scheduler")
    assert not both.applies_to("send_email", "outreach-agent")
    assert not both.applies_to("search", "scheduler")
    assert everything.applies_to("anything", "anyone")

    asked: list[Throttle] = []

    def recent(throttle: Throttle) -> list[float]:
        asked.append(throttle)
        return [NOW - 1]

    policy = throttled_policy(by_tool, both)
    decision = evaluate(
        policy,
        Proposal("outreach-agent", "search", {}, "low"),
        level=1,
        now=NOW,
        recent_calls=recent,
    )
    assert decision.action == "allow" and asked == []  # neither throttle matches
    decision = evaluate(
        policy,
        Proposal("outreach-agent", "send_email", {}, "low"),
        level=1,
        now=NOW,
        recent_calls=recent,
    )
    assert decision.action == "throttle" and asked == [by_tool]


def test_the_latest_retry_of_several_full_windows_wins() -> None:
    minute = Throttle(limit=1, per=timedelta(minutes=1), name="burst")
    hour = Throttle(limit=2, per=timedelta(hours=1), actor="outreach-agent", name="hourly")
    decision = decide(throttled_policy(minute, hour), calls=[NOW - 30, NOW - 40])
    assert decision.action == "throttle"
    assert decision.rule == "hourly"
    assert decision.retry_at == NOW - 40 + 3600
    assert decision.reason.startswith("actor 'outreach-agent' is limited to 2 calls per 1h")


def test_throttles_apply_after_allow_rules_but_not_to_approvals_or_denials() -> None:
    full = Throttle(limit=1, per=timedelta(hours=1))
    policy = Policy(
        tools={"send_email": ToolPolicy(rules=[rule("allow", "Fine.", **INTERNAL)])},
        throttles=[full],
    )
    assert decide(policy, args={"to": "a@example.com"}, risk="high", calls=[NOW]).action == (
        "throttle"
    )
    assert decide(policy, args={"to": "a@x.com"}, risk="high", calls=[NOW]).action == (
        "require_approval"
    )


def test_check_throttles_on_its_own() -> None:
    policy = throttled_policy(Throttle(limit=1, per=timedelta(seconds=10), tool="t"))
    proposal = Proposal("a", "t", {}, "high")
    full = check_throttles(policy, proposal, risk="high", now=NOW, recent_calls=lambda t: [NOW])
    assert full is not None and full.retry_at == NOW + 10 and full.risk == "high"
    empty = check_throttles(policy, proposal, risk="high", now=NOW, recent_calls=no_calls)
    assert empty is None
    assert check_throttles(None, proposal, risk="high", now=NOW, recent_calls=no_calls) is None


def test_throttle_validation() -> None:
    assert Throttle(limit=1, per="90s").per == timedelta(seconds=90)  # type: ignore[arg-type]
    assert Throttle(limit=1, per=30).per == timedelta(seconds=30)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Throttle(limit=0, per=timedelta(seconds=1))
    with pytest.raises(ValueError, match="positive"):
        Throttle(limit=1, per=timedelta(0))


# -- no policy and decisions -------------------------------------------------------------------


def test_without_a_policy_low_runs_and_anything_riskier_asks() -> None:
    level = initial_level(None, "new-agent")
    assert decide(None, "search", risk="low", level=level).action == "allow"
    for risk in ("medium", "high", "critical"):
        assert decide(None, "x", risk=risk, level=level).action == "require_approval"
    # no throttles either: recent_calls is never needed
    assert decide(None, calls=[NOW] * 1000).action == "allow"


def test_evaluate_is_deterministic_and_does_not_touch_the_arguments() -> None:
    policy = email_policy(rule("require_approval", "Ask.", arg="cc", op="exists"))
    args = {"to": "a@example.com", "cc": ["b@example.com"]}
    first = decide(policy, args=args)
    assert all(decide(policy, args=args) == first for _ in range(5))
    assert args == {"to": "a@example.com", "cc": ["b@example.com"]}


def test_decisions_round_trip_through_json() -> None:
    decision = GateDecision("throttle", "Too many.", "medium", "throttles[0]", NOW + 5)
    data = decision.to_json()
    assert data == {
        "action": "throttle",
        "reason": "Too many.",
        "risk": "medium",
        "rule": "throttles[0]",
        "retry_at": NOW + 5,
    }
    assert GateDecision.from_json(data) == decision
    plain = GateDecision("allow", "Fine.", "low")
    assert GateDecision.from_json(plain.to_json()) == plain and plain.allowed


@pytest.mark.parametrize(
    "data",
    [{"action": "allow"}, {"action": "maybe", "reason": "r", "risk": "low"}, {"reason": "r"}],
)
def test_malformed_decisions_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(SerializationError, match="not a gate decision"):
        GateDecision.from_json(data)


def test_proposals_need_a_known_risk() -> None:
    with pytest.raises(ConfigurationError, match="risk 'severe'"):
        Proposal("a", "t", {}, "severe")  # type: ignore[arg-type]
