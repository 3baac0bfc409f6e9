"""A policy: the intent of a workflow and the boundaries its tool calls must respect.

A policy is plain data (or Python callables when built in code): tools with risk overrides and
ordered rules on their arguments, throttles, initial autonomy per actor, defaults per risk,
and data rules that say which kinds of data may reach which model provider.
Conditions are evaluated structurally, never with ``eval``: a policy file cannot run code.
Load one from YAML with :meth:`Policy.from_file`; errors name the file, line and field.

The sections of a policy file, each optional::

    intent: {goal: ..., success_criteria: [...], constraints: [...]}
    tools:
      send_email:
        risk: high
        rules:
          - {when: [{arg: to, op: endswith, value: "@rival.io"}], effect: deny, reason: ...}
    throttles:
      - {tool: send_email, actor: outreach-agent, limit: 20, per: 1h}
    autonomy: {outreach-agent: 2}
    default_autonomy: 1
    defaults:
      high: {approval_timeout: 4h, on_timeout: reject, assignees: [hiring-managers]}
    data:                                 # see legato.governance.data_rules
      patterns:                           # custom classes: name -> regular expression
        employee_id: '\\bE\\d{6}\\b'         # single quotes keep the backslashes
      redact: [email, phone, employee_id] # replaced by [EMAIL] ... for external providers
      forbid: [credit_card, api_key]      # the call is blocked, whatever the provider
      forbid_external: [us_ssn]           # blocked only when the provider is external

Built-in data classes: email, phone, us_ssn, credit_card, iban, ip_address, api_key.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from legato.durations import positive_duration
from legato.errors import PolicyError
from legato.governance.data_rules import DataRules
from legato.governance.monitors import Monitor
from legato.governance.yaml_loader import load_policy

Risk = Literal["low", "medium", "high", "critical"]
RISKS: tuple[Risk, ...] = ("low", "medium", "high", "critical")
Op = Literal[
    "eq",
    "ne",
    "in",
    "not_in",
    "startswith",
    "endswith",
    "contains",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
]
OPS: tuple[Op, ...] = get_args(Op)
#: A rule written in Python: called with the proposal's arguments, it must return a bool.
RuleFn = Callable[[dict[str, Any]], bool]


class Undecidable(Exception):
    """A condition that cannot be decided for these arguments (wrong type, a failing callable).

    The gate fails closed on it: a deny or require-approval rule that cannot be checked applies.
    """


def risk_rank(risk: Risk) -> int:
    """0 for low up to 3 for critical."""
    return RISKS.index(risk)


# -- durations ----------------------------------------------------------------------------

#: A positive ``timedelta`` from a timedelta, seconds, or text such as "30s", "1h30m".
parse_duration = positive_duration
Duration = Annotated[timedelta, BeforeValidator(positive_duration)]


# -- conditions -----------------------------------------------------------------------------

_MISSING: Any = object()


def resolve(args: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``args``, or ``_MISSING``.

    Segments index mappings by key, lists by a decimal index, and pydantic models or
    dataclasses by field name (validated arguments may be either).
    """
    current: Any = args
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list | tuple) and part.isdigit():
            if int(part) >= len(current):
                return _MISSING
            current = current[int(part)]
        elif _has_field(current, part):
            current = getattr(current, part)
        else:
            return _MISSING
    return current


def _has_field(value: Any, name: str) -> bool:
    if isinstance(value, BaseModel):
        return name in type(value).model_fields
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return name in {f.name for f in dataclasses.fields(value)}
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    # True == 1 in Python; in a policy, a boolean flag and a number are different things.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _compare(op: str, arg: str, a: Any, b: Any) -> bool:
    problem = Undecidable(f"argument {arg!r} is {a!r}, which cannot be compared with {b!r}")
    if not ((_is_number(a) and _is_number(b)) or type(a) is type(b)):
        raise problem
    try:
        if op == "gt":
            return bool(a > b)
        if op == "gte":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        raise problem from None


