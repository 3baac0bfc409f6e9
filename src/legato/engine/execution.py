"""One loaded run: calls the workflow function and answers its durable operations.

Each durable operation takes the next position of its *branch*: the workflow's asyncio task,
numbered when the task is created (engine/runtime.py), so in program order. Steps and recorded
values take their position when called; sleeps, event waits, approvals and child runs when their
coroutine starts. (branch, position) is the operation's identity: its entry key, idempotency key
and child run id derive from it, and replay finds its recorded entry by it (engine/journal.py),
so concurrent branches replay the same whatever order their writes completed in, and after a
crash whatever was in flight. An operation whose recorded entry has another kind or name is a
:class:`NondeterminismError`.

When every operation the workflow is waiting on can be satisfied only from outside (a long
timer, an event, a child run) and no step is in flight, the run is *parked*: its wait is stored,
its lease released, and its task unwound. Whatever wakes it later replays it from the top.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random as _random
import threading
import uuid as _uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

from legato import serde
from legato.clock import Clock
from legato.context import Context
from legato.engine.definitions import StepDef, ToolDef, WorkflowDef
from legato.engine.evaluations import Evaluations, jsonable
from legato.engine.journal import cursor_for
from legato.engine.model_calls import ModelCalls
from legato.engine.runtime import (
    Branch,
    StepInfo,
    current_execution,
    current_step,
    enter_run,
    here,
    inside_step,
    leave_step,
    numbered_tasks,
    step_context,
)
from legato.engine.supervision import Supervision
from legato.engine.waits import Parkable, bound, failed_seq, forever, iso
from legato.errors import (
    ChildFailed,
    ConfigurationError,
    EventTimeout,
    LeaseLost,
    NondeterminismError,
    SerializationError,
    StepFailed,
    StoreError,
    StoreUnavailable,
    Suspended,
)
from legato.evals.evaluators import EvaluatorDef
from legato.evals.measure import INTERNAL_PREFIX, measure
from legato.store.base import (
    TERMINAL,
    Entry,
    EntryStatus,
    RunEnd,
    RunRecord,
    Store,
    Wait,
    entry_key,
)
from legato.timestamps import utc

if TYPE_CHECKING:
    from legato.ai.calls import CallSpec
    from legato.ai.registry import Models
    from legato.ai.results import EmbedResult, LLMResult
    from legato.approvals import Decision
    from legato.governance import Policy

log = logging.getLogger("legato.engine")
#: the largest ``ctx.set_status`` (bytes of JSON): it is read with every listing of runs
STATUS_LIMIT = 4096
#: what makes a replay leave its recorded path, most likely first
LIKELY_CAUSES = (
    "The workflow took another path on replay than when it ran. Likely causes: workflow code"
    " that reads randomness (random.*, uuid4: use ctx.random(), ctx.uuid()) or the time"
    " (time.time(), datetime.now(): use ctx.now()), or does I/O itself (files, network,"
    " databases, environment: do it in a step), so it differs between executions; or the"
    " workflow code changed under a run in flight (restore the old order, or guard the change"
    " with ctx.patched(...)). Then `legato retry` the run"
)
T = TypeVar("T")
Outcome = Literal["completed", "failed", "parked", "released", "lost"]


class Execution:
    """Drives one run of a workflow, from its journal, until it ends or parks."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        run: RunRecord,
        workflow: WorkflowDef,
        workflows: Mapping[str, WorkflowDef],
        entries: list[Entry],
        owner: str,
        executor: Executor | None = None,
        payload_limit: int | None = serde.DEFAULT_PAYLOAD_LIMIT,
        policy: Policy | None = None,
        paused: Callable[[], bool] = lambda: False,
        models: Models | None = None,
        evaluators: Sequence[EvaluatorDef] = (),
    ) -> None:
        self.store = store
        self.models = models
        self.clock = clock
        self.run = run
        self.run_id = run.run_id
        self.workflow = workflow
        self.workflows = workflows
        self.owner = owner
        self.executor = executor  # for sync steps; None is asyncio's default pool
        self.payload_limit = payload_limit
        self.policy = policy
        self._paused = paused  # the kill switch: no new entry starts while it says so
        self.journal = {e.seq: e for e in entries}
        self.cursor = cursor_for(run.journal_format, entries)
        self._where: dict[int, tuple[str, int | None]] = {}  # seq -> (branch, position)
        self._root = Branch("")
        self.draining = False
        self._fatal: BaseException | None = None
        self._active = 0  # operations in flight that this process must finish (steps, short waits)
        self._waits: dict[int, Parkable] = {}
        self._activity = 0
        self._park: asyncio.Future[None] | None = None
        self._task: asyncio.Task[Any] | None = None
        #: set when the run is cancelled while it executes here; steps see it (StepInfo)
        self.cancelled = threading.Event()
        self._rng = _random.Random()
        self.supervision = Supervision(self)
        self.model_calls = ModelCalls(self, self.supervision)
        self.evaluations = Evaluations(self, evaluators)

    # -- driving ------------------------------------------------------------------------
    async def drive(self) -> Outcome:
        """Run the workflow from the top until it finishes, parks, or loses its lease."""
        loop = asyncio.get_running_loop()
        self._park = loop.create_future()
        with numbered_tasks(loop):
            task = loop.create_task(self._call(), context=contextvars.copy_context())
            self._task = task  # for cancel(); let go at the end (its context holds us)
            try:
                try:
                    await asyncio.wait((task, self._park), return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:  # the worker is shutting down hard
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    raise
                if not task.done():
                    return await self._suspend(task)
                return await self._settle(task)
            finally:
                self._task = None

    async def _call(self) -> Any:
        enter_run(self, self._root)  # here, inside the task: the root task is not a branch
        args, kwargs = self.workflow.decode_input(self.run.input)
        result = await self.workflow.fn(Context(self), *args, **kwargs)
        pending = self.evaluations.take("workflow", self.workflow.name)
        if pending:
            the_input = serde.loads(self.run.input)
            await self.evaluations.judge(
                pending, "workflow", self.workflow.name, None, the_input, jsonable(result)
            )
        return result

    async def _settle(self, task: asyncio.Task[Any]) -> Outcome:
        error = task.exception() if not task.cancelled() else asyncio.CancelledError()
        if isinstance(self._fatal, LeaseLost) or isinstance(error, LeaseLost):
            return "lost"
        if self._fatal is not None:
            return await self._fail(self._fatal)
        if isinstance(error, Suspended | StoreUnavailable):
            return await self._release()
        if error is not None:
            return await self._fail(error)
        unconsumed = self.cursor.unconsumed()
        if unconsumed:
            first = min(unconsumed, key=lambda e: e.seq)
            return await self._fail(
                NondeterminismError(
                    f"run {self.run_id!r}: recorded {first.kind} {first.name!r} at entry"
                    f" {first.key}, now the workflow returned before reaching it. {LIKELY_CAUSES}"
                )
            )
        try:
            text = serde.dumps(
                task.result(),
                what=f"the result of workflow {self.workflow.name!r}",
                limit=self.payload_limit,
            )
        except SerializationError as exc:
            return await self._fail(exc)
        ok = await self._finish("completed", text)
        return "completed" if ok else "lost"

    def _finish(self, status: RunEnd, text: str) -> Awaitable[bool]:
        """End the run with what it measured and the shadow evaluations it starts."""
        if self.workflow.name.startswith(INTERNAL_PREFIX):
            return self.store.finish_run(self.owner, self.run_id, status, text, self.clock.now())
        entries = self.journal.values()
        return self.store.finish_run(
            self.owner, self.run_id, status, text, self.clock.now(),
            metrics=measure(self.run, status, entries),
            start=self.evaluations.shadow_runs(entries, status == "completed"),
        )  # fmt: skip

    async def _fail(self, error: BaseException) -> Outcome:
        report = serde.error_json(error)
        seq = failed_seq(error)
        if seq is not None:  # `legato retry` resumes from this entry, and only from it
            report["seq"] = seq
            report["entry"] = self.key_of(seq)
        text = serde.dumps(report, what="an error")
        ok = await self._finish("failed", text)
        if ok:
            log.info("run %s failed: %s: %s", self.run_id, type(error).__name__, error)
        return "failed" if ok else "lost"

    async def _release(self) -> Outcome:
        ok = await self.store.release(self.owner, self.run_id, self.clock.now())
        return "released" if ok else "lost"

    async def _suspend(self, task: asyncio.Task[Any]) -> Outcome:
        """Park: store what the run waits for, then unwind its code without recording more."""
        waits = list(self._waits.values())
        self.draining = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if isinstance(self._fatal, LeaseLost):
            return "lost"
        deadlines = [w.deadline for w in waits if w.deadline is not None]
        # and every deadline the journal holds for waits of this run that are still open
        deadlines += [
            e.wake_at for e in self.journal.values()
            if e.status in ("waiting", "retrying") and e.wake_at is not None
        ]  # fmt: skip
        wait = Wait(
            wake_at=min(deadlines) if deadlines else None,
            waiting_on="; ".join(w.describe for w in waits),
            events=sorted({w.event for w in waits if w.event is not None}),
            children=sorted({w.child for w in waits if w.child is not None}),
            approvals=sorted({w.approval for w in waits if w.approval is not None}),
        )
        ok = await self.store.park(self.owner, self.run_id, wait, self.clock.now())
        return "parked" if ok else "lost"

    def stop(self) -> None:
        """Stop starting new operations; the run is released once in-flight ones finish."""
        self.draining = True
        self._poke()

    # -- the journal --------------------------------------------------------------------
    def take(self, kind: str, name: str) -> tuple[int, Entry | None]:
        if self._fatal is not None:
            raise self._fatal
        if self.draining or self._paused():
            raise Suspended()
        node = self._here()
        seq, entry, position = self.cursor.take(node)
        self._where[seq] = (node.path if self.cursor.branched else "", position)
        if entry is not None and (entry.kind != kind or entry.name != name):
            self._fatal = NondeterminismError(
                f"run {self.run_id!r} (workflow {self.workflow.name!r}): recorded {entry.kind}"
                f" {entry.name!r}, now {kind} {name!r} at entry {entry.key}. {LIKELY_CAUSES}"
            )
            raise self._fatal
        return seq, entry

    def _here(self) -> Branch:
        try:
            return here(self._root)
        except ConfigurationError as exc:
            self._fatal = exc
            raise

    def key_of(self, seq: int) -> str:
        """The identity users see of entry ``seq``: its branch and position (older formats:
        the storage number)."""
        recorded = self.journal.get(seq)
        if recorded is not None:
            return recorded.key
        branch, position = self._where.get(seq, ("", None))
        return entry_key(seq, branch, position)

    def peek_seq(self) -> int:
        """The storage number the next operation of this branch will have."""
        recorded = self.cursor.peek(self._here())
        return recorded.seq if recorded is not None else self.cursor.next_seq

    def make_entry(
        self, seq: int, kind: str, name: str, status: EntryStatus, **fields: Any
    ) -> Entry:
        branch, position = self._where.get(seq, ("", None))
        fields.setdefault("branch", branch)
        fields.setdefault("position", position)
        return Entry(self.run_id, seq, kind, name, status, **fields)

    async def _record(self, entry: Entry) -> None:
        if not await self.io(self.store.record(self.owner, entry)):
            self.lost()
        self.journal[entry.seq] = entry

    def _record_soon(self, entry: Entry) -> None:
        """Record without waiting: the write is queued now, so later writes commit after it."""
        self.journal[entry.seq] = entry
        fut = asyncio.ensure_future(self.store.record(self.owner, entry))
        fut.add_done_callback(self._check_soon)

    def _check_soon(self, task: asyncio.Future[bool]) -> None:
        if task.cancelled() or task.exception() is not None or not task.result():
            self._fatal = self._fatal or LeaseLost()
            self._poke()

    async def io(self, call: Awaitable[T]) -> T:
        """Await a store call made for the workflow: it counts as work in flight (the run is
        not parked under it), and a database failure unwinds the run instead of reaching the
        workflow's own ``except`` blocks (the run is released and resumes elsewhere)."""
        self._active += 1
        try:
            return await call
        except StoreError as exc:
            raise StoreUnavailable(str(exc)) from exc
        finally:
            self._active -= 1
            self._poke()

    def cancel(self) -> None:
        """The run was cancelled elsewhere (a person, its parent, a schedule): stop now rather
        than at the next journal write, recording nothing more. An async step in flight is
        cancelled; a sync step sees ``current_step().cancelled``."""
        self.cancelled.set()
        self._fatal = LeaseLost()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def lost(self) -> NoReturn:
        self._fatal = LeaseLost()
        raise self._fatal

    def fatal(self, error: BaseException) -> NoReturn:
        self._fatal = error
        raise error

    # -- parking bookkeeping ------------------------------------------------------------
    def _poke(self) -> None:
        self._activity += 1
        if self._waits and self._active == 0:
            asyncio.get_running_loop().call_soon(self._quiet, self._activity, 3)

    def _quiet(self, seen: int, hops: int) -> None:
        """Park once nothing but parkable waits has been pending for a few loop turns."""
        if self._park is None or self._park.done() or self._active or not self._waits:
            return
        if seen != self._activity:
            return  # something happened since; whoever did it scheduled a newer check
        if hops:
            asyncio.get_running_loop().call_soon(self._quiet, seen, hops - 1)
        else:
            self._park.set_result(None)

    async def parkable(self, seq: int, wait: Parkable, until: Awaitable[T]) -> T:
        """Await ``until`` while allowing the run to be parked instead."""
        self._waits[seq] = wait
        self._poke()
        try:
            return await until
        finally:
            del self._waits[seq]
            self._activity += 1

    async def _until(self, seq: int, deadline: float, describe: str) -> None:
        """Wait until ``deadline``: in memory if it is close, else parked."""
        remaining = deadline - self.clock.now()
        if remaining <= 0:
            return
        if remaining <= self.clock.park_after:
            self._active += 1
            try:
                await self.clock.sleep(remaining)
            finally:
                self._active -= 1
                self._poke()
            return
        await self.parkable(seq, Parkable(deadline, describe), self.clock.sleep(remaining))

    # -- steps --------------------------------------------------------------------------
    def step(self, step: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Awaitable[Any]:
        seq, entry = self.take("step", step.name)
        pending = self.evaluations.take("step", step.name)
        call = self.run_step(seq, entry, step, args, kwargs)
        return self._judged(call, seq, step.name, (args, kwargs), pending) if pending else call

    async def _judged(
        self, call: Awaitable[Any], seq: int, name: str, the_input: Any, pending: Any
    ) -> Any:
        """A step's result, once the inline evaluators in ``pending`` have judged it."""
        result = await call
        args, kwargs = the_input
        judged_input = jsonable({"args": list(args), "kwargs": kwargs})
        output = serde.loads(self.journal[seq].output)
        await self.evaluations.judge(pending, "step", name, seq, judged_input, output)
        return result

    async def run_step(
        self,
        seq: int,
        entry: Entry | None,
        step: StepDef,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        kind: str = "step",
    ) -> Any:
        what = f"{kind} {step.name!r} of workflow {self.workflow.name!r}"
        attempt = 1
        if entry is not None:
            if entry.status == "completed":
                return serde.decode(entry.output, step.returns, what=f"the result of {what}")
            if entry.status == "failed":
                raise bound(_step_failed(step.name, entry), seq)
            attempt = entry.attempts + 1
            if entry.wake_at is not None:
                await self._until(seq, entry.wake_at, f"retry of step {step.name!r}")
        policy = step.retry
        while True:
            started = self.clock.now()
            self._active += 1
            try:
                result = await self._invoke(step, seq, attempt, args, kwargs)
                text = serde.dumps(result, what=f"the result of {what}", limit=self.payload_limit)
            except (Suspended, LeaseLost, asyncio.CancelledError):
                raise
            except SerializationError as exc:
                await self._record_failure(seq, kind, step.name, exc, attempt, started)
                raise bound(
                    StepFailed(step.name, type(exc).__name__, str(exc), attempt, _details(exc)), seq
                ) from exc
            except Exception as exc:
                if not policy.is_retryable(exc) or attempt >= policy.max_attempts:
                    await self._record_failure(seq, kind, step.name, exc, attempt, started)
                    raise bound(
                        StepFailed(step.name, type(exc).__name__, str(exc), attempt, _details(exc)),
                        seq,
                    ) from exc
                delay = policy.delay(attempt, self._rng)
                now = self.clock.now()
                log.info(
                    "step %s of run %s failed (attempt %d), retrying in %.3gs: %s",
                    step.name,
                    self.run_id,
                    attempt,
                    delay,
                    exc,
                )
                await self._record(
                    self.make_entry(
                        seq,
                        kind,
                        step.name,
                        "retrying",
                        error=serde.dumps(serde.error_json(exc), what="an error"),
                        attempts=attempt,
                        started_at=started,
                        finished_at=now,
                        wake_at=now + delay,
                    )
                )
            else:
                await self._record(
                    self.make_entry(
                        seq,
                        kind,
                        step.name,
                        "completed",
                        output=text,
                        attempts=attempt,
                        started_at=started,
                        finished_at=self.clock.now(),
                    )
                )
                return serde.roundtrip(result, text, step.returns, what=f"the result of {what}")
            finally:
                self._active -= 1
                self._poke()
            attempt += 1
            await self._until(seq, now + delay, f"retry of step {step.name!r}")
            if self.draining:
                raise Suspended()

    async def _invoke(
        self, step: StepDef, seq: int, attempt: int, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        info = StepInfo(
            self.run_id, self.workflow.name, step.name, seq, attempt, self.key_of(seq),
            self.cancelled,
        )  # fmt: skip
        token = step_context(info)
        try:
            call: Awaitable[Any]
            if step.is_async:
                call = step.fn(*args, **kwargs)
            else:  # in a thread, with this context (so current_step() works there too)
                call = _in_thread(self.executor, step.fn, args, kwargs)
            try:
                if step.timeout is None:
                    return await call
                try:
                    return await asyncio.wait_for(call, step.timeout)
                except TimeoutError:
                    raise TimeoutError(
                        f"step {step.name!r} timed out after {step.timeout:g}s"
                    ) from None
            finally:
                del call  # a raised error's traceback holds this frame, the future holds the error
        finally:
            leave_step(token)

    async def _record_failure(
        self, seq: int, kind: str, name: str, error: BaseException, attempt: int, started: float
    ) -> None:
        await self._record(
            self.make_entry(
                seq,
                kind,
                name,
                "failed",
                error=serde.dumps(serde.error_json(error), what="an error"),
                attempts=attempt,
                started_at=started,
                finished_at=self.clock.now(),
            )
        )

    def _op(
        self, kind: str, name: str, body: Callable[[int, Entry | None], Awaitable[T]]
    ) -> Awaitable[T]:
        """An operation that makes one entry. In format 3 it takes its position where it is
        called, like a step, so ``gather(ctx.child(a), ctx.child(b))`` numbers both children
        in the caller's branch; runs of older formats took it when the coroutine started."""
        if self.cursor.at_call:
            seq, entry = self.take(kind, name)
            return body(seq, entry)
        return self._started(kind, name, body)

    async def _started(
        self, kind: str, name: str, body: Callable[[int, Entry | None], Awaitable[T]]
    ) -> T:
        seq, entry = self.take(kind, name)
        return await body(seq, entry)

    # -- supervision and model calls (collaborators built on this journal) -------------------
    def approval(self, name: str, data: Any, **asked: Any) -> Awaitable[Decision[Any]]:
        """``ctx.approval`` (its options as :class:`legato.engine.runtime.Durable` types them)."""
        return self._op(
            "approval",
            name,
            lambda seq, entry: self.supervision.approval(name, data, **asked, taken=(seq, entry)),
        )

    async def tool(self, tool: ToolDef, args: dict[str, Any], actor: str | None) -> Any:
        return await self.supervision.tool(tool, args, actor)

    async def tool_call(
        self, tool: ToolDef, args: dict[str, Any], actor: str | None
    ) -> tuple[Any, dict[str, Any] | None]:
        return await self.supervision.tool_call(tool, args, actor)

    async def llm(self, spec: CallSpec, cache: bool | None) -> LLMResult[Any]:
        return await self.model_calls.llm(spec, cache)

    async def embed(self, texts: list[str], model: str) -> EmbedResult:
        return await self.model_calls.embed(texts, model)

    def context_window(self, model: str) -> int:
        return self.model_calls.context_window(model)

    # -- timers and events --------------------------------------------------------------
    def sleep(self, seconds: float) -> Awaitable[None]:
        return self._op("sleep", "sleep", lambda seq, entry: self._sleep(seq, entry, seconds))

    async def _sleep(self, seq: int, entry: Entry | None, seconds: float) -> None:
        if entry is not None and entry.status == "completed":
            return
        if entry is None:
            now = self.clock.now()
            entry = self.make_entry(
                seq,
                "sleep",
                "sleep",
                "waiting",
                input=repr(seconds),
                started_at=now,
                wake_at=now + seconds,
            )
            if seconds > self.clock.park_after:  # the deadline must survive the unload
                await self._record(entry)
        assert entry.wake_at is not None
        await self._until(seq, entry.wake_at, f"sleep until {iso(entry.wake_at)}")
        entry.status, entry.finished_at = "completed", self.clock.now()
        self._record_soon(entry)

    def wait_for_event(self, name: str, timeout: float | None, kind: Any = None) -> Awaitable[Any]:
        return self._op(
            "event", name, lambda seq, entry: self._wait_for_event(seq, entry, name, timeout, kind)
        )

    async def _wait_for_event(
        self, seq: int, entry: Entry | None, name: str, timeout: float | None, kind: Any
    ) -> Any:
        if entry is not None and entry.status == "completed":
            return await self._accept(entry, kind)
        if entry is not None and entry.status == "failed":
            err = serde.loads(entry.error) or {}
            if err.get("type") == "SerializationError":
                raise bound(SerializationError(err.get("message", "")), seq)
            raise bound(EventTimeout(name, float(entry.input or 0)), seq)
        now = self.clock.now()
        if entry is None:
            entry = self.make_entry(
                seq,
                "event",
                name,
                "waiting",
                input=repr(timeout or 0),
                started_at=now,
                wake_at=None if timeout is None else now + timeout,
            )
        while True:
            taken = self.make_entry(
                seq,
                "event",
                name,
                "completed",
                input=entry.input,
                started_at=entry.started_at,
                finished_at=self.clock.now(),
            )
            payload = await self.io(self.store.consume_event(self.owner, taken))
            if payload is not None:
                taken.output = payload
                self.journal[seq] = taken
                return await self._accept(taken, kind)
            if entry.wake_at is not None and self.clock.now() >= entry.wake_at:
                entry.status, entry.finished_at = "failed", self.clock.now()
                entry.error = serde.dumps(
                    serde.error_json(EventTimeout(name, timeout or 0), with_traceback=False),
                    what="an error",
                )
                await self._record(entry)
                raise bound(EventTimeout(name, float(entry.input or 0)), seq)
            if seq not in self.journal:
                await self._record(entry)
            describe = f"event {name!r}" + (
                f" until {iso(entry.wake_at)}" if entry.wake_at is not None else ""
            )
            remaining = None if entry.wake_at is None else entry.wake_at - self.clock.now()
            await self.parkable(
                seq,
                Parkable(entry.wake_at, describe, event=name),
                self.clock.sleep(remaining) if remaining is not None else forever(),
            )

    async def _accept(self, entry: Entry, kind: Any) -> Any:
        """The event's payload, validated into ``kind``; a payload that does not fit is
        rejected for good (its entry fails), so ``legato retry`` waits for a new event."""
        value = serde.loads(entry.output)
        if kind is None:
            return value
        try:
            return serde.coerce(value, kind, what=f"event {entry.name!r} of run {self.run_id!r}")
        except SerializationError as exc:
            entry.status = "failed"
            entry.error = serde.dumps(serde.error_json(exc, with_traceback=False), what="an error")
            await self._record(entry)
            raise bound(exc, entry.seq) from None

    # -- child runs ---------------------------------------------------------------------
    def child(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]:
        definition = getattr(fn, "__legato_workflow__", None)
        if not isinstance(definition, WorkflowDef):
            raise ConfigurationError(f"ctx.child() needs a workflow, got {fn!r}")
        registered = self.workflows.get(definition.name)
        if registered is None or registered.fn is not fn:
            raise ConfigurationError(
                f"child workflow {definition.name!r} is not registered with this app"
            )
        return self._op(
            "child", registered.name,
            lambda seq, entry: self._child(seq, entry, registered, args, kwargs),
        )  # fmt: skip

    async def _child(
        self,
        seq: int,
        entry: Entry | None,
        definition: WorkflowDef,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        # '~' never appears in a run id a user chooses, so a child id cannot collide with one;
        # replay uses the id recorded in the journal (runs of legato 0.1.0 used ':').
        child_id = (
            entry.input
            if entry is not None and entry.input
            else f"{self.run_id}~{self.key_of(seq)}"
        )
        if entry is None:
            now = self.clock.now()
            entry = self.make_entry(
                seq, "child", definition.name, "waiting", input=child_id, started_at=now
            )
            text = definition.encode_input(args, kwargs, self.payload_limit)
            child = definition.new_run(
                child_id, text, now, self.run.tenant, parent_run_id=self.run_id, parent_seq=seq
            )
            if not await self.io(self.store.start_child(self.owner, entry, child)):
                self.lost()
            self.journal[seq] = entry
        elif entry.status == "completed":
            return serde.decode(entry.output, definition.returns, what=f"child run {child_id!r}")
        elif entry.status == "failed":
            err = serde.loads(entry.error) or {}
            raise bound(
                ChildFailed(
                    child_id, err.get("status", "failed"), err.get("type"), err.get("message", "")
                ),
                seq,
            )
        while True:
            run = await self.io(self.store.get_run(child_id))
            if run is not None and run.status in TERMINAL:
                return await self._child_done(seq, entry, run, definition)
            await self.parkable(
                seq, Parkable(None, f"child run {child_id!r}", child=child_id), forever()
            )

    async def _child_done(
        self, seq: int, entry: Entry, run: RunRecord, definition: WorkflowDef
    ) -> Any:
        entry.finished_at = self.clock.now()
        if run.status == "completed":
            entry.status, entry.output = "completed", run.output
            await self._record(entry)
            return serde.decode(run.output, definition.returns, what=f"child run {run.run_id!r}")
        err = serde.loads(run.error) or {"message": "cancelled"}
        err["status"] = run.status
        entry.status, entry.error = "failed", serde.dumps(err, what="an error")
        await self._record(entry)
        failure = ChildFailed(run.run_id, run.status, err.get("type"), err.get("message", ""))
        raise bound(failure, seq)

    # -- recorded values ----------------------------------------------------------------
    def value(self, kind: str, make: Callable[[], str]) -> str:
        """A value recorded on first execution and replayed after (now, random, uuid)."""
        seq, entry = self.take(kind, kind)
        if entry is not None:
            return entry.output or ""
        text = make()
        self._record_soon(self.make_entry(seq, kind, kind, "completed", output=text))
        return text

    def set_status(self, status: Any) -> None:
        """Record the run's own status (``ctx.set_status``); a replay passes over it."""
        text = serde.dumps(status, what="the status given to ctx.set_status")
        if len(text.encode()) > STATUS_LIMIT:
            raise serde.PayloadTooLarge(
                f"run {self.run_id!r}: ctx.set_status got {len(text.encode())} bytes of JSON,"
                f" over the limit of {STATUS_LIMIT}: a status says how far the run is (a phase,"
                " counts); keep results and documents in steps"
            )
        seq, entry = self.take("status", "status")
        if entry is None:
            self._record_soon(self.make_entry(seq, "status", "status", "completed", output=text))

    def now(self) -> datetime:
        text = self.value("now", lambda: repr(self.clock.now()))
        return utc(float(text))

    def random(self) -> float:
        return float(self.value("random", lambda: repr(self._rng.random())))

    def uuid(self) -> _uuid.UUID:
        return _uuid.UUID(self.value("uuid", lambda: str(_uuid.uuid4())))

    def patched(self, change_id: str) -> bool:
        if self._fatal is not None:
            raise self._fatal
        node = self._here()
        recorded = self.cursor.peek(node)
        ours = recorded is not None and recorded.kind == "patch" and recorded.name == change_id
        if not ours and self.cursor.passed(node):
            return False  # this run passed here on the old code, which had no such change
        seq, recorded = self.take("patch", change_id)
        if recorded is None:
            self._record_soon(self.make_entry(seq, "patch", change_id, "completed"))
        return True

    @property
    def is_replaying(self) -> bool:
        return self.cursor.passed(self._here())


def _in_thread(
    executor: Executor | None, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any
) -> asyncio.Future[Any]:
    """Run a sync step in ``executor`` with the caller's context variables.

    The result comes back with one ``call_soon_threadsafe`` onto a plain asyncio future, not
    through ``run_in_executor``'s chain of a concurrent future wrapped into an asyncio one: this
    hand-off is most of what a sync step costs."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    if executor is None:
        return loop.run_in_executor(None, functools.partial(context.run, fn, *args, **kwargs))
    future = loop.create_future()

    # The step's frame in a raised exception's traceback links back to `work`'s frame and the
    # pool's: were the future reachable from those, exception, frames and future would make a
    # cycle that only the cycle collector frees. `work` takes it out of the box and drops it.
    box = [future]

    def work() -> None:
        settle = box.pop()
        try:
            result = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # handed to the awaiting step, which decides
            loop.call_soon_threadsafe(_settle, settle, None, exc)
            del settle
        else:
            loop.call_soon_threadsafe(_settle, settle, result, None)

    executor.submit(work)
    return future


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the step timed out or was cancelled meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _details(error: BaseException) -> dict[str, Any] | None:
    details = getattr(error, "details", None)
    return details if isinstance(details, dict) and details else None


def _step_failed(name: str, entry: Entry) -> StepFailed:
    err = serde.loads(entry.error) or {}
    return StepFailed(
        name, err.get("type", "Error"), err.get("message", ""), entry.attempts, err.get("details")
    )


__all__ = [
    "Execution",
    "Outcome",
    "StepInfo",
    "current_execution",
    "current_step",
    "inside_step",
]
