"""The App: the registry of workflows and steps, its configuration, and what users call.

Every method that talks to the database is written once, as ``*_async``; its sync twin is
derived with :func:`legato.sync.blocking` and runs the same coroutine on a private background
loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import inspect
import logging
import os
import signal
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from pydantic import ValidationError

from legato.ai.config import AIConfig, load_config
from legato.ai.registry import Models
from legato.clock import Clock, SystemClock
from legato.context import Context
from legato.crontab import Cron, check_policies
from legato.durations import to_seconds
from legato.engine.definitions import (
    Step,
    StepDecorator,
    StepDef,
    Tool,
    ToolDef,
    WorkflowDef,
    qualified_name,
)
from legato.engine.evaluations import EVALUATE_WORKFLOW
from legato.errors import ConfigurationError, UnknownWorkflow
from legato.evals.evaluators import EvaluatorDef, EvaluatorFn, Mode
from legato.governance import Policy
from legato.governance.monitors import Monitor
from legato.handle import RunHandle
from legato.ops import Operations
from legato.oversight import Approvals, Autonomy
from legato.retry import NO_RETRY, RetryPolicy
from legato.schedules import Schedules
from legato.serde import DEFAULT_PAYLOAD_LIMIT
from legato.store import DEFAULT_URL, Store, open_store, redact_url
from legato.store.usage import UsageTotals
from legato.sync import Portal, blocking, run_coroutine
from legato.unmatched import unmatched_controls
from legato.worker import Worker, wait_for_database

log = logging.getLogger("legato.app")
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
WorkflowFn = Callable[Concatenate[Context, P], Awaitable[R]]
F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("legato.app")


# Apps whose background loop holds connections: closed at interpreter exit, so pools and
# listeners shut down cleanly instead of being destroyed mid-flight.
_log = logging.getLogger("legato.worker")
_LIVE_APPS: weakref.WeakSet[App] = weakref.WeakSet()


@atexit.register
def _close_live_apps() -> None:
    for app in list(_LIVE_APPS):
        with contextlib.suppress(Exception):
            app.close()


class _Runtime:
    """What the app holds per event loop: a store connection and that loop's workers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, store: Store, ops: Operations) -> None:
        self.loop = loop
        self.store = store
        self.ops = ops
        self.workers: set[Worker] = set()


