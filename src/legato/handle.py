"""RunHandle: a reference to one run, to ask for its status and wait for its result."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from legato import serde
from legato.durations import to_seconds
from legato.errors import ResultTimeout, RunCancelled, RunFailed
from legato.ops import Timeline
from legato.store.base import TERMINAL, RunRecord
from legato.sync import blocking

if TYPE_CHECKING:
    from legato.app import App
    from legato.engine.definitions import WorkflowDef

R = TypeVar("R")
T = TypeVar("T")


class RunHandle(Generic[R]):
    """Returned by ``app.start``; valid in any process that opens the same database."""

    def __init__(self, app: App, run_id: str, workflow: WorkflowDef | None) -> None:
        self.app = app
        self.run_id = run_id
        self._workflow = workflow

    def __repr__(self) -> str:
        return f"<legato.RunHandle {self.run_id!r}>"

    def _sync(self, coro: Coroutine[Any, Any, T], /) -> T:
        return self.app._sync(coro)

    async def describe_async(self) -> RunRecord:
        """The stored run: status, timestamps, output or error."""
        return await (await self.app.ops_async()).runs.get(self.run_id)

    async def timeline_async(self) -> Timeline:
        """The run and its journal, entry by entry (what ``legato show`` prints)."""
        return await (await self.app.ops_async()).runs.timeline(self.run_id)

    async def status_async(self) -> str:
        """``pending``, ``running``, ``waiting``, ``completed``, ``failed`` or ``cancelled``;
        ``paused`` for a pending or waiting run of a paused workflow."""
        return await (await self.app.ops_async()).runs.status(self.run_id)

    async def custom_status_async(self) -> Any:
        """What the run's workflow last gave ``ctx.set_status`` (None: nothing yet)."""
        return await (await self.app.ops_async()).runs.custom_status(self.run_id)

    async def result_async(self, timeout: timedelta | float | None = None) -> R:
        """Wait for the run to end; return its result or raise RunFailed / RunCancelled.

        Someone must be executing the run: a worker process, ``app.run`` or
        ``app.run_until_idle``. ``timeout`` (seconds) raises :class:`legato.ResultTimeout`.
        """
        seconds = None if timeout is None else to_seconds(timeout, "result timeout")
        ops = await self.app.ops_async()
        # Returns when the run ends (PostgreSQL tells whoever waits; SQLite polls, and hears
        # at once of ends in this process), or when the timeout has passed.
        run = await ops.store.wait_for_end(self.run_id, seconds)
        if run is None:
            run = await ops.runs.get(self.run_id)  # raises UnknownRun with the usual message
        if run.status in TERMINAL:
            return self._outcome(run)
        raise ResultTimeout(f"run {self.run_id!r} is still {run.status} after {seconds:g}s")

    describe = blocking(describe_async)
    timeline = blocking(timeline_async)
    status = blocking(status_async)
    custom_status = blocking(custom_status_async)
    result = blocking(result_async)

    def _outcome(self, run: RunRecord) -> R:
        if run.status == "failed":
            raise RunFailed.from_error(run.run_id, run.workflow, serde.loads(run.error) or {})
        if run.status == "cancelled":
            raise RunCancelled(run.run_id)
        workflow = self._workflow or self.app.workflows.get(run.workflow)
        annotation: Any = workflow.returns if workflow is not None else Any
        result: R = serde.decode(run.output, annotation, what=f"the result of run {run.run_id!r}")
        return result
