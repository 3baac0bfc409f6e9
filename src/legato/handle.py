"""RunHandle: a reference to one run, to ask for its status and wait for its result."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from legato import serde
from legato.errors import ResultTimeout, RunCancelled, RunFailed
from legato.store.base import TERMINAL, RunRecord

if TYPE_CHECKING:
    from legato.app import App
    from legato.engine.definitions import WorkflowDef
    from legato.ops import Timeline

R = TypeVar("R")


class RunHandle(Generic[R]):
    """Returned by ``app.start``; valid in any process that opens the same database."""

    def __init__(self, app: App, run_id: str, workflow: WorkflowDef | None) -> None:
        self.app = app
        self.run_id = run_id
        self._workflow = workflow

    def __repr__(self) -> str:
        return f"<legato.RunHandle {self.run_id!r}>"

    async def describe_async(self) -> RunRecord:
        """The stored run: status, timestamps, output or error."""
        return await (await self.app.ops_async()).get_run(self.run_id)

    def describe(self) -> RunRecord:
        return self.app._sync(self.describe_async())

    async def timeline_async(self) -> Timeline:
        """The run and its journal, entry by entry (what ``legato show`` prints)."""
        return await (await self.app.ops_async()).timeline(self.run_id)

    def timeline(self) -> Timeline:
        """The run and its journal, entry by entry (what ``legato show`` prints)."""
        return self.app._sync(self.timeline_async())

    async def status_async(self) -> str:
        return (await self.describe_async()).status

    def status(self) -> str:
        """``pending``, ``running``, ``waiting``, ``completed``, ``failed`` or ``cancelled``."""
        return self.app._sync(self.status_async())

    async def result_async(self, timeout: timedelta | float | None = None) -> R:
        """Wait for the run to end; return its result or raise RunFailed / RunCancelled.

        Someone must be executing the run: a worker process, ``app.run`` or
        ``app.run_until_idle``. ``timeout`` (seconds) raises :class:`legato.ResultTimeout`.
        """
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        ops = await self.app.ops_async()
        # Returns when the run ends (PostgreSQL tells whoever waits; SQLite polls, and hears
        # at once of ends in this process), or when the timeout has passed.
        run = await ops.store.wait_for_end(self.run_id, timeout)
        if run is None:
            run = await ops.get_run(self.run_id)  # raises UnknownRun with the usual message
        if run.status in TERMINAL:
            return self._outcome(run)
        raise ResultTimeout(f"run {self.run_id!r} is still {run.status} after {timeout:g}s")

    def result(self, timeout: timedelta | float | None = None) -> R:
        """Wait for the run to end; return its result or raise RunFailed / RunCancelled."""
        return self.app._sync(self.result_async(timeout))

    def _outcome(self, run: RunRecord) -> R:
        if run.status == "failed":
            raise RunFailed.from_error(run.run_id, run.workflow, serde.loads(run.error) or {})
        if run.status == "cancelled":
            raise RunCancelled(run.run_id)
        workflow = self._workflow or self.app.workflows.get(run.workflow)
        annotation: Any = workflow.returns if workflow is not None else Any
        result: R = serde.decode(run.output, annotation, what=f"the result of run {run.run_id!r}")
        return result
