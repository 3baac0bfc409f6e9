"""The ``openai`` and ``anthropic`` providers against a real server (llm-katan, echo backend),
through the official SDKs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from legato.ai.messages import Message, ModelRequest, ModelResponse, OutputSpec, ToolCall, ToolSpec
from legato.ai.model import Capabilities, Model, ModelError, ProviderSettings
from legato.ai.providers import build_model, json_arguments, status_kind
from legato.ai.providers.anthropic import AnthropicModel
from legato.ai.providers.openai import OpenAIModel
from legato.errors import ConfigurationError
from tests.ai.conftest import KEY, MODEL, Katan, Stub, Wire, free_port

T = TypeVar("T")

KINDS = ["openai", "anthropic"]
#: where each protocol posts a chat request
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}

WEATHER = ToolSpec(
    name="weather",
    description="The forecast for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
)
FORECAST_SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "high": {"type": "integer"}},
    "required": ["summary", "high"],
}


def connect(
    kind: str,
    url: str,
    *,
    key: str | None = KEY,
    key_env: str | None = None,
    timeout: float = 10.0,
    headers: tuple[tuple[str, str], ...] = (),
) -> Model:
    base = f"{url}/v1" if kind == "openai" else url
    settings = ProviderSettings(
        name=f"{kind}-test",
        kind=kind,
        base_url=base,
        api_key=key,
        api_key_env=key_env,
        timeout=timeout,
        headers=headers,
    )
    return build_model(settings, MODEL)


def run(model: Model, body: Callable[[Model], Awaitable[T]]) -> T:
    """Run ``body(model)`` in a fresh event loop and close the model's client in that loop."""

    async def main() -> T:
        try:
            return await body(model)
        finally:
            await model.aclose()

    return asyncio.run(main())


def ask(model: Model, request: ModelRequest, *, timeout: float | None = None) -> ModelResponse:
    return run(model, lambda m: m.request(request, timeout=timeout))


def failure(model: Model, request: ModelRequest, *, timeout: float | None = None) -> ModelError:
    with pytest.raises(ModelError) as info:
        ask(model, request, timeout=timeout)
    return info.value


def on_the_wire(
    kind: str, server: Katan, request: ModelRequest, **options: Any
) -> tuple[ModelResponse, dict[str, Any]]:
    """The answer to ``request`` and what the server received for it (headers, body)."""

    async def body(model: Model) -> tuple[ModelResponse, dict[str, Any]]:
        async with Wire(server) as wire:
            response = await model.request(request)
            return response, await wire.received(PATHS[kind])

    return run(connect(kind, server.url, **options), body)


def user(text: str) -> ModelRequest:
    return ModelRequest(messages=(Message(role="user", content=text),))


def words(*texts: str) -> int:
    """How katan's echo backend counts tokens."""
    return sum(len(t.split()) for t in texts)


# -- building models ----------------------------------------------------------------------


def test_build_model_picks_the_protocol_by_kind() -> None:
    openai_model = connect("openai", "http://127.0.0.1:1")
    anthropic_model = connect("anthropic", "http://127.0.0.1:1")
    assert isinstance(openai_model, OpenAIModel)
    assert isinstance(anthropic_model, AnthropicModel)
    assert openai_model.id == f"openai-test:{MODEL}"
    assert openai_model.capabilities.native_output is True
    assert anthropic_model.capabilities.native_output is False  # no native structured output
    chosen = Capabilities(native_output=True, context_window=8_000)
    settings = ProviderSettings(name="a", kind="anthropic", api_key="k")
    assert build_model(settings, "m", chosen).capabilities == chosen


def test_build_model_refuses_an_unknown_kind_naming_the_known_ones() -> None:
    settings = ProviderSettings(name="mystery", kind="carrier-pigeon")
    with pytest.raises(ConfigurationError, match=r"'carrier-pigeon'.*anthropic, openai"):
        build_model(settings, "m")


