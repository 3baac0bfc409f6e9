"""Dependencies point one way: no module of legato imports, even inside a function, a module
that imports it back (directly or through others). `make lint` checks the direction of the
layers with import-linter (the contract in pyproject.toml); this test forbids any cycle.

Imports under ``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest


def _cycles(graph: grimp.ImportGraph) -> list[str]:
    """Every import ``a -> b`` such that ``b`` leads back to ``a``, with the way back."""
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                line = graph.get_import_details(importer=importer, imported=imported)[0]
                found.append(
                    f"{importer}:{line['line_number']} imports {imported}, and back:"
                    f" {' -> '.join(back)}"
                )
    return found


def test_no_import_cycles_in_legato() -> None:
    graph = grimp.build_graph(
        "legato", include_external_packages=False, exclude_type_checking_imports=True
    )
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_check_sees_a_cycle_made_by_a_function_level_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def helper():\n    from cyclic import high\n")
    (package / "high.py").write_text("from cyclic import low\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic", include_external_packages=False, cache_dir=None)
    assert _cycles(graph) == [
        "cyclic.high:1 imports cyclic.low, and back: cyclic.low -> cyclic.high",
        "cyclic.low:2 imports cyclic.high, and back: cyclic.high -> cyclic.low",
    ]
