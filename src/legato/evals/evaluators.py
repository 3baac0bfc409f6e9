"""Evaluators: functions that judge an output with a score in [0, 1], pass or fail, and why.

``@app.evaluator(name, on=..., mode=..., sample=...)`` registers one. ``on`` says what it
judges: ``"workflow"`` (a run's result), ``"step"``, ``"tool"`` or ``"llm"`` (every one), or one
of them by name (``"step:score"``, ``"tool:send_email"``, ``"llm:fast"``). ``mode="inline"``
judges in the run, as a journaled entry (replay returns the recorded verdict; ``required=True``
fails the run on a fail); ``mode="shadow"`` judges later, as durable work that never blocks or
fails the run, for a sample of the targets (a fraction, chosen by a hash of the target, so the
same on every replay and worker).

An evaluator may return a :class:`Verdict`, a bool (pass: score 1), a number (the score; it
passes at ``threshold``) or a ``(score, passed, reason)`` tuple; it may be ``async``.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from legato.errors import ConfigurationError, LegatoError

Mode = Literal["inline", "shadow"]
KINDS = ("workflow", "step", "tool", "llm")


@dataclass(frozen=True)
class Verdict:
    """An evaluator's judgement: ``score`` in [0, 1], ``passed``, and the ``reason``."""

    score: float
    passed: bool
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "passed": self.passed, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(float(data["score"]), bool(data["passed"]), str(data.get("reason", "")))


@dataclass(frozen=True)
class Target:
    """What an evaluator judges: one output of one run, with the input that produced it."""

    run_id: str
    workflow: str
    #: "workflow", "step", "tool" or "llm"
    kind: str
    #: the step or tool name, the model alias, or the workflow's name
    name: str
    #: the journal entry (None for a workflow's result)
    entry: str | None
    input: Any
    output: Any
    tenant: str | None = None

    @property
    def label(self) -> str:
        return "workflow" if self.kind == "workflow" else f"{self.kind}:{self.name}"


EvaluatorFn = Callable[[Target], Any]


class EvaluationFailed(LegatoError):
    """A required inline evaluator failed the output it judged."""

    code = "evaluation_failed"

    def __init__(self, evaluator: str, target: str, reason: str) -> None:
        super().__init__(f"evaluator {evaluator!r} failed {target}: {reason}")
        self.details = {"evaluator": evaluator, "target": target, "reason": reason}