def test_importing_providers_does_not_import_the_sdks() -> None:
    code = (
        "import sys\n"
        "from legato.ai.model import ProviderSettings\n"
        "from legato.ai.providers import build_model\n"
        "for kind in ('openai', 'anthropic'):\n"
        "    build_model(ProviderSettings(name=kind, kind=kind, api_key='k'), 'm')\n"
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx2') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_sdk_names_the_extra_to_install(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, kind, None)  # import now fails as if not installed
    with pytest.raises(ConfigurationError, match=rf"pip install 'legato\[{kind}\]'"):
        ask(connect(kind, "http://127.0.0.1:1"), user("hi"))


# -- chat ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_chat_returns_text_usage_model_and_finish_reason(kind: str, katan: Katan) -> None:
    response = ask(connect(kind, katan.url), user("hello there legato"))
    assert response.text.startswith(f"[echo] model={MODEL}")
    assert response.text.endswith("User: hello there legato")
    assert response.model == MODEL
    assert response.finish_reason == ("stop" if kind == "openai" else "end_turn")
    assert response.tool_calls == ()
    usage = response.usage
    assert usage.input_tokens == words("hello there legato") == 3
    assert usage.output_tokens == words(response.text)
    assert (usage.cached_input_tokens, usage.cache_write_tokens, usage.reasoning_tokens) == (
        0,
        0,
        0,
    )
    assert usage.requests == 1
    if kind == "openai":  # what the server sent, field for field
        assert usage.raw == {
            "prompt_tokens": 3,
            "completion_tokens": usage.output_tokens,
            "total_tokens": 3 + usage.output_tokens,
        }
    else:
        assert usage.raw == {"input_tokens": 3, "output_tokens": usage.output_tokens}


@pytest.mark.parametrize("kind", KINDS)
def test_temperature_and_max_tokens_reach_the_server(kind: str, katan: Katan) -> None:
    request = ModelRequest(
        messages=(Message(role="user", content="hi"),), temperature=0.2, max_tokens=77
    )
    assert "max_tokens=77 temperature=0.2" in ask(connect(kind, katan.url), request).text


def test_anthropic_sends_max_tokens_1024_when_the_request_leaves_it_open(katan: Katan) -> None:
    assert "max_tokens=1024" in ask(connect("anthropic", katan.url), user("hi")).text


@pytest.mark.parametrize("kind", KINDS)
def test_system_prompt(kind: str, katan_wire: Katan) -> None:
    request = ModelRequest(system="You are terse.", messages=(Message(role="user", content="hi"),))
    response, seen = on_the_wire(kind, katan_wire, request)
    body = seen["request_body"]
    if kind == "openai":
        assert body["messages"] == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hi"},
        ]
    else:
        assert body["system"] == "You are terse."
        assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "messages=2" in response.text  # the server saw the system prompt and one turn
    assert response.usage.input_tokens == words("You are terse.", "hi")


