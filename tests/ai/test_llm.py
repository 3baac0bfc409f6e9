"""ctx.llm inside workflows: journaled, routed, validated, budgeted, accounted (both backends).

Scripted models stand in for providers here (tests/ai/test_providers.py speaks to a real
server through the official SDKs).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from pydantic import BaseModel

import legato
from legato.ai.config import parse_config
from legato.ai.model import ModelError
from legato.testing import ScriptedModel
from tests.conftest import sql


class Skills(BaseModel):
    skills: list[str]
    seniority: int


def _app(make_app: Callable[..., legato.App], config: dict[str, object] | None = None,
         **kw: object) -> legato.App:  # fmt: skip
    return make_app(config=parse_config(config or {}), **kw)


def _priced(model_id: str, input_: str = "1", output: str = "2") -> dict[str, object]:
    return {"prices": {model_id: {"input_per_mtok": input_, "output_per_mtok": output}}}


def test_a_call_is_journaled_and_replay_pays_nothing(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _app(make_app, _priced("scripted:writer", "1000000", "1000000"))
    model = app.models.add(ScriptedModel(["hello there"], name="writer"))
    app.models.alias("fast", [model.id])

    @app.workflow
    async def greet(ctx: legato.Context) -> dict[str, object]:
        result = await ctx.llm("say hello", model="fast")
        await ctx.wait_for_event("go")  # parks: the resumed run replays the call
        return {"text": result.text, "model": result.model, "usd": str(result.cost.usd),
                "tokens": result.usage.total_tokens}  # fmt: skip

    handle = app.start(greet, run_id="g1")
    app.run_until_idle()
    assert handle.status() == "waiting" and model.calls == 1
    app.send_event("g1", "go")
    app.run_until_idle()
    result = handle.result()
    assert model.calls == 1  # replayed from the journal, not called again
    assert result["text"] == "hello there" and result["model"] == "scripted:writer"
    # usage priced by the legato.toml override: $1 per token both ways
    assert Decimal(str(result["usd"])) == Decimal(int(str(result["tokens"])))
    rows = sql(db_url, "SELECT deployment, alias, run_id, cost_usd FROM model_usage")
    assert len(rows) == 1 and rows[0][:3] == ("scripted:writer", "fast", "g1")
    [entry] = [r for r in sql(db_url, "SELECT kind, name, status FROM entries") if r[0] == "llm"]
    assert entry == ("llm", "llm:fast", "completed")


def test_structured_output_is_repaired_and_every_attempt_counted(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _app(make_app)
    model = app.models.add(
        ScriptedModel(["Sure! Here are the skills: python", {"skills": ["python"], "seniority": 3}])
    )

    @app.workflow
    async def extract(ctx: legato.Context) -> dict[str, object]:
        result = await ctx.llm("extract", model=model.id, output=Skills)
        assert isinstance(result.output, Skills)
        return {"out": result.output.model_dump(), "outcomes": [a.outcome for a in result.attempts],
                "requests": result.usage.requests}  # fmt: skip

    out = app.run(extract)
    assert out == {"out": {"skills": ["python"], "seniority": 3},
                   "outcomes": ["invalid", "ok"], "requests": 2}  # fmt: skip
    # the repair told the model what was wrong
    repair = model.requests[1].messages[-1].content
    assert "did not match the required schema" in repair and "JSON" in repair
    assert sql(db_url, "SELECT COUNT(*) FROM model_usage")[0][0] == 2


def test_output_that_never_validates_fails_with_every_attempt(
    make_app: Callable[..., legato.App],
) -> None:
    app = _app(make_app, {"models": {"fast": {"candidates": ["scripted:bad"], "repairs": 1}}})
    model = app.models.add(ScriptedModel(["no", '{"skills": "python"}'], name="bad"))

    @app.workflow
    async def extract(ctx: legato.Context) -> dict[str, object]:
        try:
            await ctx.llm("extract", model="fast", output=Skills)
        except legato.OutputValidationError as exc:
            return {"attempts": [(a.deployment, a.outcome) for a in exc.attempts],
                    "message": str(exc)}  # fmt: skip
        return {}

    out = app.run(extract)
    assert out["attempts"] == [["scripted:bad", "invalid"], ["scripted:bad", "invalid"]]
    assert "after 1 repair" in str(out["message"]) and model.calls == 2


def test_fallback_on_errors_and_circuit_breaker(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app, {"circuit_breaker": {"failures": 2, "cooldown": "1h"}})
    flaky = app.models.add(ScriptedModel(
        [ModelError("rate_limit", "429 slow down"), ModelError("server", "500")] * 3, name="flaky"
    ))  # fmt: skip
    steady = app.models.add(ScriptedModel(["a", "b", "c"], name="steady"))
    app.models.alias("fast", [flaky.id, steady.id])

    @app.workflow
    async def three(ctx: legato.Context) -> list[list[str]]:
        out = []
        for _ in range(3):
            result = await ctx.llm("hi", model="fast")
            out.append([result.text, result.routing.chosen or "", result.routing.reason])
        return out

    out = app.run(three)
    assert [row[:2] for row in out] == [["a", "scripted:steady"]] * 1 + [
        ["b", "scripted:steady"], ["c", "scripted:steady"]]  # fmt: skip
    assert "rate_limit" in out[0][2]
    # two failures in a row opened the breaker: the third call skipped flaky without asking it
    assert flaky.calls == 2 and "circuit open" in out[2][2]


def test_cascade_escalates_when_output_fails_validation(
    make_app: Callable[..., legato.App],
) -> None:
    app = _app(make_app)
    cheap = app.models.add(ScriptedModel(["nope"], name="cheap"))
    strong = app.models.add(ScriptedModel([{"skills": ["go"], "seniority": 5}], name="strong"))
    app.models.alias("smart", [cheap.id, strong.id], strategy="cascade", repairs=0)

    @app.workflow
    async def extract(ctx: legato.Context) -> dict[str, object]:
        result = await ctx.llm("extract", model="smart", output=Skills)
        return {"by": result.model, "outcomes": [a.outcome for a in result.attempts],
                "requests": result.usage.requests}  # fmt: skip

    assert app.run(extract) == {
        "by": "scripted:strong", "outcomes": ["escalated", "ok"], "requests": 2
    }  # fmt: skip


def test_budget_stops_the_call_before_it_is_sent(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app, {"budgets": {"run": {"calls": 1}}})
    model = app.models.add(ScriptedModel(["one", "two"]))

    @app.workflow
    async def spend(ctx: legato.Context) -> str:
        await ctx.llm("first", model=model.id)
        try:
            await ctx.llm("second", model=model.id)
        except legato.BudgetExceeded as exc:
            return f"{exc.scope}: {exc}"
        return "passed"

    out = app.run(spend)
    assert out.startswith("run: run budget: 1 of 1 model calls used") and model.calls == 1


def test_unknown_cost_is_not_zero(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app, {"budgets": {"run": {"usd": "5"}}})
    model = app.models.add(ScriptedModel(["x"]))

    @app.workflow
    async def spend(ctx: legato.Context) -> str:
        try:
            await ctx.llm("hi", model=model.id)
        except legato.BudgetExceeded as exc:
            return str(exc)
        return "passed"

    assert "the cost is unknown" in app.run(spend) and model.calls == 0

    allowed = _app(make_app, {"budgets": {"run": {"usd": "5", "allow_unknown_cost": True}}},
                   name="allowed")  # fmt: skip
    other = allowed.models.add(ScriptedModel(["x"]))

    @allowed.workflow
    async def spend2(ctx: legato.Context) -> str | None:
        result = await ctx.llm("hi", model=other.id)
        return None if result.cost.usd is None else str(result.cost.usd)

    assert allowed.run(spend2) is None and other.calls == 1


def test_budget_breach_can_ask_a_person(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app, {"budgets": {"run": {"calls": 1, "on_breach": "approve"}}})
    model = app.models.add(ScriptedModel(["one", "two"]))

    @app.workflow
    async def spend(ctx: legato.Context) -> list[str]:
        first = await ctx.llm("first", model=model.id)
        second = await ctx.llm("second", model=model.id)
        return [first.text, second.text]

    handle = app.start(spend, run_id="b1")
    app.run_until_idle()
    assert handle.status() == "waiting" and model.calls == 1
    [pending] = app.approvals.list()
    assert pending.name == "budget:run" and pending.data["calls"] == 2
    app.approvals.decide(pending.id, approved=True, by="ops")
    app.run_until_idle()
    assert handle.result() == ["one", "two"] and model.calls == 2


def test_budget_breach_can_downgrade(make_app: Callable[..., legato.App]) -> None:
    config = {
        "budgets": {"run": {"usd": "100", "on_breach": "downgrade", "downgrade_to": "cheap"}},
        "prices": {"scripted:big": {"input_per_mtok": "1000000", "output_per_mtok": "1000000"},
                   "scripted:small": {"input_per_mtok": "1", "output_per_mtok": "1"}},
    }  # fmt: skip
    app = _app(make_app, config)
    big = app.models.add(ScriptedModel(["word " * 40], name="big"))  # $1 a token
    small = app.models.add(ScriptedModel(["small"], name="small"))
    app.models.alias("cheap", [small.id])

    @app.workflow
    async def spend(ctx: legato.Context) -> list[str]:
        # worst case before the call: ~8 prompt tokens + 60 output = $68 of $100: sent
        first = await ctx.llm("hi", model=big.id, max_tokens=60)
        # it used 41 tokens ($41); another worst case of $68 would pass $100: downgraded
        again = await ctx.llm("hi", model=big.id, max_tokens=60)
        return [first.model, again.model, again.routing.reason]

    first, second, reason = app.run(spend)
    assert (first, second, big.calls, small.calls) == ("scripted:big", "scripted:small", 1, 1)
    assert "downgraded to 'cheap'" in reason


def test_bad_model_names_fail_clearly(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app)

    @app.workflow
    async def bad(ctx: legato.Context, model: str) -> str:
        return (await ctx.llm("hi", model=model)).text

    with pytest.raises(legato.RunFailed, match="unknown model alias 'nope'"):
        app.run(bad, "nope")
    with pytest.raises(legato.RunFailed, match="unknown provider 'acme'"):
        app.run(bad, "acme:big")


def test_missing_key_names_the_variable(
    make_app: Callable[..., legato.App], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    app = _app(make_app, {"providers": {"openai": {"base_url": "http://127.0.0.1:9/v1"}}})

    @app.workflow
    async def call(ctx: legato.Context) -> str:
        return (await ctx.llm("hi", model="openai:gpt-4o-mini")).text

    with pytest.raises(legato.RunFailed, match="OPENAI_API_KEY"):
        app.run(call)


def test_response_cache_across_runs(make_app: Callable[..., legato.App], db_url: str) -> None:
    app = _app(make_app, {"cache": {"enabled": True, "ttl": "1h"}})
    model = app.models.add(ScriptedModel(["cached answer"]))

    @app.workflow
    async def ask(ctx: legato.Context) -> list[object]:
        result = await ctx.llm("same question", model=model.id)
        return [result.text, result.cached]

    assert app.run(ask) == ["cached answer", False]
    assert app.run(ask) == ["cached answer", True]
    assert model.calls == 1


def test_costs_roll_up_by_workflow_model_and_tenant(
    make_app: Callable[..., legato.App],
) -> None:
    app = _app(make_app, _priced("scripted:writer", "2", "4"))
    model = app.models.add(ScriptedModel(lambda request: "one two three", name="writer"))

    @app.workflow
    async def write(ctx: legato.Context) -> None:
        await ctx.llm("a b", model=model.id)

    app.run(write, tenant="acme")
    app.run(write, tenant="acme")
    app.run(write, tenant="globex")
    rollup = dict(app.costs(by="tenant"))
    assert rollup["acme"].calls == 2 and rollup["globex"].calls == 1
    # 2 input + 3 output tokens per call at $2 / $4 per million tokens
    assert rollup["acme"].cost_nanousd == 2 * (2 * 2000 + 3 * 4000)
    assert [k for k, _ in app.costs(by="model")] == ["scripted:writer"]


def test_tenant_budget_per_day(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app, {"budgets": {"tenant_day": {"calls": 2}}})
    model = app.models.add(ScriptedModel(lambda request: "ok"))

    @app.workflow
    async def one(ctx: legato.Context) -> str:
        try:
            return (await ctx.llm("hi", model=model.id)).text
        except legato.BudgetExceeded as exc:
            return str(exc.scope)

    assert [app.run(one, tenant="acme") for _ in range(3)] == ["ok", "ok", "tenant_day"]
    assert app.run(one, tenant="globex") == "ok"


def test_embeddings_are_journaled(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app)
    model = app.models.add(ScriptedModel())

    @app.workflow
    async def vectors(ctx: legato.Context) -> list[int]:
        result = await ctx.embed(["a", "b", "a"], model=model.id)
        return [len(result.vectors), int(result.vectors[0] == result.vectors[2])]

    assert app.run(vectors) == [3, 1]


def test_legato_costs_cli(make_app: Callable[..., legato.App], db_url: str) -> None:
    import json

    from click.testing import CliRunner

    from legato.cli.main import cli

    tiny = {"input_per_mtok": "0.00346", "output_per_mtok": "0.00346"}
    prices = {**_priced("scripted:writer", "1000", "1000")["prices"], "scripted:tiny": tiny}
    app = _app(make_app, {"prices": prices})
    model = app.models.add(ScriptedModel(lambda request: "one two", name="writer"))
    cheap = app.models.add(ScriptedModel(lambda request: "one two", name="tiny"))
    unpriced = app.models.add(ScriptedModel(lambda request: "x", name="free"))

    @app.workflow
    async def write(ctx: legato.Context) -> None:
        await ctx.llm("a b c", model=model.id)
        await ctx.llm("a b c", model=cheap.id)
        await ctx.llm("a", model=unpriced.id)

    app.run(write)
    runner = CliRunner()
    out = runner.invoke(cli, ["--database-url", db_url, "costs", "--by", "model", "--json"])
    assert out.exit_code == 0, out.output
    rows = {r["model"]: r for r in map(json.loads, out.output.splitlines())}
    # 3 input + 2 output tokens at $1,000 per million each
    assert rows["scripted:writer"]["usd"] == "0.005" and rows["scripted:writer"]["calls"] == 1
    # exact, as a string: 5 tokens at $0.00346 per million, not "0.000000"
    assert rows["scripted:tiny"]["usd"] == "0.0000000173"
    assert rows["scripted:free"]["unknown_cost_calls"] == 1
    table = runner.invoke(cli, ["--database-url", db_url, "costs"])
    assert table.exit_code == 0 and "write" in table.output and "no known price" in table.output
    assert "0.005000" in table.output  # tables round to 6 decimals
    bad = runner.invoke(cli, ["--database-url", db_url, "costs", "--since", "soon"])
    assert bad.exit_code != 0 and "bad age" in bad.output


# -- found in review: each of these was a real defect ------------------------------------


def test_a_recorded_call_replays_after_its_alias_is_gone(
    make_app: Callable[..., legato.App],
) -> None:
    app = _app(make_app)
    model = app.models.add(ScriptedModel(["recorded"]))
    app.models.alias("fast", [model.id])

    @app.workflow
    async def ask(ctx: legato.Context) -> str:
        text = (await ctx.llm("hi", model="fast")).text
        await ctx.wait_for_event("go")
        return text

    handle = app.start(ask, run_id="r1")
    app.run_until_idle()
    app.models._aliases.pop("fast")  # a deploy renamed the alias while the run waited
    app.send_event("r1", "go")
    app.run_until_idle()
    assert handle.result() == "recorded" and model.calls == 1


def test_concurrent_calls_of_a_run_cannot_pass_a_budget_together(
    make_app: Callable[..., legato.App],
) -> None:
    import asyncio

    app = _app(make_app, {"budgets": {"run": {"calls": 1}}})
    model = app.models.add(ScriptedModel(lambda request: "ok"))

    async def one(ctx: legato.Context) -> str:
        try:
            return (await ctx.llm("hi", model=model.id)).text
        except legato.BudgetExceeded:
            return "stopped"

    @app.workflow
    async def three(ctx: legato.Context) -> list[str]:
        return list(await asyncio.gather(one(ctx), one(ctx), one(ctx)))

    assert sorted(app.run(three)) == ["ok", "stopped", "stopped"] and model.calls == 1


def test_escalated_then_unavailable_is_not_retried(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app)
    cheap = app.models.add(ScriptedModel(lambda request: "not json", name="cheap"))
    down = app.models.add(ScriptedModel(lambda request: ModelError("server", "500"), name="down"))
    app.models.alias("smart", [cheap.id, down.id], strategy="cascade", repairs=0)

    @app.workflow
    async def extract(ctx: legato.Context) -> str:
        try:
            await ctx.llm("x", model="smart", output=Skills)
        except legato.OutputValidationError as exc:
            return str(exc)
        return "passed"

    assert "no candidate of 'smart' gave an acceptable answer" in app.run(extract)
    assert cheap.calls == 1  # a retry would have paid the cheap model again


def test_a_malformed_request_fails_at_once(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app)
    bad = app.models.add(
        ScriptedModel(lambda request: ModelError("bad_request", "400 nope"), name="a")
    )
    good = app.models.add(ScriptedModel(["b"], name="b"))
    app.models.alias("fast", [bad.id, good.id])

    @app.workflow
    async def ask(ctx: legato.Context) -> str:
        return (await ctx.llm("hi", model="fast")).text

    with pytest.raises(legato.RunFailed, match="400 nope"):
        app.run(ask)
    assert good.calls == 0


def test_no_capable_candidate_fails_without_retries(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    from legato.ai.model import Capabilities

    app = _app(make_app)
    plain = app.models.add(ScriptedModel(["x"], capabilities=Capabilities(tools=False)))
    spec = legato.ToolSpec(name="lookup")

    @app.workflow
    async def ask(ctx: legato.Context) -> str:
        return (await ctx.llm("hi", model=plain.id, tools=[spec])).text

    with pytest.raises(legato.RunFailed, match="does not support tools"):
        app.run(ask)
    [(attempts,)] = sql(db_url, "SELECT attempts FROM entries WHERE kind = 'llm'")
    assert attempts == 1 and plain.calls == 0


def test_forbidden_data_skips_external_candidates_only(
    make_app: Callable[..., legato.App],
) -> None:
    policy = legato.Policy.from_yaml("data:\n  forbid_external: [us_ssn]\n")
    app = _app(make_app, policy=policy)
    outside = app.models.add(ScriptedModel(["out"], name="outside", external=True))
    inside = app.models.add(ScriptedModel(["in"], name="inside", external=False))
    app.models.alias("fast", [outside.id, inside.id])

    @app.workflow
    async def ask(ctx: legato.Context) -> str:
        return (await ctx.llm("ssn 078-05-1120", model="fast")).model

    assert app.run(ask) == "scripted:inside" and outside.calls == 0


def test_cache_hits_are_free_and_counted(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app, {"cache": {"enabled": True}, "budgets": {"run": {"calls": 1}}})
    model = app.models.add(ScriptedModel(lambda request: "answer"))

    @app.workflow
    async def ask(ctx: legato.Context) -> list[bool]:
        first = await ctx.llm("same", model=model.id)
        second = await ctx.llm("same", model=model.id)  # over the call budget, but cached
        return [first.cached, second.cached]

    assert app.run(ask) == [False, True] and model.calls == 1
    [(_, totals)] = app.costs(by="workflow")
    assert totals.calls == 2 and totals.cache_hits == 1


def test_unknown_cost_approval_lets_the_call_go(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app, {"budgets": {"run": {"usd": "1", "on_breach": "approve"}}})
    model = app.models.add(ScriptedModel(["priced later"]))

    @app.workflow
    async def ask(ctx: legato.Context) -> str:
        return (await ctx.llm("hi", model=model.id)).text

    handle = app.start(ask, run_id="u1")
    app.run_until_idle()
    [pending] = app.approvals.list()
    assert pending.data["allow_unknown_cost"] is True
    app.approvals.decide(pending.id, approved=True, by="ops")
    app.run_until_idle()
    assert handle.result() == "priced later" and len(app.approvals.list()) == 0


def test_embeddings_obey_budgets_and_data_rules(make_app: Callable[..., legato.App]) -> None:
    policy = legato.Policy.from_yaml("data:\n  redact: [email]\n")
    app = _app(make_app, {"budgets": {"run": {"calls": 1}}}, policy=policy)
    model = app.models.add(ScriptedModel(external=True))

    @app.workflow
    async def vectors(ctx: legato.Context) -> list[object]:
        redacted = await ctx.embed("write to ada@example.org", model=model.id)
        try:
            await ctx.embed("again", model=model.id)
        except legato.BudgetExceeded:
            return [redacted.vectors[0]]
        return []

    [vector] = app.run(vectors)
    expected = app.models.get(model.id)
    import asyncio

    plain = asyncio.run(expected.embed(["write to [EMAIL]"]))
    assert vector == list(plain.vectors[0])  # the address never reached the model


def test_embeddings_route_through_the_same_pipeline(make_app: Callable[..., legato.App]) -> None:
    from collections.abc import Sequence

    from legato.ai.messages import EmbeddingResponse

    class Keyless(ScriptedModel):
        async def embed(self, texts: Sequence[str]) -> EmbeddingResponse:
            raise ModelError("auth", "no key", deployment=self.id)

    config = {
        "budgets": {"run": {"usd": "1", "on_breach": "downgrade", "downgrade_to": "cheap"}},
        "prices": {"scripted:big": {"input_per_mtok": "1000000", "output_per_mtok": "1000000"},
                   "scripted:small": {"input_per_mtok": "1", "output_per_mtok": "1"},
                   "scripted:keyless": {"input_per_mtok": "1", "output_per_mtok": "1"}},
    }  # fmt: skip
    app = _app(make_app, config)
    keyless = app.models.add(Keyless(name="keyless"))
    big = app.models.add(ScriptedModel(name="big"))
    small = app.models.add(ScriptedModel(name="small"))
    app.models.alias("vectors", [keyless.id, small.id])
    app.models.alias("cheap", [small.id])

    @app.workflow
    async def vectors(ctx: legato.Context) -> list[str]:
        passed_by = await ctx.embed(["a"], model="vectors")  # past a candidate with no key
        downgraded = await ctx.embed(["a"], model=big.id)  # $1 a token would pass $1
        return [passed_by.model, downgraded.model]

    assert app.run(vectors) == [small.id, small.id]