def _need_str(arg: str, value: Any, op: str) -> str:
    if not isinstance(value, str):
        raise Undecidable(f"argument {arg!r} is {value!r}, not text, so {op!r} cannot apply")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """One test on one argument, such as ``{arg: to, op: endswith, value: "@example.com"}``.

    ``arg`` is a dotted path ("order.amount", "items.0.sku"). An argument that is missing or
    null makes every op false except ``exists`` (which is true when present and not null;
    ``value: false`` inverts it). Text ops need text; ``gt``/``lt`` compare numbers with
    numbers and text with text; anything else cannot be decided (see :class:`Undecidable`).
    """

    arg: str
    op: Op
    value: Any = None
    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)

    @field_validator("arg")
    @classmethod
    def _check_arg(cls, arg: str) -> str:
        if not arg or "" in arg.split("."):
            raise ValueError(f"{arg!r} is not an argument path such as 'to' or 'order.amount'")
        return arg

    @field_validator("value")
    @classmethod
    def _check_value(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        if op in ("in", "not_in"):
            if not isinstance(value, list | tuple | set | frozenset):
                raise ValueError(f"op {op!r} needs a list of values, got {value!r}")
            return list(value)
        if op in ("startswith", "endswith"):
            texts = value if isinstance(value, list | tuple) else [value]
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError(f"op {op!r} needs text or a list of texts, got {value!r}")
            return value if isinstance(value, str) else list(texts)
        if op == "matches":
            if not isinstance(value, str):
                raise ValueError(f"op 'matches' needs a regular expression, got {value!r}")
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        if op in ("gt", "gte", "lt", "lte") and not (
            _is_number(value) or isinstance(value, str | date)
        ):
            raise ValueError(f"op {op!r} needs a number, text or date, got {value!r}")
        if op == "exists" and value is not None and not isinstance(value, bool):
            raise ValueError(f"op 'exists' takes true, false or no value, got {value!r}")
        return value

    @model_validator(mode="after")
    def _value_given(self) -> Condition:
        if self.op != "exists" and "value" not in self.model_fields_set:
            raise ValueError(f"op {self.op!r} needs a value")
        return self

    def model_post_init(self, context: Any, /) -> None:
        if self.op == "matches":
            self._pattern = re.compile(self.value)

    def holds(self, args: Mapping[str, Any]) -> bool:
        """Whether the condition holds; raises :class:`Undecidable` when it cannot tell."""
        found = resolve(args, self.arg)
        present = found is not _MISSING and found is not None
        if self.op == "exists":
            return present == (self.value is not False)
        return present and self._test(found)

    def _test(self, found: Any) -> bool:
        op, value = self.op, self.value
        if op == "eq":
            return _equal(found, value)
        if op == "ne":
            return not _equal(found, value)
        if op == "in":
            return any(_equal(found, v) for v in value)
        if op == "not_in":
            return not any(_equal(found, v) for v in value)
        if op == "startswith":
            prefixes = value if isinstance(value, str) else tuple(value)
            return _need_str(self.arg, found, op).startswith(prefixes)
        if op == "endswith":
            suffixes = value if isinstance(value, str) else tuple(value)
            return _need_str(self.arg, found, op).endswith(suffixes)
        if op == "matches":
            assert self._pattern is not None
            return self._pattern.search(_need_str(self.arg, found, op)) is not None
        if op == "contains":
            return _contains(self.arg, found, value)
        return _compare(op, self.arg, found, value)


def _contains(arg: str, found: Any, value: Any) -> bool:
    if isinstance(found, str):
        if not isinstance(value, str):
            raise Undecidable(f"argument {arg!r} is text; {value!r} is not")
        return value in found
    if isinstance(found, list | tuple | set | frozenset):
        return any(_equal(item, value) for item in found)
    if isinstance(found, Mapping):
        return value in found
    raise Undecidable(f"argument {arg!r} is {found!r}, which cannot contain anything")


def _when_kind(value: Any) -> str:
    return "callable" if callable(value) else "conditions"


When = Annotated[
    Annotated[list[Condition], Tag("conditions")] | Annotated[RuleFn, Tag("callable")],
    Discriminator(_when_kind),
]


class Rule(_Model):
    """``effect`` applies when every condition in ``when`` holds (no conditions: always).

    ``when`` may be a Python callable taking the arguments dict when the policy is built in
    code; it must be deterministic (the gate's decision is journaled and replayed).
    """

    when: When = Field(default_factory=list)
    effect: Literal["allow", "deny", "require_approval"]
    reason: str = Field(min_length=1)
    #: a short label for decisions and the audit log; the rule's position is used otherwise
    name: str | None = None

    def matches(self, args: Mapping[str, Any]) -> bool:
        """Whether the rule applies; raises :class:`Undecidable` when it cannot tell.

        One condition that is false decides "no" even if another cannot be decided.
        """
        if callable(self.when):
            try:
                result = self.when(dict(args))
            except Exception as exc:
                raise Undecidable(f"its function raised {type(exc).__name__}: {exc}") from None
            if not isinstance(result, bool):
                raise Undecidable(f"its function returned {result!r}, not True or False")
            return result
        undecided: Undecidable | None = None
        for condition in self.when:
            try:
                if not condition.holds(args):
                    return False
            except Undecidable as exc:
                undecided = undecided or exc
        if undecided is not None:
            raise undecided
        return True


class ToolPolicy(_Model):
    """What the policy says about one tool: a risk override and ordered rules."""

    risk: Risk | None = None
    rules: list[Rule] = Field(default_factory=list)


class Throttle(_Model):
    """At most ``limit`` allowed calls per ``per``, for a tool, an actor, or both (None: any)."""

    limit: StrictInt = Field(ge=1)
    per: Duration
    tool: str | None = None
    actor: str | None = None
    name: str | None = None

    def applies_to(self, tool: str, actor: str) -> bool:
        return (self.tool is None or self.tool == tool) and (
            self.actor is None or self.actor == actor
        )


class Intent(_Model):
    """What the workflow is for, in words, for people and for agents' instructions."""

    goal: str = ""
    success_criteria: list[str] = Field(default_factory=list)
    constraints: list[str] = Field(default_factory=list)


class RiskDefaults(_Model):
    """How approvals for actions of one risk level are handled unless the call says otherwise."""

    approval_timeout: Duration | None = None
    on_timeout: Literal["reject", "approve", "fail"] = "reject"
    assignees: list[str] = Field(default_factory=list)


AutonomyLevel = Annotated[StrictInt, Field(ge=0, le=3)]


class Policy(_Model):
    """The intent and the boundaries of a workflow's actions; see the module docstring."""

    intent: Intent = Field(default_factory=Intent)
    tools: dict[str, ToolPolicy] = Field(default_factory=dict)
    throttles: list[Throttle] = Field(default_factory=list)
    #: the initial autonomy level (0-3) per actor; people and monitors change it at run time
    autonomy: dict[str, AutonomyLevel] = Field(default_factory=dict)
    default_autonomy: AutonomyLevel = 1
    defaults: dict[Risk, RiskDefaults] = Field(default_factory=dict)
    #: what may reach which model provider: classes redacted or forbidden
    data: DataRules = Field(default_factory=DataRules)
    #: monitors that watch metrics and act (see ``legato.governance.monitors``)
    monitors: dict[str, Monitor] = Field(default_factory=dict)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<string>") -> Policy:
        """Parse a policy from YAML text; errors name ``source``, the line and the field."""
        return load_policy(cls, text, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Policy:
        """Read a policy YAML file; errors name the file (as given), the line and the field."""
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read policy file {os.fspath(path)}: {exc}") from None
        return cls.from_yaml(text, source=os.fspath(path))

    def risk_of(self, tool: str, declared: Risk) -> Risk:
        """The tool's effective risk: the policy's override, else what the tool declares."""
        override = self.tools.get(tool)
        return override.risk if override is not None and override.risk is not None else declared

    def initial_level(self, actor: str) -> int:
        """The autonomy level an actor starts at, before any change at run time."""
        return self.autonomy.get(actor, self.default_autonomy)

    def defaults_for(self, risk: Risk) -> RiskDefaults:
        """Approval defaults for actions of ``risk``; empty defaults when the policy has none."""
        return self.defaults.get(risk) or RiskDefaults()
