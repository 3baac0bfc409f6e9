"""Continuous evaluation: evaluators, what runs measure, and monitors that act on it.

Pure: no engine, no SQL. The engine runs evaluators and measures runs with these; the
operations layer evaluates monitors' windows and applies their actions.
"""

from legato.evals.evaluators import (
    EvaluationFailed,
    EvaluatorDef,
    Target,
    Verdict,
    rules,
    schema_valid,
)

__all__ = ["EvaluationFailed", "EvaluatorDef", "Target", "Verdict", "rules", "schema_valid"]
