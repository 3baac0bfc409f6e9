"""Golden journals: runs recorded by earlier versions of legato must replay on this one.

Each file in tests/histories/ holds a run parked mid-way (its run row, journal and events).
The test loads it into a fresh database, lets the current code resume it, and checks that it
finishes without re-executing a recorded step. Regenerate only for a deliberate format change
(``python -m tests.test_histories``), and say so in the commit.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

import legato
from legato.testing import TimeSkippingClock
from tests.conftest import sql
from tests.histories import reference

HISTORIES = Path(__file__).parent / "histories"
START = 1.8e9
TABLES = {"runs": "run_id", "entries": "run_id", "events": "run_id"}


def _dump(db: Path, run_ids: list[str]) -> dict[str, list[dict[str, object]]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    out: dict[str, list[dict[str, object]]] = {}
    marks = ",".join("?" * len(run_ids))
    for table, key in TABLES.items():
        rows = conn.execute(f"SELECT * FROM {table} WHERE {key} IN ({marks})", run_ids)
        out[table] = [dict(r) for r in rows]
    conn.close()
    return out


def _load(db_url: str, data: dict[str, list[dict[str, object]]]) -> None:
    for table, rows in data.items():
        for recorded in rows:
            # let the database number events: a PostgreSQL sequence is not moved by explicit ids
            row = {k: v for k, v in recorded.items() if not (table == "events" and k == "id")}
            cols = ",".join(row)
            marks = ",".join("?" * len(row))
            sql(db_url, f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))


def record(folder: Path) -> Path:
    """Record the reference run parked on its event, as a new golden file."""
    app = legato.App("rec", f"sqlite:///{folder / 'rec.db'}", clock=TimeSkippingClock(START))
    reference.register(app)
    app.start("reference", "ada,grace,linus", run_id="golden-1")
    app.run_until_idle(skip=timedelta(days=2, hours=1))  # through the sleep, not the timeout
    assert app.handle("golden-1").status() == "waiting"
    app.close()
    target = HISTORIES / f"reference_v{legato.__version__.replace('.', '_')}.json"
    data = _dump(folder / "rec.db", ["golden-1", "golden-1:4"])
    target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return target


def record_branches(folder: Path, name: str) -> Path:
    """Record the branches run parked on its events, one of them answered."""
    app = legato.App("rec", f"sqlite:///{folder / 'rec.db'}", clock=TimeSkippingClock(START))
    reference.register_branches(app)
    app.start("branches", "ada,grace,linus", run_id="golden-b")
    app.run_until_idle(skip=timedelta(0))
    app.send_event("golden-b", "reply:grace", "yes")
    app.run_until_idle(skip=timedelta(0))
    assert app.handle("golden-b").status() == "waiting"
    app.close()
    target = HISTORIES / f"branches_{name}.json"
    target.write_text(json.dumps(_dump(folder / "rec.db", ["golden-b"]), indent=1) + "\n")
    return target


@pytest.mark.parametrize(
    "history", sorted(HISTORIES.glob("reference_*.json")), ids=lambda p: p.stem
)
def test_recorded_history_replays(
    history: Path, tmp_path: Path, make_app: Callable[..., legato.App]
) -> None:
    app = make_app(clock=TimeSkippingClock(START + 3 * 86400))
    reference.register(app)
    with pytest.raises(legato.UnknownRun):  # opens (and so creates) the database
        app.handle("nothing").status()
    _load(app.database_url, json.loads(history.read_text()))

    reference.executed.clear()
    run = app.handle("golden-1")
    assert run.status() == "waiting"
    app.send_event("golden-1", "reply", {"interested": True})
    app.run_until_idle()
    assert run.result() == {
        "best": "grace",
        "vetted": True,
        "reply": {"interested": True},
        "days": 3,
        "token_is_uuid": True,
    }
    assert reference.executed == []  # every recorded step replayed from the journal


@pytest.mark.parametrize("history", sorted(HISTORIES.glob("branches_*.json")), ids=lambda p: p.stem)
def test_recorded_branches_replay(
    history: Path, tmp_path: Path, make_app: Callable[..., legato.App]
) -> None:
    """Runs with concurrent branches recorded by earlier journal formats (format 2: branches
    matched in order; format 3: by position) resume where they were."""
    app = make_app(clock=TimeSkippingClock(START + 86400))
    reference.register_branches(app)
    with pytest.raises(legato.UnknownRun):  # opens (and so creates) the database
        app.handle("nothing").status()
    _load(app.database_url, json.loads(history.read_text()))

    reference.executed.clear()
    run = app.handle("golden-b")
    assert run.status() == "waiting"
    app.send_event("golden-b", "reply:linus", "later")
    app.send_event("golden-b", "reply:ada", "no")
    app.run_until_idle(skip=timedelta(0))
    assert run.result() == [
        {"name": "ada", "rating": 3, "reply": "no"},
        {"name": "grace", "rating": 5, "reply": "yes"},
        {"name": "linus", "rating": 5, "reply": "later"},
    ]
    assert reference.executed == []  # every recorded step replayed from the journal


def test_a_run_of_an_older_journal_format_can_be_forked(
    make_app: Callable[..., legato.App],
) -> None:
    """Format 2 entries have no position: a fork keeps a prefix of each branch by entry number
    and the fork replays in its source's format."""
    app = make_app(clock=TimeSkippingClock(START + 86400))
    reference.register_branches(app)
    with pytest.raises(legato.UnknownRun):  # opens (and so creates) the database
        app.handle("nothing").status()
    _load(app.database_url, json.loads((HISTORIES / "branches_format2.json").read_text()))

    reference.executed.clear()
    fork = app.fork("golden-b", "3")  # linus's rating: split and the two before it are kept
    assert [e.entry for e in fork.timeline().entries] == ["0", "1", "2"]
    assert fork.describe().journal_format == 2
    app.run_until_idle(skip=timedelta(0))
    for name, reply in (("ada", "no"), ("grace", "yes"), ("linus", "later")):
        app.send_event(fork.run_id, f"reply:{name}", reply)
    app.run_until_idle(skip=timedelta(0))
    assert [r["reply"] for r in fork.result()] == ["no", "yes", "later"]
    assert reference.executed == ["rate:linus"]


if __name__ == "__main__":
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        if sys.argv[1:2] == ["branches"]:  # python -m tests.test_histories branches NAME
            print(f"recorded {record_branches(Path(tmp), sys.argv[2])}")
        else:
            print(f"recorded {record(Path(tmp))}")
