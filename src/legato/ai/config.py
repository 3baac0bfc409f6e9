"""AI configuration: providers, model aliases, capabilities, prices, budgets, cache.

Read from ``legato.toml`` (``App(config=...)``, else ``$LEGATO_CONFIG``, else ``./legato.toml``
when it exists) and the usual environment variables; also buildable in Python. Reading it
never touches the network. A minimal file::

    [providers.openai]                 # kind defaults to the table name
    base_url = "http://127.0.0.1:8000/v1"   # default: $OPENAI_BASE_URL, else the SDK's

    [models.fast]                      # an alias: ordered candidates and a strategy
    candidates = ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]
    strategy = "fallback"              # or "cascade" or "cheapest"

    [budgets.run]
    usd = "0.50"
    on_breach = "approve"              # or "fail" or "downgrade" (with downgrade_to)
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from legato.ai.prices import Price
from legato.ai.reasoning import Reasoning, checked
from legato.durations import positive_duration
from legato.errors import ConfigurationError
from legato.field_errors import Loc, explain

Strategy = Literal["fallback", "cascade", "cheapest"]
Breach = Literal["fail", "downgrade", "approve"]
KINDS = ("openai", "anthropic", "local", "scripted")


def _duration(value: Any) -> Any:
    return positive_duration(value) if isinstance(value, str | int | float) else value


#: a timedelta, or a duration as the policy file writes it: "30s", "1d", seconds
Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Config):
    kind: str | None = None
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = 60.0
    external: bool | None = None
    prompt_cache: bool = True


class AliasConfig(_Config):
    candidates: list[str]
    strategy: Strategy = "fallback"
    #: rounds of "your output failed validation, here is why" before giving up on a candidate
    repairs: int = Field(default=2, ge=0, le=10)
    #: the reasoning depth of calls through this alias; a list, with the cascade strategy,
    #: is tried in order on each candidate before the next (cheap -> deeper -> stronger)
    reasoning: Reasoning | list[Reasoning] | None = None

    @field_validator("reasoning", mode="before")
    @classmethod
    def _depths(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [] if value is None else [value]
        try:
            for item in values:
                checked(item)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        if isinstance(value, list) and not value:
            raise ValueError("reasoning: give at least one depth, or leave it out")
        return value

    def depths(self) -> tuple[Reasoning, ...]:
        if self.reasoning is None:
            return ()
        return tuple(self.reasoning) if isinstance(self.reasoning, list) else (self.reasoning,)

    @field_validator("candidates")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("an alias needs at least one candidate")
        for item in value:
            if ":" not in item:
                raise ValueError(f"candidate {item!r} must be 'provider:model'")
        return value


class DeploymentConfig(_Config):
    """What a deployment can do (defaults per provider kind)."""

    chat: bool | None = None
    tools: bool | None = None
    native_output: bool | None = None
    embeddings: bool | None = None
    #: the parameter that caps output; default by name (see ``openai.max_tokens_param``)
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    reasoning: bool | None = None


class Budget(_Config):
    """Limits for one scope. A call that would pass any limit is not sent.

    ``on_breach``: ``fail`` raises :class:`legato.BudgetExceeded`; ``downgrade`` switches to
    ``downgrade_to`` (a cheaper alias) and fails if that would pass too; ``approve`` parks the
    run on an approval to raise the limit for this run (at least double, enough for the call).
    Unknown cost counts as a breach of a USD limit unless ``allow_unknown_cost``.
    """

    usd: Decimal | None = None
    tokens: int | None = Field(default=None, ge=0)
    calls: int | None = Field(default=None, ge=0)
    on_breach: Breach = "fail"
    downgrade_to: str | None = None
    allow_unknown_cost: bool = False

    def model_post_init(self, context: Any, /) -> None:
        if self.on_breach == "downgrade" and not self.downgrade_to:
            raise ValueError("on_breach = 'downgrade' needs downgrade_to (an alias)")


class Budgets(_Config):
    """Budgets per run, per workflow per day and per tenant per day (UTC days)."""

    run: Budget | None = None
    workflow_day: Budget | None = None
    tenant_day: Budget | None = None

    def scopes(self) -> list[tuple[str, Budget]]:
        out = [("run", self.run), ("workflow_day", self.workflow_day)]
        out.append(("tenant_day", self.tenant_day))
        return [(name, b) for name, b in out if b is not None]


class CacheConfig(_Config):
    enabled: bool = False
    ttl: Duration = timedelta(days=1)


class BreakerConfig(_Config):
    """Per deployment, shared by every worker through the store: open after ``failures`` in
    a row, for ``cooldown``; then one probe call decides (see ``legato.ai.breakers``)."""

    failures: int = Field(default=3, ge=1)
    cooldown: Duration = timedelta(seconds=30)


class AIConfig(_Config):
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, AliasConfig] = Field(default_factory=dict)
    deployments: dict[str, DeploymentConfig] = Field(default_factory=dict)
    #: overrides of the bundled price table, by deployment id
    prices: dict[str, Price] = Field(default_factory=dict)
    budgets: Budgets = Field(default_factory=Budgets)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    circuit_breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    #: where the file came from, for error messages
    source: str | None = None


def load_config(path: str | os.PathLike[str] | None = None) -> AIConfig:
    """Read ``path``, else ``$LEGATO_CONFIG``, else ``./legato.toml`` if present, else defaults."""
    explicit = path is not None or bool(os.environ.get("LEGATO_CONFIG"))
    chosen = Path(path or os.environ.get("LEGATO_CONFIG") or "legato.toml")
    if not chosen.exists():
        if explicit:
            raise ConfigurationError(f"config file {chosen} does not exist")
        return AIConfig()
    try:
        text = chosen.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {chosen}: {exc}") from None
    return parse_config(data, source=str(chosen), lines=toml_lines(text))


def parse_config(
    data: dict[str, Any], source: str = "<config>", lines: dict[Loc, int] | None = None
) -> AIConfig:
    """Validate a config mapping; errors name the source, the line (given ``lines``, the
    map of field paths to lines of :func:`toml_lines`) and the field, one line each."""
    data = {k: v for k, v in data.items() if k != "legato"}  # [legato] is for other settings
    try:
        return AIConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigurationError(explain(exc, lines or {}, source, AIConfig)) from None


_TABLE = re.compile(r"\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(?:#.*)?")
_NAME = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""  # a bare, "quoted" or 'literal' key
_KEY = re.compile(rf"\s*({_NAME}(?:\s*\.\s*{_NAME})*)\s*=")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"([^"]*)"|'([^']*)'""")


def toml_lines(text: str) -> dict[Loc, int]:
    """The line each table and key of a TOML document is written on, by field path.

    tomllib keeps no positions, so this reads the lines the way TOML writes tables
    (``[a.b]``, ``[[a]]``) and keys (``key =``, ``a.b =``); a line inside a multi-line string
    that looks like a key can at worst point an error message at the wrong line.
    """
    lines: dict[Loc, int] = {}
    table: Loc = ()
    counts: dict[Loc, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if header := _TABLE.fullmatch(line):
            path = _key_path(header[2])
            if header[1] == "[[":
                counts[path] = counts.get(path, -1) + 1
                path = (*path, counts[path])
            table = path
            for end in range(1, len(path) + 1):
                lines.setdefault(path[:end], number)
        elif key := _KEY.match(line):
            path = (*table, *_key_path(key[1]))
            for end in range(len(table) + 1, len(path) + 1):
                lines.setdefault(path[:end], number)
    return lines


def _key_path(text: str) -> Loc:
    return tuple(m[1] if m[1] is not None else m[2] if m[2] is not None else m[0]
                 for m in _PART.finditer(text))  # fmt: skip
