"""Operator controls through the Python API: fork, retry of a cancelled run, a run's own status,
the paused status, and the development guard against nondeterministic workflow code."""

from __future__ import annotations

import asyncio
import json
import random
import warnings
from collections import Counter
from collections.abc import Callable

import pytest

import legato
from legato.store.base import AuditRecord, RunRecord
from tests.conftest import sql


def _pipeline(app: legato.App, calls: Counter[str]) -> Callable[..., object]:
    @app.step
    def fetch(name: str) -> str:
        calls[f"fetch:{name}"] += 1
        return f"profile of {name}"

    @app.step
    def score(profile: str, bonus: int) -> int:
        calls[f"score:{profile}"] += 1
        return len(profile) + bonus

    @app.workflow()
    async def hire(ctx: legato.Context, names: list[str], bonus: int = 0) -> dict[str, int]:
        out = {}
        for i, name in enumerate(names):
            ctx.set_status({"scored": i, "of": len(names)})
            out[name] = await score(await fetch(name), bonus)
        ctx.set_status({"scored": len(names), "of": len(names)})
        return out

    return hire


def test_a_fork_replays_the_journal_before_its_entry_and_runs_the_rest_afresh(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = make_app()
    calls: Counter[str] = Counter()
    hire = _pipeline(app, calls)
    app.run(hire, ["ann", "bob"], run_id="orig")
    keys = [e.entry for e in app.handle("orig").timeline().entries]
    # status 0, fetch 1, score 2, status 3, fetch 4, score 5, status 6
    assert keys == ["0", "1", "2", "3", "4", "5", "6"]

    fork = app.fork("orig", "4", kwargs={"names": ["ann", "bob"], "bonus": 100}, by="ann")
    app.run_until_idle()
    assert fork.result() == {"ann": 14, "bob": 114}  # ann's score replayed, bob's redone
    assert calls == Counter({
        "fetch:ann": 1, "score:profile of ann": 1, "fetch:bob": 2, "score:profile of bob": 2,
    })  # fmt: skip
    run = fork.describe()
    assert (run.forked_from, run.forked_entry) == ("orig", "4")
    assert json.loads(run.input)["kwargs"]["bonus"] == 100
    [audit] = [r for r in app._sync(_audit(app)) if r.kind == "run.forked"]
    assert (audit.actor, audit.run_id, audit.subject) == ("ann", fork.run_id, "orig")
    assert json.loads(audit.detail) == {
        "from": "orig", "entry": "4", "kept": 4, "input_changed": True
    }  # fmt: skip
    # the original is untouched; the fork's copied entries are its own rows
    assert app.handle("orig").result() == {"ann": 14, "bob": 14}
    assert len(sql(db_url, "SELECT seq FROM entries WHERE run_id = ?", (fork.run_id,))) == 7


def test_a_fork_is_idempotent_on_its_id_and_refuses_unknown_entries(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    hire = _pipeline(app, Counter())
    app.run(hire, ["ann"], run_id="orig")
    first = app.fork("orig", "1", new_run_id="orig-b")
    again = app.fork("orig", "1", new_run_id="orig-b")
    assert first.run_id == again.run_id == "orig-b"
    with pytest.raises(legato.RunConflict, match="taken by another run"):
        app.fork("orig", "2", new_run_id="orig-b")
    with pytest.raises(legato.ConfigurationError, match=r"no entry '9'; its entries are 0, 1"):
        app.fork("orig", "9")
    with pytest.raises(legato.UnknownRun):
        app.fork("ghost", "0")
    with pytest.raises(legato.ConfigurationError, match="bad arguments"):
        app.fork("orig", "1", kwargs={"nobody": 1})


def test_a_fork_of_concurrent_branches_keeps_what_started_before_its_entry(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    calls: Counter[str] = Counter()

    @app.step
    async def part(name: str, i: int) -> str:
        calls[f"{name}{i}"] += 1
        await asyncio.sleep(0.3 if name == "a" else 0)  # b's steps start before a's second
        return f"{name}{i}"

    @app.workflow()
    async def fan(ctx: legato.Context) -> list[str]:
        async def lane(name: str) -> str:
            return await part(name, 0) + await part(name, 1)

        both = await asyncio.gather(lane("a"), lane("b"))
        return [*both, await part("end", 0)]

    app.run(fan, run_id="fan")
    timeline = app.handle("fan").timeline().entries
    order = [e.entry for e in sorted(timeline, key=lambda e: e.seq)]
    assert order == ["0.0", "1.0", "1.1", "0.1", "0"]  # lane b's second step started first
    fork = app.fork("fan", "1.1")
    assert [e.entry for e in fork.timeline().entries] == ["0.0", "1.0"]
    app.run_until_idle()
    assert fork.result() == ["a0a1", "b0b1", "end0"]
    # what started before 1.1 replayed; 1.1, lane a's later step and the rest ran again
    assert calls == Counter({"a0": 1, "b0": 1, "b1": 2, "a1": 2, "end0": 2})


def test_a_fork_asks_its_own_approval_and_starts_its_own_child(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.workflow()
    async def sub(ctx: legato.Context, n: int) -> int:
        return n * 2

    @app.workflow()
    async def parent(ctx: legato.Context) -> int:
        decision = await ctx.approval("go", data={"n": 1})
        doubled = await ctx.child(sub, decision.data["n"])
        return doubled + (await ctx.child(sub, 10))

    handle = app.start(parent, run_id="p")
    app.run_until_idle()
    [asked] = app.approvals.list(run_id="p")
    app.approvals.decide(asked.id, True, by="ann")
    app.run_until_idle()
    assert handle.result() == 22
    fork = app.fork("p", "1")  # the first child runs again: its own child run, same decision
    app.run_until_idle()
    assert fork.result() == 22
    children = {e.summary.split()[1] for e in fork.timeline().entries if e.kind == "child"}
    assert children == {f"{fork.run_id}~1", f"{fork.run_id}~2"}
    fork_from_approval = app.fork("p", "0")  # the approval itself is asked again
    app.run_until_idle()
    assert fork_from_approval.status() == "waiting"
    assert [a.run_id for a in app.approvals.list()] == [fork_from_approval.run_id]


def test_retry_continues_a_cancelled_run_where_it_stopped(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    calls: Counter[str] = Counter()

    @app.step
    def work(i: int) -> int:
        calls[str(i)] += 1
        return i

    @app.workflow()
    async def wf(ctx: legato.Context) -> int:
        first = await work(1)
        decision = await ctx.approval("go", data=first)
        return first + await work(decision.data + 1)

    handle = app.start(wf, run_id="c")
    app.run_until_idle()
    app.cancel("c")
    assert handle.status() == "cancelled"
    [cancelled] = app.approvals.list(run_id="c", status="cancelled")
    app.retry("c")
    app.run_until_idle()
    assert handle.status() == "waiting"
    [asked] = app.approvals.list(run_id="c")
    assert asked.id == cancelled.id and asked.status == "pending"
    app.approvals.decide(asked.id, True, by="ann")
    app.run_until_idle()
    assert handle.result() == 3 and calls == Counter({"1": 1, "2": 1})
    with pytest.raises(legato.RunConflict, match="only failed or cancelled runs"):
        app.retry("c")


def test_set_status_is_shown_and_is_not_rewritten_by_replay(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        ctx.set_status({"phase": "waiting for reply"})
        await ctx.wait_for_event("reply")
        ctx.set_status("done")

    handle = app.start(wf, run_id="s")
    assert handle.custom_status() is None
    app.run_until_idle()
    assert handle.custom_status() == {"phase": "waiting for reply"}
    assert app.handle("s").describe().custom_status == '{"phase":"waiting for reply"}'
    app.send_event("s", "reply")
    app.run_until_idle()  # replays the first set_status: one status entry for it still
    assert handle.custom_status() == "done"
    rows = sql(db_url, "SELECT output FROM entries WHERE run_id = 's' AND kind = 'status'")
    assert sorted(r[0] for r in rows) == ['"done"', '{"phase":"waiting for reply"}']


def test_a_status_too_large_fails_the_run_with_a_clear_error(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        ctx.set_status("x" * 5000)

    handle = app.start(wf)
    app.run_until_idle()
    with pytest.raises(legato.RunFailed, match="over the limit of 4096"):
        handle.result()


def test_runs_of_a_paused_workflow_show_paused(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> int:
        return 1

    app.pause("wf", by="ann", reason="incident")
    handle = app.start(wf, run_id="p1")
    app.run_until_idle()
    assert handle.status() == "paused"
    assert [r.run_id for r in app._sync(_listed(app, "paused"))] == ["p1"]
    assert app._sync(_listed(app, "pending")) == []
    app.resume("wf", by="ann")
    assert handle.status() == "pending"
    app.run_until_idle()
    assert handle.result() == 1


async def _listed(app: legato.App, status: str) -> list[RunRecord]:
    return await (await app.ops_async()).runs.list(status=status)


async def _audit(app: legato.App) -> list[AuditRecord]:
    return await (await app.ops_async()).audit.list()


def test_the_guard_names_the_ctx_alternative_and_can_warn_or_be_off(
    make_app: Callable[..., legato.App], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()

    async def rolls(ctx: legato.Context) -> float:
        return random.random()

    with pytest.raises(legato.NondeterminismError, match=r"random\.random\(\).*ctx\.random\(\)"):
        app.workflow(rolls)
    monkeypatch.setenv("LEGATO_DETERMINISM_GUARD", "warn")
    with pytest.warns(legato.NondeterminismWarning, match="test_lifecycle.py"):
        app.workflow(rolls)
    monkeypatch.setenv("LEGATO_DETERMINISM_GUARD", "off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.workflow(name="rolls2")(rolls)
    monkeypatch.setenv("LEGATO_DETERMINISM_GUARD", "loud")
    with pytest.raises(legato.ConfigurationError, match="raise, warn, off"):
        app.workflow(name="rolls3")(rolls)


def test_a_run_cancelled_and_retried_mid_step_is_executed_once_more_not_twice(
    make_app: Callable[..., legato.App],
) -> None:
    """The worker still holds the cancelled run's execution (it notices the cancel only at its
    next write) when it claims the retried run again: the stale execution must stop."""
    app = make_app()
    calls: Counter[str] = Counter()

    async def scenario() -> None:
        started, release = asyncio.Event(), asyncio.Event()

        @app.step
        async def slow() -> str:
            calls["started"] += 1
            started.set()
            await release.wait()
            calls["finished"] += 1
            return "done"

        @app.workflow()
        async def wf(ctx: legato.Context) -> str:
            return await slow()

        stop = asyncio.Event()
        worker = asyncio.create_task(app.worker_async(stop=stop, poll_interval=0.01))
        handle = await app.start_async(wf, run_id="again")
        await asyncio.wait_for(started.wait(), 30)
        await app.cancel_async("again")
        await app.retry_async("again")
        while calls["started"] < 2:  # claimed again by this worker, the step started anew
            await asyncio.sleep(0.01)
        release.set()
        assert await handle.result_async(timeout=30) == "done"
        stop.set()
        await worker
        await app.close_async()  # this loop's connection

    asyncio.run(scenario())
    assert calls == Counter({"started": 2, "finished": 1})


def test_the_nondeterminism_error_names_the_likely_causes(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    coin = ["heads"]  # stands for randomness in a helper, which the guard cannot see

    @app.step
    def heads() -> str:
        return "h"

    @app.step
    def tails() -> str:
        return "t"

    @app.workflow()
    async def toss(ctx: legato.Context) -> str:
        side = await (heads() if coin[0] == "heads" else tails())
        await ctx.wait_for_event("again")
        return side

    handle = app.start(toss)
    app.run_until_idle()
    coin[0] = "tails"
    app.send_event(handle.run_id, "again")
    app.run_until_idle()
    with pytest.raises(legato.RunFailed) as failed:
        handle.result()
    message = failed.value.message
    assert "recorded step 'heads', now step 'tails' at entry 0" in message
    for cause in ("randomness", "ctx.now()", "I/O", "changed under a run in flight"):
        assert cause in message