@dataclass(frozen=True)
class EvaluatorDef:
    """A registered evaluator (see the module docstring)."""

    name: str
    fn: EvaluatorFn
    on: str = "workflow"
    mode: Mode = "inline"
    sample: float = 1.0
    required: bool = False
    threshold: float = 0.5
    kind: str = field(init=False)
    only: str | None = field(init=False)

    def __post_init__(self) -> None:
        kind, _, only = self.on.partition(":")
        if kind not in KINDS or (kind == "workflow" and only):
            raise ConfigurationError(
                f"evaluator {self.name!r}: on={self.on!r} is not one of 'workflow', 'step',"
                " 'tool', 'llm', or 'step:NAME', 'tool:NAME', 'llm:ALIAS'"
            )
        if self.mode not in ("inline", "shadow"):
            raise ConfigurationError(
                f"evaluator {self.name!r}: mode must be 'inline' or 'shadow', got {self.mode!r}"
            )
        if not 0.0 < self.sample <= 1.0:
            raise ConfigurationError(
                f"evaluator {self.name!r}: sample must be in (0, 1], got {self.sample!r}"
            )
        if self.mode == "shadow" and self.required:
            raise ConfigurationError(
                f"evaluator {self.name!r}: a shadow evaluator never fails a run (required=True"
                " needs mode='inline')"
            )
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "only", only or None)

    def matches(self, kind: str, name: str) -> bool:
        return self.kind == kind and (self.only is None or self.only == name)

    def sampled(self, run_id: str, entry: str | None) -> bool:
        """Whether this target is in the sample (the same answer everywhere, every time)."""
        if self.sample >= 1.0:
            return True
        digest = hashlib.sha256(f"{self.name}|{run_id}|{entry}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.sample

    async def judge(self, target: Target) -> Verdict:
        """Run the evaluator on ``target``; an evaluator that raises fails with the error."""
        try:
            got = self.fn(target)
            if inspect.isawaitable(got):
                got = await got
        except Exception as exc:  # a broken evaluator judges nothing well: a fail, with why
            return Verdict(0.0, False, f"the evaluator raised {type(exc).__name__}: {exc}")
        return verdict(got, self.threshold, self.name)


def verdict(value: Any, threshold: float = 0.5, name: str = "evaluator") -> Verdict:
    """What an evaluator returned, as a :class:`Verdict`."""
    if isinstance(value, Verdict):
        out = value
    elif isinstance(value, bool):
        out = Verdict(1.0 if value else 0.0, value)
    elif isinstance(value, int | float):
        out = Verdict(float(value), float(value) >= threshold)
    elif isinstance(value, tuple) and len(value) in (2, 3):
        out = Verdict(float(value[0]), bool(value[1]), str(value[2]) if len(value) == 3 else "")
    else:
        raise ConfigurationError(
            f"evaluator {name!r} returned {value!r}; return a Verdict, a bool, a score in"
            " [0, 1] or (score, passed, reason)"
        )
    if not 0.0 <= out.score <= 1.0:
        raise ConfigurationError(f"evaluator {name!r} returned score {out.score}, not in [0, 1]")
    return out


def evaluation_key(run_id: str, evaluator: str, entry: str | None) -> str:
    """The identity of one evaluation: recorded once whoever records it, however often."""
    return f"{run_id}|{evaluator}|{entry if entry is not None else 'result'}"


# -- built-in evaluators ---------------------------------------------------------------------


def _value(target: Target) -> Any:
    """The output to judge: a model call's parsed output (or its text), else the output."""
    out = target.output
    if target.kind == "llm" and isinstance(out, dict):
        return out.get("output") if out.get("output") is not None else out.get("text", "")
    return out


def schema_valid(schema: Any) -> EvaluatorFn:
    """Passes when the output validates against ``schema``: a pydantic model or any type
    pydantic validates, or a JSON Schema given as a dict."""
    if isinstance(schema, dict):
        import jsonschema

        validator = jsonschema.Draft202012Validator(schema)

        def check_json(target: Target) -> Verdict:
            errors = sorted(validator.iter_errors(_value(target)), key=lambda e: list(e.path))
            if not errors:
                return Verdict(1.0, True, "valid")
            return Verdict(0.0, False, "; ".join(e.message for e in errors[:3]))

        return check_json
    from pydantic import TypeAdapter, ValidationError

    adapter: TypeAdapter[Any] = TypeAdapter(schema)

    def check(target: Target) -> Verdict:
        try:
            adapter.validate_python(_value(target))
        except ValidationError as exc:
            return Verdict(0.0, False, f"{exc.error_count()} error(s): {exc.errors()[0]['msg']}")
        return Verdict(1.0, True, "valid")

    return check


def rules(
    *,
    regex: str | Sequence[str] = (),
    required: Sequence[str] = (),
    ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
    forbidden: Sequence[str] = (),
) -> EvaluatorFn:
    """Passes when every rule holds; the score is the share of rules that hold.

    ``regex``: patterns the text must match (searched); ``required``: fields the output must
    have, not empty (dotted paths); ``ranges``: field -> (low, high), either may be None;
    ``forbidden``: words or phrases the text must not contain (case-insensitive).
    """
    patterns = [re.compile(p) for p in ([regex] if isinstance(regex, str) else regex)]
    banned = [f.lower() for f in forbidden]
    bounds = dict(ranges or {})

    def check(target: Target) -> Verdict:
        value = _value(target)
        text = value if isinstance(value, str) else _text(value)
        broken: list[str] = []
        total = len(patterns) + len(required) + len(bounds) + len(banned)
        broken += [f"does not match /{p.pattern}/" for p in patterns if not p.search(text)]
        for path in required:
            if _field(value, path) in (None, "", [], {}):
                broken.append(f"{path} is missing")
        for path, (low, high) in bounds.items():
            got = _field(value, path)
            if not isinstance(got, int | float) or isinstance(got, bool):
                broken.append(f"{path} is not a number")
            elif (low is not None and got < low) or (high is not None and got > high):
                broken.append(f"{path}={got} is outside [{low}, {high}]")
        lowered = text.lower()
        broken += [f"contains {b!r}" for b in banned if b in lowered]
        score = 1.0 if total == 0 else (total - len(broken)) / total
        return Verdict(max(0.0, score), not broken, "; ".join(broken) or "every rule holds")

    return check


def _text(value: Any) -> str:
    import json

    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def _field(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
        if value is None:
            return None
    return value


#: a person's decision on a proposal, as a label (see ``ops.approvals``): approved as proposed
#: is 1, approved after editing 0.5, rejected 0
HUMAN_EVALUATOR = "human"
HUMAN_SCORES = {"approved": 1.0, "edited": 0.5, "rejected": 0.0}


def human_label(status: str, edited: bool) -> Verdict:
    """The label a person's decision gives the proposal it judged."""
    if status == "approved":
        key = "edited" if edited else "approved"
        return Verdict(HUMAN_SCORES[key], True, f"a person {key} it")
    return Verdict(HUMAN_SCORES["rejected"], False, "a person rejected it")
