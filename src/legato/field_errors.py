"""Validation errors of configuration files, one line per problem, in the file's words.

pydantic says *what* is wrong at which field path; the file's own map of field paths to lines
(built by the YAML or TOML reader) says *where*. The result reads
``policy.yaml, line 7: tools.refund.rules[0].effect: 'block' is not one of allow, deny,
require_approval`` and, for a misspelt field, adds "did you mean".
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from legato.errors import did_you_mean

Loc = tuple[str | int, ...]

#: Most errors listed in one message.
MAX_ERRORS = 20
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def explain(error: ValidationError, lines: dict[Loc, int], source: str, root: type[Any]) -> str:
    """One line per problem, in file order: ``file, line N: field.path: what is wrong``."""
    found = []
    for detail in error.errors():
        loc = _file_loc(detail["loc"])
        found.append((_line_of(loc, lines), format_loc(loc), _message(detail, loc, root)))
    found.sort(key=lambda item: item[0])
    out = [f"{source}, line {line}: {path}: {message}" for line, path, message in found]
    if len(out) > MAX_ERRORS:
        out = [*out[:MAX_ERRORS], f"... and {len(out) - MAX_ERRORS} more"]
    return "\n".join(out)


def _file_loc(loc: tuple[str | int, ...]) -> Loc:
    """Drop pydantic's markers that are not in the file: dict-key markers and union tags."""
    out: list[str | int] = []
    for seg in loc:
        if seg == "[key]":
            continue
        if seg == "conditions" and out[-3:-2] == ["rules"] and out[-1:] == ["when"]:
            continue  # the tag of Rule.when's union of conditions and callables
        out.append(seg)
    return tuple(out)


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def format_loc(loc: Loc) -> str:
    """``tools.send_email.rules[0].when[1].op``; keys that are not plain names are quoted."""
    text = ""
    for seg in loc:
        if isinstance(seg, int):
            text += f"[{seg}]"
        elif _PLAIN_KEY.fullmatch(seg):
            text += f".{seg}" if text else seg
        else:
            text += f"[{seg!r}]"
    return text or "(top level)"


def _message(detail: ErrorDetails, loc: Loc, root: type[Any]) -> str:
    kind, ctx, value = detail["type"], detail.get("ctx") or {}, detail["input"]
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{value!r} is not one of {', '.join(expected)}"
    if kind == "extra_forbidden":
        return _unknown_field(loc, root)
    if kind == "missing":
        return "required field missing"
    if kind == "model_type" and (model := _model_at(root, loc)) is not None:
        got = f"{value!r}" if isinstance(value, str | int | float | bool) else _kind_of(value)
        return f"should be a mapping with keys such as {', '.join(model.model_fields)}, got {got}"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    message = detail["msg"].replace("Input should be", "should be", 1)
    if isinstance(value, str | int | float | bool) or value is None:
        message += f", got {value!r}"
    return message


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _unknown_field(loc: Loc, root: type[Any]) -> str:
    name = loc[-1] if loc else ""
    message = f"unknown field {name!r}"
    model = _model_at(root, loc[:-1])
    if model is None:
        return message
    fields = list(model.model_fields)
    hint = did_you_mean(str(name), fields)
    return f"{message}{hint}; expected one of {', '.join(fields)}"


def _model_at(root: type[Any], loc: Loc) -> type[BaseModel] | None:
    """The model class that the value at ``loc`` is validated as, if any."""
    current: Any = root
    for seg in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(seg))
            current = field.annotation if field is not None else None
        elif get_origin(current) is list and isinstance(seg, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and optional/callable alternatives down to the data type."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or origin is types.UnionType:
            tp = next(iter(_data_members(get_args(tp))), None)
        else:
            return tp


def _data_members(members: tuple[Any, ...]) -> Iterator[Any]:
    for member in members:
        plain = get_args(member)[0] if get_origin(member) is Annotated else member
        if plain is not type(None) and get_origin(plain) is not Callable:
            yield plain
