"""What legato learned about each deployment by talking to it, shared by every worker.

Servers that speak one protocol support different parts of it: llama-cpp-python's server
refuses a JSON-Schema ``response_format`` that vLLM and OpenAI accept, chat templates add
tokens to every prompt that no client-side count sees. What a call finds out is written to
the store (``DeploymentStore``), so each fact is learned once for every worker, and kept in
memory per process after the first read:

- ``rejects:<feature>``: the server rejected the feature (``output.native``,
  ``output.json_object``, ``output.tool``) as unsupported; the value says what it answered.
  Structured output is then asked for the next way (``structured.output_modes``).
- ``template_tokens``: the most prompt tokens the server counted beyond legato's estimate of
  a call without tools (its chat template's system prompt and markers); budgets and context
  windows add it to every estimate.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from legato.errors import StoreError

if TYPE_CHECKING:
    from legato.store.base import DeploymentStore

log = logging.getLogger("legato.ai")

_REJECTS = "rejects:"
_TEMPLATE = "template_tokens"


@dataclass(frozen=True, slots=True)
class Known:
    """What is known of one deployment."""

    #: features its server rejected as unsupported
    rejected: frozenset[str] = frozenset()
    #: prompt tokens its chat template adds beyond the estimate; None: not measured yet
    template_tokens: int | None = None

    @classmethod
    def from_facts(cls, facts: dict[str, str]) -> Known:
        rejected = frozenset(k[len(_REJECTS) :] for k in facts if k.startswith(_REJECTS))
        template = facts.get(_TEMPLATE)
        return cls(rejected, None if template is None else int(json.loads(template)))


class Learned:
    """The facts of every deployment this process called, read from the store once each."""

    def __init__(self) -> None:
        self._known: dict[str, Known] = {}
        self._lock = threading.Lock()
        #: the last failure of each deployment in this process (not stored: it is news, not
        #: a fact), so a call its circuit breaker skips can still say what the server said
        self._failures: dict[str, str] = {}

    def failed(self, deployment: str, error: str) -> None:
        with self._lock:
            self._failures[deployment] = error

    def last_failure(self, deployment: str) -> str | None:
        with self._lock:
            return self._failures.get(deployment)

    async def known(self, store: DeploymentStore, deployment: str) -> Known:
        with self._lock:
            cached = self._known.get(deployment)
        if cached is not None:
            return cached
        known = Known.from_facts(await store.deployment_facts(deployment))
        with self._lock:
            return self._known.setdefault(deployment, known)

    async def rejected(
        self, store: DeploymentStore, deployment: str, feature: str, said: str, now: float
    ) -> Known:
        """The server of ``deployment`` rejected ``feature``: never ask it that way again."""
        known = self._update(deployment, lambda k: replace(k, rejected=k.rejected | {feature}))
        await self._write(store, deployment, _REJECTS + feature, json.dumps(said), now)
        return known

    async def measured(
        self, store: DeploymentStore, deployment: str, estimated: int, reported: int, now: float
    ) -> None:
        """A call estimated at ``estimated`` prompt tokens was counted ``reported`` by the
        server: keep the largest difference seen (never below 0) as its template overhead."""
        extra = max(reported - estimated, 0)
        before = (await self.known(store, deployment)).template_tokens
        if before is not None and extra <= before:
            return
        self._update(deployment, lambda k: replace(k, template_tokens=extra))
        await self._write(store, deployment, _TEMPLATE, json.dumps(extra), now)

    def _update(self, deployment: str, change: Callable[[Known], Known]) -> Known:
        with self._lock:
            known = change(self._known.get(deployment, Known()))
            self._known[deployment] = known
            return known

    @staticmethod
    async def _write(
        store: DeploymentStore, deployment: str, fact: str, value: str, now: float
    ) -> None:
        try:  # what this process learned holds for it anyway; the others will learn it too
            await store.learn_about_deployment(deployment, fact, value, now)
        except StoreError as exc:
            log.warning("could not record what %s supports: %s", deployment, exc)
