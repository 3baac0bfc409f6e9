"""Policies from YAML: a realistic file, and bad files reported with file, line and field."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from legato.errors import LegatoError
from legato.governance import Policy, PolicyError, Proposal, evaluate

EXAMPLE = Path(__file__).with_name("example_policy.yaml")


def test_the_example_policy_loads() -> None:
    policy = Policy.from_file(EXAMPLE)
    assert policy.intent.goal == "Book first interviews with qualified candidates"
    assert len(policy.intent.success_criteria) == 2
    assert policy.intent.constraints[0] == "never contact a candidate who opted out"
    email = policy.tools["send_email"]
    assert email.risk == "high"
    assert [r.effect for r in email.rules] == ["deny", "require_approval", "allow"]
    assert email.rules[0].name == "no-competitors"
    assert email.rules[0].when[0].value == ["@competitor.com", "@rival.io"]  # type: ignore[index]
    assert policy.tools["issue_refund"].risk is None
    assert [(t.tool, t.actor, t.limit, t.per) for t in policy.throttles] == [
        ("send_email", None, 20, timedelta(hours=1)),
        (None, "outreach-agent", 100, timedelta(days=1)),
    ]
    assert policy.autonomy == {"outreach-agent": 2, "scheduler": 1}
    assert policy.default_autonomy == 1
    assert policy.defaults["high"].approval_timeout == timedelta(hours=4)
    assert policy.defaults["high"].assignees == ["hiring-managers"]
    assert policy.defaults["critical"].on_timeout == "fail"
    assert policy.defaults_for("low").approval_timeout is None
    assert policy.defaults_for("low").on_timeout == "reject"


def test_the_example_policy_decides() -> None:
    policy = Policy.from_file(EXAMPLE)

    def action(tool: str, args: dict[str, object], actor: str = "outreach-agent") -> str:
        proposal = Proposal(actor=actor, tool=tool, args=args, risk="medium")
        level = policy.initial_level(actor)
        return evaluate(policy, proposal, level=level, now=0.0, recent_calls=lambda t: []).action

    assert action("send_email", {"to": "x@rival.io"}) == "deny"
    assert action("send_email", {"to": "a@example.com", "subject": "Your offer"}) == (
        "require_approval"
    )
    assert action("send_email", {"to": "a@example.com", "subject": "Hi"}) == "allow"
    assert action("send_email", {"to": "a@example.com", "attachments": ["cv.pdf"]}) == (
        "require_approval"
    )
    assert action("send_email", {"to": "a@gmail.com"}) == "require_approval"  # high risk
    assert action("issue_refund", {"order": {"amount": 20, "currency": "EUR"}}) == "allow"
    assert action("issue_refund", {"order": {"amount": 20, "currency": "GBP"}}) == "deny"
    assert action("issue_refund", {"order": {"amount": 900, "currency": "EUR"}}) == (
        "require_approval"
    )
    assert action("issue_refund", {"order": {"amount": 20}}, actor="scheduler") == (
        "require_approval"  # medium risk at the scheduler's level 1
    )


def test_from_yaml_and_from_file_agree(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    assert Policy.from_yaml(text) == Policy.from_file(EXAMPLE)


def test_an_empty_file_is_the_default_policy() -> None:
    assert Policy.from_yaml("") == Policy()
    assert Policy.from_yaml("# nothing yet\n") == Policy()


def test_anchors_and_merge_keys_work() -> None:
    policy = Policy.from_yaml(
        textwrap.dedent(
            """\
            defaults:
              high: &slow {approval_timeout: 4h, assignees: [ops]}
              critical:
                <<: *slow
                on_timeout: fail
            """
        )
    )
    assert policy.defaults["critical"].approval_timeout == timedelta(hours=4)
    assert policy.defaults["critical"].on_timeout == "fail"


def test_policy_errors_are_legato_errors() -> None:
    assert issubclass(PolicyError, LegatoError) and PolicyError.code == "policy"


def load_error(tmp_path: Path, text: str) -> tuple[str, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(PolicyError) as caught:
        Policy.from_file(path)
    return str(path), str(caught.value)


OPS = "eq, ne, in, not_in, startswith, endswith, contains, matches, gt, gte, lt, lte, exists"

BAD: dict[str, tuple[str, str]] = {
    "bad op": (
        """\
        intent:
          goal: Send updates
        tools:
          send_email:
            rules:
              - when:
                  - {arg: to, op: startswith_x, value: "a"}
                effect: deny
                reason: No.
        """,
        f"line 7: tools.send_email.rules[0].when[0].op: 'startswith_x' is not one of {OPS}",
    ),
    "unknown field with a suggestion": (
        """\
        tools:
          send_email:
            risk: high
            rulez: []
        """,
        "line 4: tools.send_email.rulez: unknown field 'rulez' (did you mean 'rules'?);"
        " expected one of risk, rules",
    ),
    "unknown top-level field": (
        """\
        intent: {goal: x}
        budgets: {per_run: 5}
        """,
        "line 2: budgets: unknown field 'budgets'; expected one of intent, tools, throttles,"
        " autonomy, default_autonomy, defaults, data, monitors",
    ),
    "unknown field in a block-style condition": (
        """\
        tools:
          a:
            rules:
              - when:
                  - arg: x
                    op: eq
                    valeu: 1
                effect: deny
                reason: r
        """,
        "line 7: tools.a.rules[0].when[0].valeu: unknown field 'valeu' (did you mean 'value'?);"
        " expected one of arg, op, value",
    ),
    "missing reason": (
        """\
        tools:
          a:
            rules:
              - effect: deny
        """,
        "line 4: tools.a.rules[0].reason: required field missing",
    ),
    "bad effect": (
        """\
        tools:
          a:
            rules:
              - effect: block
                reason: r
        """,
        "line 4: tools.a.rules[0].effect: 'block' is not one of allow, deny, require_approval",
    ),
    "bad regex": (
        """\
        tools:
          a:
            rules:
              - when:
                  - arg: body
                    op: matches
                    value: "(["
                effect: deny
                reason: r
        """,
        "line 7: tools.a.rules[0].when[0].value: invalid regular expression '([':"
        " unterminated character set at position 1",
    ),
    "missing value": (
        """\
        tools:
          a:
            rules:
              - when: [{arg: x, op: eq}]
                effect: deny
                reason: r
        """,
        "line 4: tools.a.rules[0].when[0]: op 'eq' needs a value",
    ),
    "in without a list": (
        """\
        tools:
          a:
            rules:
              - when: [{arg: x, op: in, value: EUR}]
                effect: deny
                reason: r
        """,
        "line 4: tools.a.rules[0].when[0].value: op 'in' needs a list of values, got 'EUR'",
    ),
    "when is text": (
        """\
        tools:
          a:
            rules:
              - reason: r
                effect: deny
                when: "to == 'x'"
        """,
        "line 6: tools.a.rules[0].when: should be a valid list, got \"to == 'x'\"",
    ),
    "bad risk": (
        """\
        tools:
          a:
            risk: severe
        """,
        "line 3: tools.a.risk: 'severe' is not one of low, medium, high, critical",
    ),
    "autonomy out of range": (
        """\
        autonomy:
          planner: 2
          rogue: 7
        """,
        "line 3: autonomy.rogue: should be less than or equal to 3, got 7",
    ),
    "autonomy as text": (
        """\
        default_autonomy: "2"
        """,
        "line 1: default_autonomy: should be a valid integer, got '2'",
    ),
    "bad duration": (
        """\
        throttles:
          - tool: send_email
            limit: 10
            per: 10 minutes
        """,
        "line 4: throttles[0].per: '10 minutes' is not a duration; write seconds or a number"
        " with a unit, such as 30s, 10m, 1h or 1d",
    ),
    "zero limit": (
        """\
        throttles:
          - {limit: 5, per: 1h}
          - {limit: 0, per: 1h}
        """,
        "line 3: throttles[1].limit: should be greater than or equal to 1, got 0",
    ),
    "bad default risk": (
        """\
        defaults:
          extreme:
            on_timeout: reject
        """,
        "line 2: defaults.extreme: 'extreme' is not one of low, medium, high, critical",
    ),
    "bad on_timeout": (
        """\
        defaults:
          high:
            approval_timeout: 2h
            on_timeout: escalate
        """,
        "line 4: defaults.high.on_timeout: 'escalate' is not one of reject, approve, fail",
    ),
    "negative timeout": (
        """\
        defaults:
          high: {approval_timeout: -5}
        """,
        "line 2: defaults.high.approval_timeout: a duration must be positive, got -5",
    ),
    "tool names that are not plain are quoted": (
        """\
        tools:
          mail.send:
            rules: 5
        """,
        "line 3: tools['mail.send'].rules: should be a valid list, got 5",
    ),
    "duplicate key": (
        """\
        tools:
          send_email:
            risk: low
          send_email:
            risk: high
        """,
        "line 4: tools.send_email: duplicate key (first written on line 2)",
    ),
    "syntax error": (
        """\
        tools:
          a: [1, 2
        autonomy: {}
        """,
        "line 3: invalid YAML: while parsing a flow sequence, expected ',' or ']', but got ':'",
    ),
    "tab indentation": (
        "tools:\n\ta: {}\n",
        "line 2: invalid YAML: while scanning for the next token, found character '\\t' that"
        " cannot start any token",
    ),
    "python objects are never constructed": (
        """\
        intent: !!python/object/apply:os.system ["echo pwned"]
        """,
        "line 1: invalid YAML: could not determine a constructor for the tag"
        " 'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    "not a mapping": (
        """\
        - tools
        - throttles
        """,
        "line 1: a policy must be a mapping with keys such as intent, tools, throttles,"
        " autonomy, default_autonomy, defaults, data, monitors, not list",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_policy_files(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    path, message = load_error(tmp_path, text)
    assert message == f"{path}, {expected}"


def test_every_problem_is_listed_in_file_order(tmp_path: Path) -> None:
    path, message = load_error(
        tmp_path,
        """\
        autonomy:
          a: 9
        tools:
          t:
            risk: huge
        default_autonomy: -1
        """,
    )
    assert message.splitlines() == [
        f"{path}, line 2: autonomy.a: should be less than or equal to 3, got 9",
        f"{path}, line 5: tools.t.risk: 'huge' is not one of low, medium, high, critical",
        f"{path}, line 6: default_autonomy: should be greater than or equal to 0, got -1",
    ]


def test_the_source_name_is_used_for_text() -> None:
    with pytest.raises(PolicyError, match=r"^team\.yaml, line 1: tools: should be"):
        Policy.from_yaml("tools: 5\n", source="team.yaml")
    with pytest.raises(PolicyError, match=r"^<string>, line 1: "):
        Policy.from_yaml("tools: 5\n")


def test_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=f"cannot read policy file {missing}"):
        Policy.from_file(missing)


def test_alias_bombs_are_refused() -> None:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 8):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    lines.append("intent: {goal: x, constraints: *h}")
    with pytest.raises(PolicyError, match="expands to more than 50000 values"):
        Policy.from_yaml("\n".join(lines))


def test_yes_no_on_off_are_text_and_true_false_are_booleans() -> None:
    policy = Policy.from_yaml(
        textwrap.dedent(
            """\
            tools:
              ship:
                rules:
                  - when:
                      - {arg: country, op: in, value: [NO, SE, on, Yes]}
                      - {arg: express, op: eq, value: true}
                      - {arg: gift, op: eq, value: False}
                    effect: deny
                    reason: r
            """
        )
    )
    when = policy.tools["ship"].rules[0].when
    assert [c.value for c in when] == [["NO", "SE", "on", "Yes"], True, False]  # type: ignore[union-attr]