@pytest.mark.parametrize("kind", KINDS)
def test_key_comes_from_the_environment_and_goes_in_the_right_header(
    kind: str, katan_wire: Katan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_TEST_KEY", KEY)
    _, seen = on_the_wire(
        kind,
        katan_wire,
        user("hi"),
        key=None,
        key_env="LEGATO_TEST_KEY",
        headers=(("x-team", "legato"),),
    )
    headers = seen["request_headers"]
    assert seen["status_code"] == 200  # the server checks the key's value
    assert headers["x-team"] == "legato"
    assert headers["x-stainless-retry-count"] == "0"
    if kind == "anthropic":
        assert headers["x-api-key"] == KEY
    else:
        assert headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("kind", KINDS)
def test_timeouts_from_settings_and_per_call_reach_the_sdk(kind: str, katan_wire: Katan) -> None:
    _, seen = on_the_wire(kind, katan_wire, user("hi"), timeout=42.0)
    assert seen["request_headers"]["x-stainless-read-timeout"] == "42.0"

    async def body(model: Model) -> dict[str, Any]:
        async with Wire(katan_wire) as wire:
            await model.request(user("hi"), timeout=7.5)
            return await wire.received(PATHS[kind])

    seen = run(connect(kind, katan_wire.url, timeout=42.0), body)
    assert seen["request_headers"]["x-stainless-read-timeout"] == "7.5"


# -- tools --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_tools_are_offered_and_the_call_comes_back_parsed(kind: str, katan_wire: Katan) -> None:
    request = ModelRequest(messages=(Message(role="user", content="weather?"),), tools=(WEATHER,))
    response, seen = on_the_wire(kind, katan_wire, request)
    body = seen["request_body"]
    if kind == "openai":
        assert body["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "The forecast for a city.",
                    "parameters": WEATHER.parameters,
                },
            }
        ]
        assert response.finish_reason == "tool_calls"
    else:
        assert body["tools"] == [
            {
                "name": "weather",
                "description": "The forecast for a city.",
                "input_schema": WEATHER.parameters,
            }
        ]
        assert response.finish_reason == "tool_use"
    assert "tool_choice" not in body  # the model chooses
    (call,) = response.tool_calls
    assert call.name == "weather"
    assert call.arguments == {"city": "test_city", "days": 1}  # katan's dummy arguments
    assert call.id


def test_openai_conversation_carries_tool_calls_and_results(katan_wire: Katan) -> None:
    request = ModelRequest(
        messages=(
            Message(role="user", content="weather in Paris?"),
            Message(
                role="assistant",
                tool_calls=(ToolCall(id="call_1", name="weather", arguments={"city": "Paris"}),),
            ),
            Message(role="tool", tool_call_id="call_1", content="sunny and warm"),
        )
    )
    response, seen = on_the_wire("openai", katan_wire, request)
    assert seen["request_body"]["messages"] == [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": "",  # never null: strict servers (llama-cpp-python) answer 500 to it
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny and warm"},
    ]
    assert "messages=3" in response.text
    assert response.usage.input_tokens == words("weather in Paris?", "sunny and warm")


def test_anthropic_conversation_merges_consecutive_tool_results(katan_wire: Katan) -> None:
    request = ModelRequest(
        messages=(
            Message(role="user", content="weather in Paris and Oslo?"),
            Message(
                role="assistant",
                content="Let me look.",
                tool_calls=(
                    ToolCall(id="toolu_1", name="weather", arguments={"city": "Paris"}),
                    ToolCall(id="toolu_2", name="weather", arguments={"city": "Oslo"}),
                ),
            ),
            Message(role="tool", tool_call_id="toolu_1", content="sunny"),
            Message(role="tool", tool_call_id="toolu_2", content="rainy"),
        )
    )
    response, seen = on_the_wire("anthropic", katan_wire, request)
    assert seen["request_body"]["messages"] == [
        {"role": "user", "content": "weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rainy"},
            ],
        },
    ]
    # katan reads the tool results as the last user turn and echoes them
    assert response.text.endswith("User: sunny\nrainy")
    assert "messages=3" in response.text


# -- structured output --------------------------------------------------------------------


def forecast(mode: str) -> ModelRequest:
    return ModelRequest(
        system="Be brief.",
        messages=(Message(role="user", content="forecast for Paris"),),
        output=OutputSpec(name="Forecast", schema=FORECAST_SCHEMA, mode=mode),  # type: ignore[arg-type]
    )


def test_openai_native_output_asks_for_a_json_schema_response(katan_wire: Katan) -> None:
    response, seen = on_the_wire("openai", katan_wire, forecast("native"))
    body = seen["request_body"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Forecast", "schema": FORECAST_SCHEMA},
    }
    assert "tools" not in body and "tool_choice" not in body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert response.tool_calls == ()  # katan does not enforce schemas: it echoes
    assert response.text.endswith("User: forecast for Paris")


