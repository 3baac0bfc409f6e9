"""What runs measured: written with the run's end (once, and only by its owner), summed in
rollups that ``stats`` reads, and evaluations recorded once by their key."""

from __future__ import annotations

from legato.store.base import EvaluationRecord, RunMetrics, Store, Tally
from legato.testing.conformance.records import NOW, run_record, started

HOUR = 3600.0


def _measured(run_id: str, cost: int, *, tenant: str | None = None) -> RunMetrics:
    m = RunMetrics(run_id, "wf", tenant, "completed", NOW)
    m.run.cost_nanousd, m.run.tokens, m.run.calls, m.run.retries = cost, 10, 1, 2
    m.op("step", "fetch", "completed").add(Tally(n=2, duration=0.5, retries=2))
    m.op("llm", "scripted:a", "completed").add(Tally(n=1, calls=1, tokens=10, cost_nanousd=cost))
    return m


async def check_a_run_end_records_its_metrics_and_rollups(store: Store) -> None:
    await started(store, "a", tenant="acme")
    await started(store, "b")
    assert await store.finish_run(
        "w", "a", "completed", '"x"', NOW + 4, metrics=_measured("a", 7, tenant="acme")
    )
    assert await store.finish_run("w", "b", "failed", '{"type":"X"}', NOW + 2, metrics=None)
    stored = await store.get_run_metrics("a")
    assert stored is not None and stored.outcome == "completed" and stored.tenant == "acme"
    assert stored.finished_at == NOW + 4 and stored.run.duration == 4.0
    assert (stored.run.cost_nanousd, stored.run.tokens, stored.run.retries) == (7, 10, 2)
    assert await store.get_run_metrics("b") is None  # ended without metrics: not measured
    [wf] = await store.stats("workflow")
    assert (wf.group, wf.outcomes, wf.tally.n, wf.tally.cost_nanousd) == (
        "wf",
        {"completed": 1},
        1,
        7,
    )
    [step] = await store.stats("step")
    assert (step.group, step.tally.n, step.tally.retries, step.tally.duration) == (
        "fetch",
        2,
        2,
        0.5,
    )
    [model] = await store.stats("model")
    assert (model.group, model.tally.calls, model.tally.tokens) == ("scripted:a", 1, 10)
    [tenant] = await store.stats("tenant")
    assert tenant.group == "acme"
    assert await store.stats("workflow", since=NOW + 2 * HOUR) == []
    assert await store.stats("workflow", workflow="other") == []


async def check_rollups_add_up_and_a_lost_run_measures_nothing(store: Store) -> None:
    for i in range(3):
        await started(store, f"r{i}")
        assert await store.finish_run(
            "w", f"r{i}", "completed", "1", NOW + 1, metrics=_measured(f"r{i}", 5)
        )
    await started(store, "lost", worker="w")
    assert not await store.finish_run(
        "other", "lost", "completed", "1", NOW + 1, metrics=_measured("lost", 100)
    )
    [wf] = await store.stats("workflow")
    assert (wf.tally.n, wf.tally.cost_nanousd, wf.tally.calls) == (3, 15, 3)
    assert await store.get_run_metrics("lost") is None
    [day] = await store.stats("day")
    assert day.group == str(int(NOW // 86400))  # days are numbered; ops formats them


async def check_cancelled_runs_count_as_runs(store: Store) -> None:
    await store.create_run(run_record("c", tenant="t1"))
    await store.cancel_run("c", NOW + 3)
    [wf] = await store.stats("workflow")
    assert wf.outcomes == {"cancelled": 1} and wf.tally.duration == 3.0
    samples = await store.samples("runs", "duration", filters=[("outcome", "cancelled")])
    assert [(at, key, v) for at, key, v in samples] == [(NOW + 3, "c", 3.0)]


async def check_a_run_end_starts_its_follow_up_runs_once(store: Store) -> None:
    await started(store, "p")
    follow = run_record("p~eval~x~result", workflow="legato.evaluate")
    assert await store.finish_run("w", "p", "completed", "1", NOW + 1, start=[follow])
    assert (await store.get_run("p~eval~x~result")) is not None
    await started(store, "q")
    assert not await store.finish_run("nobody", "q", "completed", "1", NOW + 1, start=[
        run_record("q~eval~x~result", workflow="legato.evaluate")
    ])  # fmt: skip
    assert await store.get_run("q~eval~x~result") is None


def _evaluation(key: str, passed: bool, at: float, evaluator: str = "ok") -> EvaluationRecord:
    return EvaluationRecord(
        key, "r", "wf", None, evaluator, "workflow", None, "shadow",
        1.0 if passed else 0.0, passed, "why", at,
    )  # fmt: skip


async def check_evaluations_are_recorded_once_and_summed(store: Store) -> None:
    assert await store.record_evaluation(_evaluation("k1", True, NOW))
    assert not await store.record_evaluation(_evaluation("k1", False, NOW + 1))  # again: kept
    assert await store.record_evaluation(_evaluation("k2", False, NOW + 2))
    assert await store.record_evaluation(_evaluation("k3", True, NOW + 3, evaluator="other"))
    recent = await store.list_evaluations(evaluator="ok")
    assert [(e.key, e.passed, e.reason) for e in recent] == [
        ("k2", False, "why"),
        ("k1", True, "why"),
    ]
    assert [e.key for e in await store.list_evaluations(run_id="r", limit=1)] == ["k3"]
    sums = {r.group: r.tally for r in await store.stats("step", kind="eval")}
    assert (sums["ok"].n, sums["ok"].passed, sums["ok"].score) == (2, 1, 1.0)
    assert sums["other"].n == 1


async def check_samples_read_windows_in_order(store: Store) -> None:
    for i in range(5):
        await store.record_evaluation(_evaluation(f"k{i}", i % 2 == 0, NOW + i))
    every = await store.samples("evaluations", "passed", filters=[("evaluator", "ok")])
    assert [v for _, _, v in every] == [1.0, 0.0, 1.0, 0.0, 1.0]
    first_two = every[:2]
    after = (first_two[-1][0], first_two[-1][1])
    nxt = await store.samples("evaluations", "passed", after=after, limit=2)
    assert [at for at, _, _ in nxt] == [NOW + 2, NOW + 3]
    last = await store.samples(
        "evaluations", "score", before=(nxt[0][0], nxt[0][1]), limit=5, newest=True
    )
    assert [at for at, _, _ in last] == [NOW, NOW + 1]
    timed = await store.samples("evaluations", "passed", since=NOW + 1, until=NOW + 3)
    assert [at for at, _, _ in timed] == [NOW + 1, NOW + 2]
