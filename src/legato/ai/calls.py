"""``ctx.llm`` and ``ctx.embed``: the two operations the call pipeline runs.

Both go through the same stages (pipeline.py: route -> data rules -> budget -> call ->
account) and routing strategies (routing.py); what is theirs alone is here: what a
deployment must be able to do, how the request is made ready and sent, how an answer is
checked and repaired, and the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from legato.ai import structured, tokens
from legato.ai.budgets import Allowance
from legato.ai.context_window import trim
from legato.ai.learned import Known
from legato.ai.messages import EmbeddingResponse, Message, ModelRequest, ModelResponse, ToolSpec
from legato.ai.model import Model
from legato.ai.outcomes import Answered, Tally
from legato.ai.pipeline import Call, CallEnv, Operation
from legato.ai.reasoning import Reasoning
from legato.ai.registry import Models, Route
from legato.ai.results import EmbedResult, LLMResult, Routing

__all__ = ["CallEnv", "CallSpec", "complete", "embed"]


@dataclass(frozen=True)
class CallSpec:
    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    output: Any = None
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = False
    timeout: float | None = None
    evaluator: Callable[[LLMResult[Any]], bool | Awaitable[bool]] | None = None
    reasoning: Reasoning | None = None
    #: limits of the caller's own (an agent's budget), checked before every request
    allowances: tuple[Allowance, ...] = ()


async def complete(models: Models, env: CallEnv, spec: CallSpec) -> LLMResult[Any]:
    """``ctx.llm``: an answer from the candidates of ``spec.model``, per its strategy."""
    return await Call(models, env, _Chat(spec), spec.model).run()


async def embed(models: Models, env: CallEnv, ref: str, texts: list[str]) -> EmbedResult:
    """``ctx.embed``: vectors from the candidates of ``ref``, per its strategy."""
    return await Call(models, env, _Embedding(texts), ref).run()


class _Chat(Operation[ModelResponse, LLMResult[Any]]):
    """A chat request: tools, structured output with repairs, trimming, the response cache."""

    kind = "chat"
    reasons = True
    subject = "the prompt holds"
    answered = "answered"

    def __init__(self, spec: CallSpec) -> None:
        super().__init__(ModelRequest(
            messages=spec.messages, system=spec.system, tools=spec.tools,
            temperature=spec.temperature, max_tokens=spec.max_tokens, stream=spec.stream,
            reasoning=spec.reasoning,
        ))  # fmt: skip
        self.spec = spec
        self.allowances = spec.allowances

    def incapable(self, model: Model, needed: int | None = None) -> str | None:
        caps = model.capabilities
        if not caps.chat:
            return "does not generate text"
        if self.spec.tools and not caps.tools:
            return "does not support tools"
        if needed is not None and caps.context_window < needed:
            return f"context window {caps.context_window} < {needed} tokens needed"
        return None

    def prepare(
        self, model: Model, request: ModelRequest, known: Known
    ) -> tuple[ModelRequest, int]:
        caps = model.capabilities
        if self.spec.output is not None:
            mode = structured.output_modes(
                model, has_tools=bool(request.tools), rejected=known.rejected
            )[0]
            request = request.model_copy(
                update={"output": structured.output_spec(self.spec.output, mode)}
            )
        # the chat template's tokens are part of every prompt: the output reserve covers them
        reserve = tokens.max_output(request, caps) + _template(model, known)
        if tokens.estimate_request(request, model.name) + reserve <= caps.context_window:
            return request, 0

        def count(text: str) -> int:
            return tokens.estimate_tokens(text, model.name)

        # a block of a quarter of the room: an agent's next turns keep the same prompt start
        block = max((caps.context_window - reserve) // 4, 1)
        trimmed = trim(request.messages, system=request.system, limit=caps.context_window,
                       count=count, reserve=reserve, block=block)  # fmt: skip
        return request.model_copy(update={"messages": tuple(trimmed.messages)}), trimmed.dropped

    def estimate(self, model: Model, request: ModelRequest, known: Known) -> int:
        return tokens.estimate_request(request, model.name) + _template(model, known)

    def measures_template(self, request: ModelRequest) -> bool:
        return not tokens.offers_tools(request)

    def rounds(self, route: Route) -> int:
        return route.repairs + 1

    def from_cache(self) -> Callable[[str], ModelResponse]:
        return ModelResponse.model_validate_json

    async def send(self, model: Model, request: ModelRequest) -> ModelResponse:
        return await model.request(request, timeout=self.spec.timeout)

    def check(self, request: ModelRequest, response: ModelResponse) -> tuple[Any, str | None]:
        if self.spec.output is None or request.output is None or _wants_tools(response, request):
            return None, None
        try:
            return structured.parse(self.spec.output, request.output, response), None
        except structured.Invalid as invalid:
            return None, str(invalid)

    def repair(self, request: ModelRequest, response: ModelResponse, problem: str) -> ModelRequest:
        return structured.repair(request, response, problem)

    def result(
        self, route: Route, answered: Answered[ModelResponse], tally: Tally
    ) -> LLMResult[Any]:
        model, request, response = answered.model, answered.request, answered.response
        calls = list(response.tool_calls)
        if request.output is not None:  # the output tool is legato's, not the caller's
            calls = [c for c in calls if c.name != request.output.name]
        return LLMResult[Any](
            text=response.text,
            output=answered.output,
            tool_calls=calls,
            model=model.id,
            provider=model.provider.name,
            usage=tally.usage,
            cost=tally.cost,
            attempts=tally.attempts,
            routing=Routing(
                requested=self.spec.model,
                strategy=route.strategy,
                candidates=list(route.candidates),
                chosen=model.id,
                reason=tally.reason(),
            ),
            redacted=dict(tally.redacted),
            estimated_input_tokens=answered.estimated,
            output_mode=None if request.output is None else request.output.mode,
            finish_reason=response.finish_reason,
            cached=answered.cached,
            trimmed_messages=answered.trimmed,
            notes=list(tally.notes),
            thinking=list(response.thinking),
        )

    async def accepts(self, result: LLMResult[Any]) -> bool:
        if self.spec.evaluator is None:
            return True
        verdict = self.spec.evaluator(result)
        return verdict if isinstance(verdict, bool) else await verdict


def _template(model: Model, known: Known) -> int:
    return tokens.template_tokens(model.name, known.template_tokens, model.template_margin)


def _wants_tools(response: ModelResponse, request: ModelRequest) -> bool:
    """The model called the caller's tools instead of answering: no output to check yet."""
    spec = request.output
    names = {t.name for t in request.tools}
    return any(c.name in names for c in response.tool_calls) and not any(
        spec is not None and c.name == spec.name for c in response.tool_calls
    )


class _Embedding(Operation[EmbeddingResponse, EmbedResult]):
    """Vectors for texts: each text is a user turn to the data rules and the budget estimate;
    nothing to validate, and never from the response cache."""

    kind = "embed"
    subject = "the texts hold"
    answered = "made embeddings"

    def __init__(self, texts: Sequence[str]) -> None:
        turns = tuple(Message(role="user", content=t) for t in texts)
        super().__init__(ModelRequest(messages=turns, max_tokens=1))

    def incapable(self, model: Model, needed: int | None = None) -> str | None:
        # the context window bounds each text, not their sum: not a reason to pass one by
        return None if model.capabilities.embeddings else "does not make embeddings"

    async def send(self, model: Model, request: ModelRequest) -> EmbeddingResponse:
        return await model.embed([m.content for m in request.messages])

    def result(
        self, route: Route, answered: Answered[EmbeddingResponse], tally: Tally
    ) -> EmbedResult:
        response = answered.response
        return EmbedResult(
            vectors=[list(v) for v in response.vectors], model=answered.deployment,
            usage=response.usage, cost=answered.cost,
        )  # fmt: skip