@pytest.mark.parametrize("kind", KINDS)
def test_tool_output_forces_a_tool_with_the_schema(kind: str, katan_wire: Katan) -> None:
    response, seen = on_the_wire(kind, katan_wire, forecast("tool"))
    body = seen["request_body"]
    assert "response_format" not in body
    if kind == "openai":
        assert body["tools"][-1]["function"]["name"] == "Forecast"
        assert body["tools"][-1]["function"]["parameters"] == FORECAST_SCHEMA
        assert body["tool_choice"] == {"type": "function", "function": {"name": "Forecast"}}
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert body["tools"][-1]["name"] == "Forecast"
        assert body["tools"][-1]["input_schema"] == FORECAST_SCHEMA
        assert body["tool_choice"] == {"type": "tool", "name": "Forecast"}
        assert body["system"] == "Be brief."
    # the provider hands back the output tool call as it came; the caller interprets it
    (call,) = response.tool_calls
    assert call.name == "Forecast"
    assert call.arguments == {"summary": "test_summary", "high": 1}


def test_anthropic_native_output_sends_a_closed_schema_in_output_config(
    katan_wire: Katan,
) -> None:
    _, seen = on_the_wire("anthropic", katan_wire, forecast("native"))
    body = seen["request_body"]
    assert "tools" not in body and "tool_choice" not in body
    closed = {**FORECAST_SCHEMA, "additionalProperties": False}  # structured outputs need it
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": closed}}
    assert body["system"] == "Be brief."


def test_openai_json_mode_enforces_json_and_asks_for_the_schema(katan_wire: Katan) -> None:
    _, seen = on_the_wire("openai", katan_wire, forecast("json_object"))
    body = seen["request_body"]
    assert body["response_format"] == {"type": "json_object"}
    assert "tools" not in body
    system = body["messages"][0]["content"]
    assert system.startswith("Be brief.\n\n")
    assert json.dumps(FORECAST_SCHEMA, sort_keys=True) in system


@pytest.mark.parametrize("kind", KINDS)
def test_prompted_output_instructs_in_the_system_prompt_only(kind: str, katan_wire: Katan) -> None:
    response, seen = on_the_wire(kind, katan_wire, forecast("prompted"))
    body = seen["request_body"]
    assert "response_format" not in body and "tools" not in body and "tool_choice" not in body
    system = body["messages"][0]["content"] if kind == "openai" else body["system"]
    assert system.startswith("Be brief.\n\n")
    assert "Answer only with a JSON value (Forecast)" in system
    assert json.dumps(FORECAST_SCHEMA, sort_keys=True) in system
    assert response.usage.input_tokens == words(system, "forecast for Paris")


# -- streaming ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_streaming_aggregates_text_and_usage(kind: str, katan: Katan) -> None:
    plain = ask(connect(kind, katan.url), user("stream me please"))
    request = ModelRequest(
        messages=(Message(role="user", content="stream me please"),), stream=True
    )
    streamed = ask(connect(kind, katan.url), request)
    assert streamed.text.endswith("User: stream me please")
    assert streamed.text.split("\n")[1:] == plain.text.split("\n")[1:]  # the line after the time
    assert streamed.model == MODEL
    assert streamed.finish_reason == plain.finish_reason
    assert streamed.usage.input_tokens == words("stream me please")
    assert streamed.usage.output_tokens == words(streamed.text)
    assert streamed.usage.requests == 1
    assert streamed.usage.raw is not None


def test_anthropic_streaming_aggregates_tool_use_input(katan: Katan) -> None:
    request = ModelRequest(
        messages=(Message(role="user", content="weather?"),), tools=(WEATHER,), stream=True
    )
    response = ask(connect("anthropic", katan.url), request)
    (call,) = response.tool_calls
    assert (call.name, call.arguments) == ("weather", {"city": "test_city", "days": 1})
    assert response.text.endswith("User: weather?")
    assert response.finish_reason == "tool_use"
    assert response.usage.input_tokens == 1
    assert response.usage.output_tokens == words(response.text)


