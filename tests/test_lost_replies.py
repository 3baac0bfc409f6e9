"""PostgreSQL: an operation whose COMMIT landed but whose reply was lost is retried by the store;
the retry must neither apply it twice nor report a false conflict."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

import legato
from legato.store.postgres import PostgresStore
from tests.conftest import postgres_schema, sql


@pytest.fixture
def db_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def _lose_next_replies(store: PostgresStore, count: int) -> list[int]:
    """The next ``count`` transactions commit, then their caller sees the connection drop."""
    lost: list[int] = []
    retry = store._retry

    async def lossy(attempt: Callable[[], Awaitable[Any]], on_lost: Any = None) -> Any:
        async def committed_then_lost() -> Any:
            result = await attempt()
            if len(lost) < count:
                lost.append(1)
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return result

        return await retry(committed_then_lost, on_lost)

    store._retry = lossy  # type: ignore[method-assign]
    return lost


async def _app_store(app: legato.App) -> PostgresStore:
    store = (await app.ops_async()).store
    assert isinstance(store, PostgresStore)
    return store


def test_a_send_whose_reply_was_lost_is_delivered_once(db_url: str) -> None:
    app = legato.App("lost", db_url)

    @app.workflow()
    async def wf(ctx: legato.Context) -> Any:
        return await ctx.wait_for_event("go")

    async def main() -> Any:
        handle = await app.start_async(wf, run_id="r")
        lost = _lose_next_replies(await _app_store(app), 1)
        try:
            assert await app.send_event_async("r", "go", {"n": 1}) is True  # no id of ours
            assert lost == [1]  # the reply was lost, and the store retried
            await app.run_until_idle_async()
            return await handle.result_async()
        finally:
            await app.close_async()

    assert asyncio.run(main()) == {"n": 1}
    assert sql(db_url, "SELECT count(*) FROM events") == [(1,)]  # one delivery, not two


def test_a_cancel_whose_reply_was_lost_is_not_a_conflict(db_url: str) -> None:
    app = legato.App("lost", db_url)

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        await ctx.wait_for_event("never")

    async def main() -> None:
        await app.start_async(wf, run_id="c")
        lost = _lose_next_replies(await _app_store(app), 1)
        try:
            await app.cancel_async("c")  # would say "already cancelled" before
            assert lost == [1]
            assert (await app.handle("c").status_async()) == "cancelled"
            with pytest.raises(legato.RunConflict, match="already cancelled"):
                await app.cancel_async("c")  # a second cancel of the person's own is one
        finally:
            await app.close_async()

    asyncio.run(main())
