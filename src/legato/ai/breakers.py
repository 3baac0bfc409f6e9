"""Circuit breakers per deployment, shared by every worker through the store.

After ``failures`` transient errors in a row (counted across all workers of the database) a
deployment is skipped for ``cooldown``; then the breaker is half-open and exactly one call,
the probe, goes through: its success closes the breaker for everyone, its failure opens it
for another cooldown. Other calls meanwhile skip the deployment. A probe whose worker dies
holds the half-open state for one cooldown at most (the probe's lease).

Times come from the call's clock (wall time for real workers, so processes agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.store.base import BreakerStore


@dataclass(frozen=True, slots=True)
class Admission:
    """May a call go to a deployment: ``refused`` says why not; ``tracked``: the store holds
    failures of it (a success must clear them); ``probe``: this call is the half-open probe."""

    refused: str | None = None
    tracked: bool = False
    probe: bool = False


class Breakers:
    """The breaker settings of an app; the state lives in the store."""

    def __init__(self, failures: int, cooldown: float) -> None:
        self.failures = failures
        self.cooldown = cooldown

    async def admit(self, store: BreakerStore, deployment: str, now: float) -> Admission:
        """Whether a call may go to ``deployment`` now (one read; a probe takes one write)."""
        state = await store.breaker(deployment)
        if state is None:
            return Admission()
        if state.open_until is None:
            return Admission(tracked=True)
        if now < state.open_until:
            return Admission(
                f"circuit open after {state.failures} failures in a row"
                f" ({state.open_until - now:.1f}s of cooldown left)",
                tracked=True,
            )
        if await store.breaker_probe(deployment, now, self.cooldown):
            return Admission(tracked=True, probe=True)
        return Admission(
            f"circuit half-open after {state.failures} failures in a row: another call is"
            " probing it",
            tracked=True,
        )

    async def failure(self, store: BreakerStore, deployment: str, now: float) -> None:
        await store.breaker_failure(deployment, now, self.failures, self.cooldown)

    async def success(self, store: BreakerStore, deployment: str) -> None:
        await store.breaker_success(deployment)