def test_openai_stream_without_events_is_a_bad_response(katan: Katan) -> None:
    # katan answers a streamed request that offers tools with a plain JSON body, no SSE events;
    # the SDK then yields nothing, which must not pass for an empty answer
    request = ModelRequest(
        messages=(Message(role="user", content="weather?"),), tools=(WEATHER,), stream=True
    )
    error = failure(connect("openai", katan.url), request)
    assert error.kind == "bad_response"
    assert "stream ended" in str(error)


# -- failures -----------------------------------------------------------------------------


def one_request(server: Katan, call: Callable[[], ModelError]) -> ModelError:
    """Run ``call`` and check the server saw exactly one request: SDK retries are off."""
    before = server.requests_served()
    error = call()
    assert server.requests_served() - before == 1
    return error


@pytest.mark.parametrize("kind", KINDS)
def test_http_500_is_a_server_error_tried_once(kind: str, katan_500: Katan) -> None:
    error = one_request(katan_500, lambda: failure(connect(kind, katan_500.url), user("hi")))
    assert (error.kind, error.status, error.transient) == ("server", 500, True)
    assert error.deployment == f"{kind}-test:{MODEL}"
    # the status and what the server said are in the message
    assert str(error).startswith(f"{kind}-test:{MODEL}: server (HTTP 500): ")


def test_the_request_count_would_see_sdk_retries(katan_500: Katan) -> None:
    import openai

    async def with_one_retry() -> None:
        client = openai.AsyncOpenAI(base_url=f"{katan_500.url}/v1", api_key=KEY, max_retries=1)
        try:
            with pytest.raises(openai.InternalServerError):
                await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "hi"}]
                )
        finally:
            await client.close()

    before = katan_500.requests_served()
    asyncio.run(with_one_retry())
    assert katan_500.requests_served() - before == 2


@pytest.mark.parametrize("kind", KINDS)
def test_http_429_is_a_rate_limit_tried_once(kind: str, katan_429: Katan) -> None:
    error = one_request(katan_429, lambda: failure(connect(kind, katan_429.url), user("hi")))
    assert (error.kind, error.status, error.transient) == ("rate_limit", 429, True)


@pytest.mark.parametrize("kind", KINDS)
def test_http_504_is_a_server_error_tried_once(kind: str, katan_504: Katan) -> None:
    # both SDKs report a 504 as an internal server error (anthropic: GatewayTimeoutError)
    error = one_request(katan_504, lambda: failure(connect(kind, katan_504.url), user("hi")))
    assert (error.kind, error.status) == ("server", 504)


@pytest.mark.parametrize("kind", KINDS)
def test_a_slow_answer_is_a_timeout(kind: str, katan_slow: Katan) -> None:
    error = failure(connect(kind, katan_slow.url), user("hi"), timeout=0.3)
    assert (error.kind, error.status, error.transient) == ("timeout", None, True)
    # the settings' timeout applies when the call gives none
    error = failure(connect(kind, katan_slow.url, timeout=0.3), user("hi"))
    assert error.kind == "timeout"


@pytest.mark.parametrize("kind", KINDS)
def test_cancelling_a_call_cancels_it(kind: str, katan_slow: Katan) -> None:
    async def cancelled(model: Model) -> bool:
        call = asyncio.create_task(model.request(user("hi")))
        await asyncio.sleep(0.2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):  # not turned into a ModelError
            await call
        return call.cancelled()

    assert run(connect(kind, katan_slow.url), cancelled)


@pytest.mark.parametrize("kind", KINDS)
def test_a_closed_port_is_a_connection_error(kind: str) -> None:
    error = failure(connect(kind, f"http://127.0.0.1:{free_port()}"), user("hi"))
    assert (error.kind, error.status, error.transient) == ("connection", None, True)


