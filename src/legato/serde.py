"""JSON serialization of workflow inputs, step results and events.

legato stores JSON only: primitives, lists, dicts, pydantic models and dataclasses (and what
pydantic serializes: datetimes, UUIDs, decimals, enums). Values are read back through the type
annotation of the function that produced or receives them, so a step annotated ``-> Profile``
returns a ``Profile`` on replay. Pickle is never used: the database is not trusted to run code.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from legato.errors import SerializationError

# Values of these exact types are identical after a JSON round trip, so the hot path skips it.
_EXACT = (type(None), bool, int, float, str)
#: The default largest JSON value (bytes) stored for an input, result or event payload.
DEFAULT_PAYLOAD_LIMIT = 1 << 20


class PayloadTooLarge(SerializationError):
    """A value is larger than the app's ``payload_limit``; nothing was written."""

    code = "payload_too_large"


def dumps(value: Any, *, what: str, limit: int | None = None) -> str:
    """Serialize ``value`` to JSON text; ``what`` names it in errors ("the result of step ...").

    With ``limit`` (bytes), a larger value raises :class:`PayloadTooLarge` before anything is
    written: journals hold decisions and small results, not documents (store those elsewhere
    and journal a reference).
    """
    if type(value) in _EXACT:
        text = json.dumps(value)
    else:
        try:
            text = pydantic_core.to_json(value).decode()
        except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as exc:
            raise SerializationError(
                f"{what} cannot be stored as JSON: {exc}. legato stores JSON only: use"
                " primitives, lists, dicts, pydantic models or dataclasses"
            ) from None
    if limit is not None and len(text) * 4 > limit:  # only then count the UTF-8 bytes
        size = len(text.encode())
        if size > limit:
            raise PayloadTooLarge(
                f"{what} is {_size(size)}, over the payload limit of {_size(limit)}; store large"
                " data outside the journal and pass a reference (or raise App(payload_limit=...))"
            )
    return text


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.1f} KiB"


def loads(text: str | None) -> Any:
    """Parse JSON text without a target type."""
    return None if text is None else json.loads(text)


@lru_cache(maxsize=4096)
def adapter(annotation: Any) -> TypeAdapter[Any]:
    """A cached pydantic TypeAdapter (building one costs far more than using it)."""
    return TypeAdapter(annotation)


_adapter = adapter


def decode(text: str | None, annotation: Any, *, what: str) -> Any:
    """Parse JSON text into ``annotation`` (``Any`` or ``None`` annotation: plain JSON)."""
    if text is None:
        return None
    if annotation is Any or annotation is inspect.Parameter.empty:
        return json.loads(text)
    try:
        return _adapter(annotation).validate_json(text)
    except ValidationError as exc:
        raise SerializationError(f"{what} does not match its type {annotation!r}: {exc}") from None
    except TypeError:  # an annotation pydantic cannot build a schema for: keep plain JSON
        return json.loads(text)


def coerce(value: Any, annotation: Any, *, what: str) -> Any:
    """Validate an already-parsed JSON value into ``annotation``."""
    if annotation is Any or annotation is inspect.Parameter.empty or value is None:
        return value
    try:
        return _adapter(annotation).validate_python(value)
    except ValidationError as exc:
        raise SerializationError(f"{what} does not match its type {annotation!r}: {exc}") from None
    except TypeError:
        return value


def roundtrip(value: Any, text: str, annotation: Any, *, what: str) -> Any:
    """What replay would return for ``value``: the first execution sees the same thing."""
    if type(value) in _EXACT:
        return value
    return decode(text, annotation, what=what)


def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The resolved annotations of ``fn``; unresolvable ones count as ``Any``."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # forward references that cannot be resolved: fall back to plain JSON
        hints = {}
    return hints


def error_json(error: BaseException, *, with_traceback: bool = True) -> dict[str, Any]:
    """The stored form of an error: its type name, message and (optionally) traceback."""
    import traceback as tb

    try:
        message = str(error)
    except Exception:  # an error whose __str__ fails must still be stored
        message = f"<unprintable {type(error).__name__}>"
    out: dict[str, Any] = {"type": type(error).__name__, "message": message}
    code = getattr(error, "code", None)
    if isinstance(code, str):
        out["code"] = code
    details = getattr(error, "details", None)
    if isinstance(details, dict) and details:
        try:  # only what JSON can hold crosses the journal
            json.dumps(details)
        except (TypeError, ValueError):
            pass
        else:
            out["details"] = details
    if with_traceback:
        try:
            out["traceback"] = "".join(tb.format_exception(error))
        except Exception:
            out["traceback"] = None
    return out
