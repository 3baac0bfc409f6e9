"""What a store says about itself: where it is, how often workers should poll it, and the
version of its schema. (Every check ends with ``close``.)"""

from __future__ import annotations

from legato.store.base import Store


async def check_store_describes_itself(store: Store) -> None:
    assert isinstance(store.url, str) and store.url
    assert isinstance(store.poll_interval, int | float) and store.poll_interval > 0
    version = await store.schema_version()
    assert isinstance(version, int) and version >= 1
    assert await store.schema_version() == version
