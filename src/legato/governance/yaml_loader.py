"""Policies from YAML: safe parsing, and errors that name the file, the line and the field.

The text is composed into a node tree once (PyYAML's SafeLoader: plain data, never Python
objects; booleans as in YAML 1.2, so ``yes``, ``no``, ``on`` and ``off`` stay text), every
field path is mapped to the line it is written on, and pydantic's error locations are
translated back through that map.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from legato.errors import PolicyError
from legato.field_errors import Loc, explain, format_loc

M = TypeVar("M", bound=BaseModel)

#: Most nodes a policy file may expand to; aliases could otherwise blow up exponentially.
MAX_NODES = 50_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_TAG = "tag:yaml.org,2002:bool"


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true and false, so ``value: NO`` stays text."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_policy(cls: type[M], text: str, source: str) -> M:
    """Validate YAML ``text`` into ``cls``; every problem raises :class:`PolicyError`."""
    data, lines = _compose(text, source)
    if data is None:  # an empty file: the defaults, the same as no policy
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            f"{source}, line 1: a policy must be a mapping with keys such as "
            f"{', '.join(cls.model_fields)}, not {type(data).__name__}"
        )
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(explain(exc, lines, source, cls)) from None


def _compose(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Loc, int] = {}
        _index(loader, node, (), lines, [MAX_NODES], source)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = ", ".join(p for p in (exc.context, exc.problem) if p)
        raise PolicyError(f"{source}{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _index(
    loader: _Loader,
    node: yaml.Node,
    loc: Loc,
    lines: dict[Loc, int],
    budget: list[int],
    source: str,
) -> None:
    """Record the line of every mapping key and sequence item; refuse duplicate keys."""
    budget[0] -= 1
    if budget[0] < 0:
        raise PolicyError(f"{source}: the policy expands to more than {MAX_NODES} values")
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.setdefault((*loc, i), item.start_mark.line + 1)
            _index(loader, item, (*loc, i), lines, budget, source)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise PolicyError(
                    f"{source}, line {line}: {format_loc((*loc, key))}: duplicate key"
                    f" (first written on line {seen[key]})"
                )
            seen[key] = line
            lines.setdefault((*loc, key), line)
            _index(loader, value_node, (*loc, key), lines, budget, source)
