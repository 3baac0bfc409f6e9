"""An agent whose tool needs approval, for tests that SIGKILL the worker while it waits.

The scripted model answers from the conversation (not from a position in a list), so a new
worker process answers the same way; every model request is counted in the executions log.
"""

from __future__ import annotations

from pydantic import BaseModel

import legato
from legato.ai.messages import ModelRequest, ModelResponse, ToolCall
from legato.testing import ScriptedModel
from tests.apps.counters import record

app = legato.App("agents", policy=legato.Policy())


class Outcome(BaseModel):
    sent: int
    summary: str


@app.tool(risk="high")  # high risk: the gate asks a person at the default autonomy level
async def send_email(to: str, subject: str) -> str:
    record(to, "send_email")
    return f"sent {subject!r} to {to}"


def _answer(request: ModelRequest) -> ModelResponse:
    record("model", "request")
    last = request.messages[-1]
    if last.role == "user":  # first turn: two outreach emails at once
        calls = (
            ToolCall(id="c1", name="send_email", arguments={"to": "ada@x.org", "subject": "Hi"}),
            ToolCall(id="c2", name="send_email", arguments={"to": "bob@x.org", "subject": "Yo"}),
        )
        return ModelResponse(tool_calls=calls, finish_reason="tool_calls")
    results = [m.content for m in request.messages if m.role == "tool"]
    sent = sum('"ok"' in r for r in results)
    final = ToolCall(id="f", name="final_result", arguments={"sent": sent, "summary": "done"})
    return ModelResponse(tool_calls=(final,), finish_reason="tool_calls")


model = app.models.add(ScriptedModel(_answer, name="agent-brain"))
recruiter = legato.Agent(
    "recruiter", model.id, "You reach out to candidates.", tools=[send_email], output=Outcome
)


@app.workflow()
async def outreach(ctx: legato.Context) -> dict[str, object]:
    result = await recruiter.run(ctx, "Email ada and bob.")
    output = result.output.model_dump() if result.output else None
    calls = [(c.tool, c.arguments["to"], c.outcome) for c in result.tool_calls]
    return {"status": result.status, "output": output, "calls": calls}
