"""Monitors, as a policy states them: what to watch, when it is wrong, and what to do then.

A monitor reads one metric over a scope in consecutive windows (the last N samples, or a
duration), compares each window with a threshold (fixed, or a factor of a trailing baseline),
and fires only when the difference is significant (a Wilson interval for rates, a one-sided t
test for means), never on one bad run. Firing applies its actions (lower or revoke an actor's
autonomy, reroute a model alias, pause new starts of a workflow, alert a webhook); after
``restore_after`` healthy windows in a row they are undone (or only by a person, with
``restore: manual``). Written in Python (``app.monitor(...)``) or in the policy YAML::

    monitors:
      answer-quality:
        metric: pass_rate
        evaluator: answer-ok
        scope: {workflow: support}
        window: 10            # the last 10 evaluations; or a duration: 15m
        below: 0.8
        min_sample: 10
        actions:
          - lower_autonomy: {actor: support-agent, to: 1}
          - alert: {webhook: "https://hooks.example.com/legato"}
        restore_after: 2

Pure data: ``legato.ops.monitors`` evaluates the windows and applies the actions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from legato.durations import positive_duration

Metric = Literal["pass_rate", "score", "failure_rate", "cost", "duration", "tokens"]
#: metrics that are rates (a share of 0/1 samples): judged with a Wilson interval
RATES: frozenset[str] = frozenset({"pass_rate", "failure_rate"})
#: metrics read from evaluations (the others from run ends)
EVALUATION_METRICS: frozenset[str] = frozenset({"pass_rate", "score"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Model):
    """Which samples count: runs of a workflow, of a tenant; evaluations of a target."""

    workflow: str | None = None
    tenant: str | None = None
    #: evaluations of one target only (``workflow``, ``step:NAME``, ``tool:NAME``, ``llm:ALIAS``)
    target: str | None = None


class LowerAutonomy(_Model):
    """Lower ``actor``'s autonomy to ``to`` (never raise it); restored to what it was."""

    actor: str
    to: int = Field(ge=0, le=3)


class RevokeAutonomy(_Model):
    """Autonomy 0 for ``actor``: every action needs a person."""

    actor: str


class Reroute(_Model):
    """Send calls to model ``alias`` to deployment ``to`` (``provider:model``)."""

    alias: str
    to: str


class PauseStarts(_Model):
    """Pause ``workflow``: no new entry of its runs starts until restored."""

    workflow: str


class Alert(_Model):
    """POST the figures to ``webhook`` (retried until it answers 2xx) and log them."""

    webhook: str

    @field_validator("webhook")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"a webhook must be an http:// or https:// URL, got {value!r}")
        return value


AnyAction = LowerAutonomy | RevokeAutonomy | Reroute | PauseStarts | Alert
_KEYS: dict[type[BaseModel], str] = {
    LowerAutonomy: "lower_autonomy",
    RevokeAutonomy: "revoke_autonomy",
    Reroute: "reroute",
    PauseStarts: "pause",
    Alert: "alert",
}


class Action(_Model):
    """One action, written as a mapping with one key: ``{lower_autonomy: {actor: a, to: 1}}``."""

    lower_autonomy: LowerAutonomy | None = None
    revoke_autonomy: RevokeAutonomy | None = None
    reroute: Reroute | None = None
    pause: PauseStarts | None = None
    alert: Alert | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_object(cls, value: Any) -> Any:
        key = _KEYS.get(type(value))
        return {key: value} if key is not None else value

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        given = [k for k in _KEYS.values() if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"an action names exactly one of {', '.join(_KEYS.values())}; got"
                f" {', '.join(given) or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in _KEYS.values() if getattr(self, k) is not None)

    @property
    def spec(self) -> AnyAction:
        found: AnyAction = getattr(self, self.kind)
        return found


class Monitor(_Model):
    """A monitor (see the module docstring)."""

    metric: Metric
    #: the evaluator whose verdicts ``pass_rate`` and ``score`` read
    evaluator: str | None = None
    scope: Scope = Field(default_factory=Scope)
    #: the last N samples (an int) or a duration ("15m")
    window: int | timedelta
    #: ``fixed``: ``below``/``above`` are the threshold; ``trailing``: they are a factor of
    #: the mean of the ``baseline_windows`` windows before
    baseline: Literal["fixed", "trailing"] = "fixed"
    baseline_windows: int = Field(default=3, ge=1)
    below: float | None = None
    above: float | None = None
    min_sample: int = Field(default=10, ge=1)
    #: how sure a firing must be (a one-sided test at 1 - confidence)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    actions: list[Action] = Field(default_factory=list)
    #: healthy windows in a row that restore what the actions changed
    restore_after: int = Field(default=3, ge=1)
    #: ``auto``: after ``restore_after`` healthy windows; ``manual``: only by a person
    restore: Literal["auto", "manual"] = "auto"

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError(f"a window of samples must hold at least 1, got {value}")
            return value
        return positive_duration(value)

    @model_validator(mode="after")
    def _consistent(self) -> Monitor:
        if (self.below is None) == (self.above is None):
            raise ValueError("a monitor needs exactly one of below or above")
        if self.metric in EVALUATION_METRICS and not self.evaluator:
            raise ValueError(f"metric {self.metric} needs the evaluator whose verdicts it reads")
        if self.metric not in EVALUATION_METRICS and (self.evaluator or self.scope.target):
            raise ValueError(
                f"metric {self.metric} reads run ends: evaluator and target do not apply"
            )
        if isinstance(self.window, int) and self.min_sample > self.window:
            raise ValueError(
                f"min_sample ({self.min_sample}) is larger than the window ({self.window})"
            )
        return self

    @property
    def threshold(self) -> float:
        return self.below if self.below is not None else self.above  # type: ignore[return-value]

    @property
    def direction(self) -> Literal["below", "above"]:
        return "below" if self.below is not None else "above"
