"""An agent's own budget before each call, approver-edited tool arguments, reasoning depth
and history compaction (both backends)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import legato
from legato.ai.messages import ModelRequest, ToolCall
from legato.ai.model import Capabilities
from legato.testing import ScriptedModel
from tests.conftest import sql

REPORT = "The depot ships pallets on Mondays and the yard closes at six. " * 40


def _reader(make_app: Callable[..., legato.App], **kw: object) -> legato.App:
    app = make_app(**kw)

    @app.tool(risk="low")
    def read(page: int) -> str:
        return f"page {page}: {REPORT}"

    app.read = read  # type: ignore[attr-defined]
    return app


def _reads() -> Callable[[ModelRequest], Any]:
    """A model that reads the next page every turn and answers once it has read four."""
    pages = 0

    def answer(request: ModelRequest) -> Any:
        nonlocal pages
        if pages == 4:
            return "done reading"
        pages += 1
        return [ToolCall(id=f"c{pages}", name="read", arguments={"page": pages})]

    return answer


def test_the_agent_budget_refuses_a_turn_before_it_would_overshoot(
    make_app: Callable[..., legato.App],
) -> None:
    app = _reader(make_app)
    model = app.models.add(ScriptedModel(_reads(), capabilities=Capabilities(max_output_tokens=50)))
    agent = legato.Agent("reader", model.id, "Read.", tools=[app.read],  # type: ignore[attr-defined]
                         budget=legato.Budget(tokens=1000))  # fmt: skip

    @app.workflow
    async def run(ctx: legato.Context) -> list[Any]:
        result = await agent.run(ctx, "Read the report.")
        return [result.status, result.steps, result.reason, result.usage.total_tokens]

    status, steps, reason, used = app.run(run)
    # turn 1 is small (about 450 tokens at most, the tool prompt included); turn 2 would carry
    # a page of about 600 tokens more: refused before it was sent, where a check between turns
    # (spent so far: a few tokens) would have let it through
    assert (status, steps, model.calls) == ("budget", 1, 1)
    assert reason.startswith("agent 'reader' budget:") and "may use up to" in reason
    assert "was not sent" in reason and used < 1000


def test_an_approvers_edit_is_shown_beside_the_models_arguments(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    sent: list[dict[str, str]] = []

    @app.tool(risk="high")
    def email(to: str, body: str) -> str:
        sent.append({"to": to, "body": body})
        return "sent"

    model = app.models.add(ScriptedModel([
        [ToolCall(id="1", name="email", arguments={"to": "all@corp.example", "body": "Hi"})],
        "Done.",
    ]))  # fmt: skip
    agent = legato.Agent("mailer", model.id, "Send mail.", tools=[email])

    @app.workflow
    async def mail(ctx: legato.Context) -> list[Any]:
        result = await agent.run(ctx, "Tell the team.")
        (call,) = result.tool_calls
        return [call.arguments, call.edited_arguments, call.outcome]

    handle = app.start(mail)
    app.run_until_idle()
    (pending,) = app.approvals.list()
    app.approvals.decide(pending.id, True, by="dana", data={"to": "team@corp.example",
                                                             "body": "Hi"})  # fmt: skip
    app.run_until_idle()
    model_args, used, outcome = handle.result()
    assert model_args == {"to": "all@corp.example", "body": "Hi"}
    assert used == {"to": "team@corp.example", "body": "Hi"} and outcome == "ok"
    assert sent == [used]  # the tool ran with the approver's arguments
    told = json.loads(model.requests[1].messages[-1].content)
    assert told["edited_arguments"] == used  # and the model was told


def test_the_agents_reasoning_depth_reaches_every_turn(make_app: Callable[..., legato.App]) -> None:
    app = make_app()
    model = app.models.add(ScriptedModel(["fine"], capabilities=Capabilities(reasoning=True)))
    agent = legato.Agent("thinker", model.id, "Think.", reasoning="medium")

    @app.workflow
    async def think(ctx: legato.Context) -> str:
        return (await agent.run(ctx, "How are you?")).text

    assert app.run(think) == "fine" and model.requests[0].reasoning == "medium"


def test_a_history_that_outgrows_the_window_is_summarised_by_a_cheap_model(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _reader(make_app)
    model = app.models.add(
        ScriptedModel(
            _reads(), capabilities=Capabilities(context_window=8000, max_output_tokens=200)
        )
    )
    cheap = app.models.add(ScriptedModel(lambda r: "Pages 1-2: pallets ship Mondays.",
                                         name="cheap"))  # fmt: skip
    app.models.alias("cheap", [cheap.id])
    agent = legato.Agent(
        "reader", model.id, "Read.", tools=[app.read],  # type: ignore[attr-defined]
        compact=legato.Compaction(model="cheap", at=0.3, keep=2),
    )  # fmt: skip

    @app.workflow
    async def run(ctx: legato.Context) -> list[Any]:
        result = await agent.run(ctx, "Read the report.")
        return [result.status, result.compactions, result.text]

    status, compactions, text = app.run(run)
    assert (status, text) == ("completed", "done reading") and compactions >= 1
    # the cheap model got the older turns as a transcript, the task was not among them
    transcript = cheap.requests[0].messages[0].content
    assert "read with" in transcript and "page 1:" in transcript
    assert "Read the report." not in transcript
    # the next turn began with the task, then the summary, then the latest turns
    after = next(r for r in model.requests if any("summarised" in m.content for m in r.messages))
    task, summary, *latest = after.messages
    assert task.content == "Read the report." and summary.content.endswith(
        "Pages 1-2: pallets ship Mondays."
    )
    assert latest and latest[0].role == "assistant" and latest[0].tool_calls
    # the summary is a journaled model call of its own, paid like any other
    entries = sql(db_url, "SELECT name FROM entries WHERE kind = 'llm' ORDER BY seq")
    assert ("llm:cheap",) in entries
    assert ("scripted:cheap",) in sql(db_url, "SELECT deployment FROM model_usage")
