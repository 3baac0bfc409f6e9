"""The development guard: workflow code that reads the clock, draws random numbers or ids, or
sleeps on the wall clock is caught when the workflow is registered, with the ``ctx`` call to
use instead.

Workflow code runs again on every replay, so such a call returns something new each time and
the run takes another path than the one its journal recorded (the
:class:`~legato.NondeterminismError` it ends in names no cause). Steps may do all of this: their
results are journaled.

The check reads the workflow function's bytecode (and that of functions defined inside it) once,
at ``@app.workflow``: a global name followed by attribute loads (``time.time``,
``datetime.datetime.now``, ``random.choice``, a ``uuid4`` imported by name) is resolved in the
function's globals and compared with the calls below. Nothing is added to the code that runs,
so it costs nothing in workflows or steps. It is a light guard, not a sandbox: a call made by a
helper the workflow calls, or through another name, is not seen. ``LEGATO_DETERMINISM_GUARD``
says what to do: ``raise`` (the default), ``warn``, or ``off``.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime
import dis
import os
import random
import time
import types
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from legato.errors import ConfigurationError, NondeterminismError, NondeterminismWarning

ENV = "LEGATO_DETERMINISM_GUARD"
MODES = ("raise", "warn", "off")

_NOW = "ctx.now() (recorded in the journal)"
_FORBIDDEN: list[tuple[Any, str, str]] = [
    (time.time, "time.time", _NOW),
    (time.time_ns, "time.time_ns", _NOW),
    (datetime.datetime.now, "datetime.now", _NOW),
    (datetime.datetime.utcnow, "datetime.utcnow", _NOW),
    (datetime.datetime.today, "datetime.today", _NOW),
    (datetime.date.today, "date.today", _NOW),
    (uuid.uuid4, "uuid.uuid4", "ctx.uuid() (recorded in the journal)"),
    (uuid.uuid1, "uuid.uuid1", "ctx.uuid() (recorded in the journal)"),
    (asyncio.sleep, "asyncio.sleep", "ctx.sleep() (a durable timer)"),
]
_RANDOM = "ctx.random() (recorded in the journal)"
_CHAINING = (types.ModuleType, type)  # attributes are followed only on these: no side effects
_FUNCTIONS = (types.BuiltinFunctionType, types.FunctionType, types.MethodType)


def mode() -> str:
    """What the guard does, from ``LEGATO_DETERMINISM_GUARD`` (default ``raise``)."""
    value = os.environ.get(ENV, "raise").strip().lower() or "raise"
    if value not in MODES:
        raise ConfigurationError(f"{ENV} must be one of {', '.join(MODES)}, got {value!r}")
    return value


def check_workflow(name: str, fn: Callable[..., Any]) -> None:
    """Raise or warn (per :func:`mode`) when ``fn``'s own code calls one of the calls above."""
    how = mode()
    if how == "off":
        return
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        return
    found = list(_calls(code, getattr(fn, "__globals__", {})))
    if not found:
        return
    shown, alternative, line = found[0]
    more = f" (and {len(found) - 1} more such call(s))" if len(found) > 1 else ""
    message = (
        f"workflow {name!r} calls {shown}() in its own code ({code.co_filename}:{line}){more}."
        " Workflow code runs again on every replay, where this returns something else and the"
        f" run leaves its recorded path: use {alternative}, or call it inside a step."
        f" {ENV}=warn (or off) allows it"
    )
    if how == "warn":
        warnings.warn(message, NondeterminismWarning, stacklevel=4)
    else:
        raise NondeterminismError(message)


def _calls(code: types.CodeType, scope: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(name, alternative, line) of each forbidden function ``code`` loads."""
    target: Any = None
    line = code.co_firstlineno
    for ins in dis.get_instructions(code):
        if ins.positions is not None and ins.positions.lineno is not None:
            line = ins.positions.lineno
        if ins.opname == "LOAD_GLOBAL":
            name = str(ins.argval)
            target = scope[name] if name in scope else getattr(builtins, name, None)
        elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and isinstance(target, _CHAINING):
            target = getattr(target, str(ins.argval), None)
        else:
            target = None
            continue
        hit = _forbidden(target)
        if hit is not None:
            yield hit[0], hit[1], line
            target = None
    for const in code.co_consts:  # functions and lambdas defined inside the workflow
        if isinstance(const, types.CodeType):
            yield from _calls(const, scope)


def _forbidden(target: Any) -> tuple[str, str] | None:
    if not isinstance(target, _FUNCTIONS):
        return None
    owner = getattr(target, "__self__", None)
    if owner is getattr(random, "_inst", None) and owner is not None:
        return f"random.{getattr(target, '__name__', '?')}", _RANDOM
    for known, shown, alternative in _FORBIDDEN:
        if target == known:  # == : bound class methods are new objects on each access
            return shown, alternative
    return None


__all__ = ["ENV", "MODES", "check_workflow", "mode"]
