"""The scenario of continuous evaluation: a support workflow whose model degrades and recovers.

The scripted ``strong`` model answers well, until the prompt says ``phase degraded``: then it
answers at twice the length (twice the cost) and every other answer is bad. ``cheap`` always
answers well and short. An agent acts with a medium-risk tool at autonomy 2 (alone); monitors
lower it to 1 (approvals) when the pass rate of ``answer-ok`` falls, and reroute ``fast`` to
``cheap`` when the cost per run doubles. The webhook comes from LEGATO_TEST_WEBHOOK.
"""

from __future__ import annotations

import os

import legato
from legato.ai.config import parse_config
from legato.ai.model import ModelRequest
from legato.evals import Target, Verdict
from legato.governance import Alert, LowerAutonomy, Reroute
from legato.testing import ScriptedModel

PRICES = {
    "scripted:strong": {"input_per_mtok": "1000000", "output_per_mtok": "1000000"},
    "scripted:cheap": {"input_per_mtok": "100000", "output_per_mtok": "100000"},
}
app = legato.App(
    "support",
    config=parse_config({"prices": PRICES}),
    policy=legato.Policy(autonomy={"support-agent": 2}),
)


def strong(request: ModelRequest) -> str:
    prompt = request.messages[-1].content
    number = int(prompt.split()[1])
    if "degraded" not in prompt:
        return "good answer"
    quality = "bad" if number % 2 == 0 else "good"
    return f"{quality} answer padded with extra words"  # 6 words: twice the tokens


app.models.add(ScriptedModel(strong, name="strong"))
app.models.add(ScriptedModel(lambda request: "good answer", name="cheap"))
app.models.alias("fast", ["scripted:strong"])


@app.tool(risk="medium", description="Refund a customer")
async def refund(order: int) -> str:
    return f"refunded {order}"


@app.workflow()
async def support(ctx: legato.Context, number: int, phase: str) -> str:
    answer = await ctx.llm(f"question {number} phase {phase}", model="fast")
    await ctx.tool(refund, actor="support-agent", order=number)
    return answer.text


@app.evaluator("answer-ok", on="llm:fast")
def answer_ok(target: Target) -> Verdict:
    text = str(target.output.get("text", ""))
    good = text.startswith("good")
    return Verdict(1.0 if good else 0.0, good, "good answer" if good else "bad answer")


def watch(webhook: str) -> None:
    """The two monitors, alerting ``webhook``."""
    app.monitor(
        "answer-quality",
        metric="pass_rate",
        evaluator="answer-ok",
        scope={"workflow": "support"},
        window=10,
        below=0.8,
        min_sample=10,
        actions=[LowerAutonomy(actor="support-agent", to=1), Alert(webhook=webhook)],
        restore_after=2,
    )
    app.monitor(
        "cost-per-run",
        metric="cost",
        scope={"workflow": "support"},
        window=10,
        baseline="trailing",
        baseline_windows=3,
        above=1.5,
        min_sample=10,
        actions=[Reroute(alias="fast", to="scripted:cheap"), Alert(webhook=webhook)],
        restore="manual",
    )


if "LEGATO_TEST_WEBHOOK" in os.environ:  # worker processes of the scenario test
    watch(os.environ["LEGATO_TEST_WEBHOOK"])