@pytest.mark.parametrize(
    ("kind", "env"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_a_missing_key_is_an_auth_error_naming_the_variable(
    kind: str, env: str, katan: Katan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(env, raising=False)
    error = failure(connect(kind, katan.url, key=None, key_env=env), user("hi"))
    assert error.kind == "auth"
    assert f"set the environment variable {env}" in str(error)
    assert not error.transient


@pytest.mark.parametrize("kind", KINDS)
def test_a_rejected_key_is_an_auth_error(kind: str, katan_wire: Katan) -> None:
    error = failure(connect(kind, katan_wire.url, key="wrong-key"), user("hi"))
    assert (error.kind, error.status) == ("auth", 401)
    assert "invalid API key" in str(error)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("body", [b"<html>not json</html>", b'{"id": "x", "object": "nothing"}'])
def test_a_garbage_answer_is_a_bad_response(
    kind: str, body: bytes, stub_server: Callable[[bytes], Stub]
) -> None:
    stub = stub_server(body)
    error = failure(connect(kind, stub.url), user("hi"))
    assert (error.kind, error.status, error.transient) == ("bad_response", None, False)
    assert stub.requests == 1


def test_openai_embeddings_unknown_to_the_server_are_not_found(katan: Katan) -> None:
    model = connect("openai", katan.url)
    with pytest.raises(ModelError) as info:
        run(model, lambda m: m.embed(["a text"]))
    assert (info.value.kind, info.value.status) == ("not_found", 404)


def test_anthropic_makes_no_embeddings(katan: Katan) -> None:
    with pytest.raises(ModelError) as info:
        run(connect("anthropic", katan.url), lambda m: m.embed(["a text"]))
    assert info.value.kind == "bad_request"


# -- mapping helpers (no server) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "bad_request"),
        (401, "auth"),
        (403, "auth"),
        (404, "not_found"),
        (408, "timeout"),
        (413, "bad_request"),
        (422, "bad_request"),
        (429, "rate_limit"),
        (500, "server"),
        (503, "server"),
        (529, "server"),
    ],
)
def test_status_kind(status: int, kind: str) -> None:
    assert status_kind(status) == kind


def test_tool_arguments_must_be_a_json_object() -> None:
    assert json_arguments('{"a": 1}', tool="t", deployment="p:m") == {"a": 1}
    assert json_arguments("", tool="t", deployment="p:m") == {}  # a call without arguments
    for raw in ("{not json", "[1, 2]", '"text"'):
        with pytest.raises(ModelError) as info:
            json_arguments(raw, tool="t", deployment="p:m")
        assert info.value.kind == "bad_response"
        assert "'t'" in str(info.value)


def test_openai_usage_buckets_from_detailed_usage() -> None:
    from openai.types import CompletionUsage

    from legato.ai.providers.openai import _usage

    usage = CompletionUsage.model_validate(
        {
            "prompt_tokens": 100,
            "completion_tokens": 40,
            "total_tokens": 140,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 25},
        }
    )
    mapped = _usage(usage)
    assert (mapped.input_tokens, mapped.cached_input_tokens, mapped.cache_write_tokens) == (
        100,
        64,
        0,
    )
    assert (mapped.output_tokens, mapped.reasoning_tokens, mapped.requests) == (40, 25, 1)
    assert mapped.raw is not None and mapped.raw["prompt_tokens_details"] == {"cached_tokens": 64}
    none = _usage(None)  # a stream whose server sent no usage: no invented numbers
    assert (none.requests, none.total_tokens, none.raw) == (1, 0, None)


def test_anthropic_usage_counts_cached_prompt_tokens_as_input() -> None:
    from anthropic.types import Usage as AnthropicUsage

    from legato.ai.providers.anthropic import _usage

    usage = AnthropicUsage.model_validate(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 300,
            "cache_creation_input_tokens": 50,
            "output_tokens": 20,
        }
    )
    mapped = _usage(usage)
    assert mapped.input_tokens == 360  # every prompt token, cached or not
    assert (mapped.cached_input_tokens, mapped.cache_write_tokens) == (300, 50)
    assert (mapped.output_tokens, mapped.requests) == (20, 1)
    assert mapped.raw == {
        "input_tokens": 10,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 50,
        "output_tokens": 20,
    }
