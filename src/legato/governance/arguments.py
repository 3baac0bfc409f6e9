"""Tool arguments: the JSON Schema agents see, and validation of what they (or approvers) send.

Both come from the tool function's typed parameters, through a pydantic model built once per
function. Parameters are stored under private field names with the parameter name as alias,
so a parameter called ``json`` or ``copy`` cannot clash with pydantic's own attributes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from legato.errors import ConfigurationError, LegatoError
from legato.serde import type_hints

_SKIPPED_NAMES = ("self", "cls", "ctx")


class InvalidArguments(LegatoError):
    """Arguments that do not match a tool's parameters; nothing ran."""

    code = "invalid_arguments"

    def __init__(self, tool: str, problems: list[tuple[str, str]]) -> None:
        listed = "; ".join(f"{field}: {message}" for field, message in problems)
        super().__init__(f"invalid arguments for tool {tool!r}: {listed}")
        self.tool = tool
        #: (field path, message) for each problem, such as ("order.amount", "...")
        self.problems = problems


def json_schema_for(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema (an object) of ``fn``'s parameters, skipping ``self`` and ``ctx``."""
    return _model_for(fn).model_json_schema()


def validate_args(
    fn: Callable[..., Any], args: Mapping[str, Any], *, tool: str | None = None
) -> dict[str, Any]:
    """``args`` validated and coerced to ``fn``'s parameter types, defaults filled in.

    Raises :class:`InvalidArguments` naming the tool (``tool``, else the function's name) and
    each bad field. Defaults are filled so that policy rules see the arguments the tool will
    actually run with.
    """
    model = _model_for(fn)
    tool = tool or _name(fn)
    if not isinstance(args, Mapping):
        raise InvalidArguments(tool, [("(arguments)", f"expected a mapping, got {args!r}")])
    try:
        validated = model.model_validate(dict(args))
    except ValidationError as exc:
        raise InvalidArguments(tool, [_problem(detail) for detail in exc.errors()]) from None
    out = {field.alias or key: getattr(validated, key) for key, field in model.model_fields.items()}
    if validated.model_extra:  # a tool taking **kwargs
        out.update(validated.model_extra)
    return out


def _problem(detail: Any) -> tuple[str, str]:
    path = ".".join(str(seg) for seg in detail["loc"]) or "(arguments)"
    if detail["type"] == "extra_forbidden":
        return path, "unknown argument"
    return path, detail["msg"]


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", None) or repr(fn))


@lru_cache(maxsize=1024)
def _model_for(fn: Callable[..., Any]) -> type[BaseModel]:
    hints = type_hints(fn)
    fields: dict[str, Any] = {}
    extra: Literal["forbid", "allow"] = "forbid"
    for i, param in enumerate(inspect.signature(fn).parameters.values()):
        annotation = hints.get(param.name, Any)
        if param.name in _SKIPPED_NAMES or _is_context(annotation):
            continue
        if param.kind is param.VAR_KEYWORD:
            extra = "allow"
            continue
        if param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
            raise ConfigurationError(
                f"tool {_name(fn)!r}: parameter {param.name!r} cannot be passed by name;"
                " tools take named arguments only"
            )
        default = ... if param.default is param.empty else param.default
        fields[f"p{i}"] = (annotation, Field(default, alias=param.name))
    config = ConfigDict(extra=extra, populate_by_name=False)
    return create_model(getattr(fn, "__name__", "arguments"), __config__=config, **fields)


def _is_context(annotation: Any) -> bool:
    # a marker, not an import: governance sits below the engine and knows nothing of Context
    return isinstance(annotation, type) and getattr(annotation, "__legato_context__", False) is True