class App:
    """A legato application: workflows, steps and the database that makes them durable.

    The database comes from ``database_url``, else ``LEGATO_DATABASE_URL``, else
    ``sqlite:///./legato.db``. ``durability`` says what a crash may cost, the same on both
    backends:

    - ``"normal"`` (the default): a crash of a process loses nothing. A crash of the machine
      that holds the database (power loss, OS crash, on PostgreSQL also a server crash or a
      failover) may lose the last journal writes, never a commit made after them: those steps
      run again when the run resumes, as after a worker's SIGKILL. SQLite runs in WAL mode with
      ``synchronous=NORMAL``; on PostgreSQL the journal's own connection commits step results
      with ``synchronous_commit=off``, and every other write (run creation, events, approvals,
      decisions, parks, finishes) commits as the server is configured (``on`` by default).
    - ``"full"``: every commit waits for its flush to disk (SQLite ``synchronous=FULL``,
      PostgreSQL ``synchronous_commit=on`` on all of legato's connections), so journals also
      survive power loss, at the cost of one disk flush per step.

    ``payload_limit`` (bytes, or None for none) bounds every stored input, result and event
    payload.
    """

    def __init__(
        self,
        name: str,
        database_url: str | None = None,
        *,
        durability: str = "normal",
        clock: Clock | None = None,
        payload_limit: int | None = DEFAULT_PAYLOAD_LIMIT,
        policy: Policy | str | os.PathLike[str] | None = None,
        config: AIConfig | str | os.PathLike[str] | None = None,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ConfigurationError(f"durability must be 'normal' or 'full', got {durability!r}")
        self.name = name
        self.database_url = database_url or os.environ.get("LEGATO_DATABASE_URL") or DEFAULT_URL
        self.durability = durability
        self.clock: Clock = clock or SystemClock()
        if payload_limit is not None and payload_limit < 64:
            raise ConfigurationError(
                f"payload_limit must be at least 64 bytes, got {payload_limit}"
            )
        self.payload_limit = payload_limit
        if policy is not None and not isinstance(policy, Policy):
            policy = Policy.from_file(policy)
        #: the intent, boundaries and rules every tool call is checked against (None: defaults)
        self.policy: Policy | None = policy
        if not isinstance(config, AIConfig):
            config = load_config(config)
        #: deployments and aliases for ctx.llm / ctx.embed (legato.toml, or add them here)
        self.models = Models(config)
        self.tools: dict[str, ToolDef] = {}
        self.workflows: dict[str, WorkflowDef] = {}
        self.steps: dict[str, StepDef] = {}
        #: evaluators by name (``@app.evaluator``)
        self.evaluators: dict[str, EvaluatorDef] = {}
        self._monitors: dict[str, Monitor] = {}
        # @app.schedule: (workflow function, cron, options), stored when a worker starts
        self._declared: list[tuple[Callable[..., Any], str, dict[str, Any]]] = []
        self._runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Runtime] = (
            weakref.WeakKeyDictionary()
        )
        self._opening: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Task[_Runtime]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._portal: Portal | None = None
        _LIVE_APPS.add(self)

    @property
    def autonomy(self) -> Autonomy:
        """Grant or revoke autonomy per actor at run time (audited)."""
        return Autonomy(self)

    async def pause_async(self, workflow: str, *, by: str, reason: str) -> bool:
        """Kill switch: no new entry of ``workflow`` starts until ``resume``."""
        changed = await (await self.ops_async()).control.pause(workflow, by=by, reason=reason)
        self._notify_workers()
        return changed

    async def resume_async(self, workflow: str, *, by: str, reason: str = "resumed") -> bool:
        """Undo ``pause``: the workflow's runs carry on where they stopped."""
        changed = await (await self.ops_async()).control.resume(workflow, by=by, reason=reason)
        self._notify_workers()
        return changed

    pause = blocking(pause_async)
    resume = blocking(resume_async)

    @property
    def schedules(self) -> Schedules:
        """Add, list, pause, resume, trigger and delete schedules at run time (audited)."""
        return Schedules(self)

    @property
    def approvals(self) -> Approvals:
        """List, inspect and decide approvals (``app.approvals.decide(id, True, by="ann")``)."""
        return Approvals(self)

    def __repr__(self) -> str:
        return f"<legato.App {self.name!r} database={redact_url(self.database_url)!r}>"

    # -- registration -------------------------------------------------------------------
    @overload
    def workflow(self, fn: WorkflowFn[P, R], /) -> WorkflowFn[P, R]: ...

    @overload
    def workflow(
        self, fn: None = None, /, *, name: str | None = None
    ) -> Callable[[WorkflowFn[P, R]], WorkflowFn[P, R]]: ...

    def workflow(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
        """Register ``async def f(ctx: legato.Context, ...)`` as a durable workflow.

        Use it as ``@app.workflow`` or ``@app.workflow(name="...")``.
        """
        if fn is not None and not callable(fn):
            raise ConfigurationError(
                f"@app.workflow takes the name as a keyword: @app.workflow(name={fn!r})"
            )

        def register(fn: WorkflowFn[P, R]) -> WorkflowFn[P, R]:
            definition = WorkflowDef(qualified_name(fn, name), fn)
            existing = self.workflows.get(definition.name)
            if existing is not None and existing.fn is not fn:
                raise ConfigurationError(f"workflow {definition.name!r} is registered twice")
            self.workflows[definition.name] = definition
            fn.__legato_workflow__ = definition  # type: ignore[attr-defined]
            return fn

        return register(fn) if fn is not None else register

    def schedule(
        self,
        cron: str,
        *,
        id: str | None = None,
        tz: str = "UTC",
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        catchup: str = "one",
        overlap: str = "skip",
    ) -> Callable[[F], F]:
        """Start the decorated workflow on every tick of ``cron`` (read in zone ``tz``).

        Put it above ``@app.workflow``. Each tick starts one run, whatever the number of
        workers, with id ``<id>@<tick in UTC>`` (``id`` defaults to the workflow's name) and
        input ``args``/``kwargs``. ``catchup`` says which ticks missed while no worker ran
        fire: ``"one"`` the latest (default), ``"all"`` each, ``"skip"`` none (a tick up to a
        minute late still fires). ``overlap`` says what a tick does while the previous run
        still goes: ``"skip"`` it (default), ``"buffer"`` one to start when it ends,
        ``"allow"`` both, or ``"cancel"`` the previous. Workers store the schedule when they
        start; ``app.schedules`` and ``legato schedules`` change it at run time.
        """
        Cron(cron, tz)  # a bad expression or zone fails at import, not in a worker
        check_policies(catchup, overlap)
        options = {"schedule_id": id, "tz": tz, "args": tuple(args), "kwargs": kwargs,
                   "catchup": catchup, "overlap": overlap}  # fmt: skip

        def register(fn: F) -> F:
            self._declared.append((fn, cron, options))
            return fn

        return register

    async def _store_schedules(self, ops: Operations) -> None:
        """Keep the schedules declared in code in step with the database."""
        declared: set[str] = set()
        for fn, cron, options in self._declared:
            definition = self._definition(fn)
            schedule_id = options["schedule_id"] or definition.name
            if schedule_id in declared:
                raise ConfigurationError(
                    f"schedule {schedule_id!r} is declared twice; give each @app.schedule of"
                    " one workflow its own id="
                )
            declared.add(schedule_id)
            await ops.schedules.put(definition, cron, **{**options, "schedule_id": schedule_id},
                                    source="code")  # fmt: skip
        for schedule in await ops.schedules.list():
            if (
                schedule.source == "code"
                and schedule.workflow in self.workflows
                and schedule.id not in declared
            ):
                log.warning(
                    "schedule %r (%s, %r) is stored as declared in code, but app %r does not"
                    " declare it; it still fires: `legato schedules delete %s` removes it",
                    schedule.id, schedule.workflow, schedule.cron, self.name, schedule.id,
                )  # fmt: skip

    def _schedules_changed(self) -> None:
        """Tell this process's workers to read the schedules again."""
        for runtime in list(self._runtimes.values()):
            for worker in list(runtime.workers):
                if not runtime.loop.is_closed():
                    runtime.loop.call_soon_threadsafe(worker.schedules_changed)

    @overload
    def step(self, fn: Callable[P, Awaitable[R]], /) -> Step[P, R]: ...

    @overload
    def step(self, fn: Callable[P, R], /) -> Step[P, R]: ...

    @overload
    def step(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: timedelta | float | None = None,
    ) -> StepDecorator: ...

    def step(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: timedelta | float | None = None,
    ) -> Any:
        """Register a sync or async function as a step: its result is journaled.

        ``retry`` defaults to ``RetryPolicy()`` (3 attempts); pass ``legato.NO_RETRY`` for none.
        ``timeout`` bounds each attempt.
        """
        seconds = _timeout(timeout, "step timeout")

        def register(f: Callable[..., Any]) -> Step[Any, Any]:
            definition = StepDef(qualified_name(f, name), f, retry or RetryPolicy(), seconds)
            existing = self.steps.get(definition.name)
            if existing is not None and existing.fn is not f:
                raise ConfigurationError(f"step {definition.name!r} is registered twice")
            self.steps[definition.name] = definition
            return Step(definition)

        return register(fn) if fn is not None else register

    @overload
    def tool(self, fn: Callable[P, Awaitable[R]], /) -> Tool[P, R]: ...

    @overload
    def tool(self, fn: Callable[P, R], /) -> Tool[P, R]: ...

    @overload
    def tool(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        risk: str = "low",
        description: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: timedelta | float | None = None,
    ) -> Callable[[Callable[..., Any]], Tool[Any, Any]]: ...

    def tool(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        risk: str = "low",
        description: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: timedelta | float | None = None,
    ) -> Any:
        """Register an action (send an email, charge a card) that must pass the policy gate.

        ``risk`` is "low", "medium", "high" or "critical"; the policy may override it. Inside
        a workflow every call is a proposal that is allowed, throttled, sent to a person, or
        denied. Tools are not retried unless ``retry`` says so.
        """
        seconds = _timeout(timeout, "tool timeout")

        def register(f: Callable[..., Any]) -> Tool[Any, Any]:
            text = description or (inspect.getdoc(f) or "").split("\n")[0]
            definition = ToolDef(qualified_name(f, name), f, risk, text, **(
                {"retry": retry} if retry is not None else {}), timeout=seconds)  # fmt: skip
            existing = self.tools.get(definition.name)
            if existing is not None and existing.fn is not f:
                raise ConfigurationError(f"tool {definition.name!r} is registered twice")
            self.tools[definition.name] = definition
            return Tool(definition)

        return register(fn) if fn is not None else register

    def evaluator(
        self,
        name: str,
        *,
        on: str = "workflow",
        mode: Mode = "inline",
        sample: float = 1.0,
        required: bool = False,
        threshold: float = 0.5,
    ) -> Callable[[EvaluatorFn], EvaluatorFn]:
        """Register a function that judges outputs: it gets a :class:`legato.evals.Target`
        and returns a :class:`legato.evals.Verdict` (score in [0, 1], passed, reason), a
        bool, a score, or ``(score, passed, reason)``.

        ``on``: ``"workflow"`` (each run's result), ``"step"``, ``"tool"``, ``"llm"``, or one
        by name (``"step:score"``, ``"llm:fast"``). ``mode="inline"`` judges in the run as a
        journaled entry (``required=True`` fails the run when it fails); ``mode="shadow"``
        judges a ``sample`` of the targets after the run ends, as durable work that never
        blocks or fails it. A score passes at ``threshold``.
        """

        def register(fn: EvaluatorFn) -> EvaluatorFn:
            definition = EvaluatorDef(name, fn, on, mode, sample, required, threshold)
            existing = self.evaluators.get(name)
            if existing is not None and existing.fn is not fn:
                raise ConfigurationError(f"evaluator {name!r} is registered twice")
            self.evaluators[name] = definition
            if mode == "shadow":
                self._shadow_workflow()
            return fn

        return register

    def _shadow_workflow(self) -> None:
        """Register the internal workflow that runs shadow evaluations (once)."""
        if EVALUATE_WORKFLOW in self.workflows:
            return

        async def judge(
            run_id: str, evaluator: str, kind: str, name: str, entry: str | None
        ) -> dict[str, Any]:
            found = self.evaluators.get(evaluator)
            if found is None:
                raise ConfigurationError(f"no evaluator {evaluator!r} in app {self.name!r}")
            ops = await self.ops_async()
            return await ops.evals.shadow(found, run_id, kind, name, entry)

        step: Step[..., dict[str, Any]] = Step(
            StepDef(f"{EVALUATE_WORKFLOW}.judge", judge, NO_RETRY, None)
        )

        async def evaluate(
            ctx: Context, run_id: str, evaluator: str, kind: str, name: str, entry: str | None
        ) -> dict[str, Any]:
            result: dict[str, Any] = await step(run_id, evaluator, kind, name, entry)
            return result

        self.workflow(name=EVALUATE_WORKFLOW)(evaluate)

    # -- monitors -------------------------------------------------------------------------
    def monitor(self, name: str, monitor: Monitor | None = None, /, **fields: Any) -> Monitor:
        """Watch a metric and act when it drifts: ``app.monitor("quality", metric="pass_rate",
        evaluator="answer-ok", window=10, below=0.8, actions=[LowerAutonomy(actor="agent",
        to=1)], restore_after=2)`` (the fields of :class:`legato.Monitor`; see
        ``legato.governance.monitors``). Workers (``legato worker``) check monitors every
        second; ``check_monitors`` checks them now."""
        if monitor is None:
            try:
                monitor = Monitor(**fields)
            except ValidationError as exc:
                raise ConfigurationError(f"monitor {name!r}: {exc}") from None
        if name in self.monitors:
            raise ConfigurationError(f"monitor {name!r} is defined twice")
        self._monitors[name] = monitor
        return monitor

    @property
    def monitors(self) -> dict[str, Monitor]:
        """Every monitor: the policy's ``monitors:`` and those added with ``app.monitor``."""
        return {**(self.policy.monitors if self.policy else {}), **self._monitors}

    async def check_monitors_async(self, *, owner: str | None = None) -> list[Any]:
        """Judge each monitor's windows that are complete and not judged yet (once across all
        workers), deliver due alerts, and apply rerouted aliases here; returns
        ``(monitor, verdict, what happened)`` for the windows judged by this call."""
        ops = await self.ops_async()
        judged = await ops.monitors.check(
            self.monitors, owner or f"{self.name}:{os.getpid()}", policy=self.policy
        )
        await ops.monitors.deliver()
        self.models.overrides = await ops.store.route_overrides()
        return judged

    async def restore_monitor_async(self, name: str, *, by: str, reason: str) -> bool:
        """Undo what a firing monitor changed (a person's call; audited)."""
        ops = await self.ops_async()
        restored = await ops.monitors.restore(
            name, by=by, reason=reason, monitor=self.monitors.get(name)
        )
        self.models.overrides = await ops.store.route_overrides()
        self._notify_workers()
        return restored

    check_monitors = blocking(check_monitors_async)
    restore_monitor = blocking(restore_monitor_async)

    async def _watch(self, owner: str, every: float) -> None:
        """A worker's monitor loop: check, deliver alerts, follow reroutes."""
        while True:
            try:
                await self.check_monitors_async(owner=owner)
            except Exception:  # the database may be away; the worker logs that too
                log.exception("checking monitors failed; trying again in %gs", every)
            await asyncio.sleep(every)

    def _definition(self, workflow: Callable[..., Any] | str) -> WorkflowDef:
        if isinstance(workflow, str):
            found = self.workflows.get(workflow)
            if found is None:
                raise UnknownWorkflow(
                    f"no workflow named {workflow!r} in app {self.name!r}; registered:"
                    f" {', '.join(sorted(self.workflows)) or 'none'}"
                )
            return found
        definition = getattr(workflow, "__legato_workflow__", None)
        if isinstance(definition, WorkflowDef):
            definition = self.workflows.get(definition.name)
        if definition is None or definition.fn is not workflow:
            raise UnknownWorkflow(
                f"{getattr(workflow, '__qualname__', workflow)!r} is not a workflow of app"
                f" {self.name!r}; decorate it with @app.workflow()"
            )
        return definition

    # -- plumbing -----------------------------------------------------------------------
    async def _rt(self) -> _Runtime:
        loop = asyncio.get_running_loop()
        runtime = self._runtimes.get(loop)
        if runtime is not None:
            return runtime
        # Many coroutines may ask at once (gather of starts): open the store only once.
        opening = self._opening.get(loop)
        if opening is None:
            opening = loop.create_task(self._open_runtime(loop))
            self._opening[loop] = opening
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done():
                self._opening.pop(loop, None)

    async def _open_runtime(self, loop: asyncio.AbstractEventLoop) -> _Runtime:
        store = await open_store(self.database_url, durability=self.durability, long_lived=True)
        runtime = _Runtime(loop, store, Operations(store, self.clock, self.payload_limit))
        self._runtimes[loop] = runtime
        return runtime

    def _sync(self, coro: Coroutine[Any, Any, T], /) -> T:
        with self._lock:
            if self._portal is None:
                self._portal = Portal(f"legato-{self.name}")
        return self._portal.call(coro)

    def _notify_workers(self) -> None:
        """Tell this process's workers (on any loop) that there may be new work."""
        for runtime in list(self._runtimes.values()):
            for worker in list(runtime.workers):
                if not runtime.loop.is_closed():
                    runtime.loop.call_soon_threadsafe(worker.notify)

    async def ops_async(self) -> Operations:
        """The operations layer bound to this app's database on the running loop."""
        return (await self._rt()).ops

    # -- starting and controlling runs --------------------------------------------------
    async def start_async(
        self,
        /,
        workflow: WorkflowFn[..., R] | str,
        *args: Any,
        run_id: str | None = None,
        tenant: str | None = None,
        **kwargs: Any,
    ) -> RunHandle[R]:
        """Start a run; with an existing ``run_id`` return that run instead (idempotent).

        ``tenant`` names who the run works for (budgets per tenant per day count by it).
        """
        definition = self._definition(workflow)
        ops = (await self._rt()).ops
        run, created = await ops.runs.start(definition, args, kwargs, run_id, tenant=tenant)
        if created:
            self._notify_workers()
        return RunHandle(self, run.run_id, definition)

    def handle(self, run_id: str) -> RunHandle[Any]:
        """A handle on an existing run (not checked until used)."""
        return RunHandle(self, run_id, None)

    async def run_async(
        self,
        /,
        workflow: WorkflowFn[..., R] | str,
        *args: Any,
        run_id: str | None = None,
        tenant: str | None = None,
        **kwargs: Any,
    ) -> R:
        """Start a run and drive it to its end in this process; return its result."""
        handle = await self.start_async(workflow, *args, run_id=run_id, tenant=tenant, **kwargs)

        store = (await self._rt()).store

        async def finished() -> bool:  # one read: asked after every wait of the worker
            run = await store.get_run(handle.run_id)
            return run is None or run.status in ("completed", "failed", "cancelled")

        if not await finished():
            await self._work(exit_when=finished)
        return await handle.result_async()

    async def send_event_async(
        self, run_id: str, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool:
        """Deliver an event to a run; it is buffered until the run waits for it.

        With ``event_id``, sending again (a retry after a timeout, a webhook delivered twice)
        delivers it once: the repeat returns False, even after the run has ended."""
        sent = await (await self._rt()).ops.runs.send_event(
            run_id, name, payload, event_id=event_id
        )
        self._notify_workers()
        return sent

    async def cancel_async(self, run_id: str) -> None:
        """Cancel a run that has not finished (and its child runs)."""
        await (await self._rt()).ops.runs.cancel(run_id)
        self._notify_workers()

    async def retry_async(self, run_id: str) -> RunHandle[Any]:
        """Resume a failed run from its failed entry, or a cancelled one where it was
        cancelled; finished entries are not redone."""
        run = await (await self._rt()).ops.runs.retry(run_id)
        self._notify_workers()
        return RunHandle(self, run_id, self.workflows.get(run.workflow))

    async def fork_async(
        self,
        run_id: str,
        /,
        entry: str | int,
        *,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        new_run_id: str | None = None,
        by: str = "api",
    ) -> RunHandle[Any]:
        """Fork a run: a new run with ``run_id``'s journal as recorded before ``entry`` (its
        key, as ``legato show`` prints it: ``3``, ``0.1``), which runs ``entry`` and everything
        after it afresh. ``args``/``kwargs`` replace the workflow's input (default: the
        original's). The fork is a new run: its steps get new idempotency keys, it asks its own
        approvals and starts its own child runs; its lineage is recorded and audited (``by``).
        With ``new_run_id`` of an existing fork of the same run and entry, that fork is
        returned (idempotent)."""
        ops = await self.ops_async()
        source = await ops.runs.get(run_id)
        definition = self.workflows.get(source.workflow)
        text = None
        if args is not None or kwargs is not None:
            if definition is None:
                raise UnknownWorkflow(
                    f"run {run_id!r} is of workflow {source.workflow!r}, which app"
                    f" {self.name!r} does not register: its new input cannot be checked"
                )
            text = definition.encode_input(
                tuple(args or ()), dict(kwargs or {}), self.payload_limit
            )
            definition.decode_input(text)  # fails now, not in the worker, if it does not fit
        fork, created = await ops.runs.fork(
            run_id, str(entry), new_run_id=new_run_id, input=text, by=by
        )
        if created:
            self._notify_workers()
        return RunHandle(self, fork.run_id, definition)

    start = blocking(start_async)
    run = blocking(run_async)
    fork = blocking(fork_async)
    send_event = blocking(send_event_async)
    cancel = blocking(cancel_async)
    retry = blocking(retry_async)

    # -- workers ------------------------------------------------------------------------
    async def _work(
        self,
        *,
        stop: asyncio.Event | None = None,
        exit_when: Callable[[], Awaitable[bool]] | None = None,
        exit_when_idle: bool = False,
        skip_until: float | None = None,
        concurrency: int = 100,
        watch: float | None = None,
        **options: Any,
    ) -> Worker:
        if not self.workflows:
            raise ConfigurationError(f"app {self.name!r} has no workflows to run")
        runtime = await self._rt()
        if exit_when is None:  # a worker, not app.run's run to its end
            await self._store_schedules(runtime.ops)
        worker = Worker(
            store=runtime.store,
            clock=self.clock,
            workflows=self.workflows,
            concurrency=concurrency,
            payload_limit=self.payload_limit,
            policy=self.policy,
            models=self.models,
            evaluators=list(self.evaluators.values()),
            **options,
        )
        runtime.workers.add(worker)
        watching = None
        if watch is not None and self.monitors:  # a long-running worker checks monitors
            watching = asyncio.create_task(self._watch(worker.worker_id, watch))
        try:
            await worker.run(
                stop=stop, exit_when=exit_when, exit_when_idle=exit_when_idle, skip_until=skip_until
            )
        finally:
            runtime.workers.discard(worker)
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
        return worker

    async def worker_async(
        self,
        *,
        concurrency: int = 100,
        stop: asyncio.Event | None = None,
        monitor_interval: float = 1.0,
        **options: Any,
    ) -> None:
        """Claim and execute runs until ``stop`` is set (or the task is cancelled). A database
        that is unreachable, at the start or later, is waited for (and logged), not fatal.
        With monitors, they are checked every ``monitor_interval`` seconds."""
        runtime = await wait_for_database(self._rt, stop)
        if runtime is not None:
            paused = await runtime.store.paused_workflows()
            for problem in unmatched_controls(
                self.name, self.policy, self.tools, self.workflows, paused
            ):
                _log.warning("%s", problem)
            await self._work(stop=stop, concurrency=concurrency, watch=monitor_interval, **options)

    def worker(self, *, concurrency: int = 100, **options: Any) -> None:
        """Claim and execute runs until SIGINT or SIGTERM, then stop gracefully."""

        async def main() -> None:
            stop = asyncio.Event()
            if threading.current_thread() is threading.main_thread():
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
            try:
                await self.worker_async(concurrency=concurrency, stop=stop, **options)
            finally:
                await self.close_async()

        run_coroutine(main())

    async def run_until_idle_async(
        self, *, skip: timedelta | None = None, concurrency: int = 100
    ) -> int:
        """Execute runs in this process until none is runnable; return how many finished.

        With a time-skipping clock, the clock jumps to each timer as nothing else is left to
        do (sleeps, retry delays, event timeouts), but by no more than ``skip`` in all when it
        is given: ``skip=timedelta(0)`` never moves time.
        """
        limit = None if skip is None else self.clock.now() + skip.total_seconds()
        worker = await self._work(exit_when_idle=True, skip_until=limit, concurrency=concurrency)
        return worker.completed

    run_until_idle = blocking(run_until_idle_async)

    # -- costs ----------------------------------------------------------------------------
    async def costs_async(
        self, *, by: str = "workflow", since: timedelta | None = None,
        workflow: str | None = None,
    ) -> list[tuple[str, UsageTotals]]:  # fmt: skip
        """Model usage and cost grouped ``by`` workflow, model, day, tenant or run."""
        ops = await self.ops_async()
        return await ops.costs.rollup(by=by, since=since, workflow=workflow)

    costs = blocking(costs_async)

    # -- closing ------------------------------------------------------------------------
    async def close_async(self) -> None:
        """Close the database connection of the running loop."""
        runtime = self._runtimes.pop(asyncio.get_running_loop(), None)
        if runtime is not None:
            await runtime.store.close()
        await self.models.aclose()

    def close(self) -> None:
        """Close every connection and the background loop."""
        if self._portal is not None:
            self._sync(self.close_async())
            self._portal.close()
            self._portal = None


def _timeout(value: timedelta | float | None, what: str) -> float | None:
    seconds = None if value is None else to_seconds(value, what)
    if seconds == 0:
        raise ConfigurationError(f"{what} must be positive, got {value!r}")
    return seconds


__all__ = ["NO_RETRY", "App"]
