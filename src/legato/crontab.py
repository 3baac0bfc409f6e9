"""Cron expressions in a time zone: when a schedule's ticks fall, and which of them fire.

Times are epoch seconds, as everywhere in legato. The expression is read by croniter in the
schedule's zone, so ``0 9 * * 1-5`` in ``Europe/Berlin`` stays at 9:00 local time across
daylight saving changes. Five fields, or six with seconds as the sixth (``* * * * * */10``:
every ten seconds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from legato.errors import ConfigurationError

#: after downtime (or a pause of the worker), which of the missed ticks fire:
#: ``skip`` none but a tick at most ``LATE_GRACE`` late, ``one`` the latest, ``all`` every one
Catchup = Literal["skip", "one", "all"]
CATCHUPS: tuple[Catchup, ...] = ("skip", "one", "all")
#: when a tick comes while the schedule's previous run is still going: ``skip`` the tick,
#: ``buffer`` one tick to start when the previous run ends, ``allow`` both to run, ``cancel``
#: the previous run and start the new one
Overlap = Literal["skip", "buffer", "allow", "cancel"]
OVERLAPS: tuple[Overlap, ...] = ("skip", "buffer", "allow", "cancel")
#: a tick this late is still on time for ``catchup="skip"`` (a busy or restarting worker)
LATE_GRACE = 60.0
#: at most this many missed ticks fire at once with ``catchup="all"`` (the latest ones)
MAX_CATCHUP = 10_000


@dataclass(frozen=True)
class Cron:
    """A cron expression and the zone its fields are read in."""

    expression: str
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str) or not croniter.is_valid(self.expression):
            raise ConfigurationError(
                f"bad cron expression {self.expression!r}: use five fields (minute hour"
                " day-of-month month day-of-week, e.g. '0 9 * * 1-5'), or six with seconds"
                " last ('* * * * * */10')"
            )
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(
                f"unknown time zone {self.tz!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'"
            ) from None

    def next_after(self, ts: float) -> float:
        """The first tick strictly after ``ts``."""
        start = datetime.fromtimestamp(ts, self._zone())
        return float(croniter(self.expression, start).get_next(float))

    def ticks(self, first: float, last: float, limit: int = MAX_CATCHUP) -> list[float]:
        """The latest ``limit`` ticks from ``first`` to ``last`` (both included), in order.

        Counted back from ``last``: a schedule of every second that missed a year costs
        ``limit`` steps, not thirty million."""
        out: list[float] = []
        it = croniter(self.expression, datetime.fromtimestamp(math.floor(last) + 1, self._zone()))
        while len(out) < limit:
            tick = float(it.get_prev(float))
            if tick < first:
                break
            out.append(tick)
        out.reverse()
        return out

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


def catch_up(policy: Catchup, due: Sequence[float], now: float) -> list[float]:
    """Which of the ``due`` ticks (in order, none after ``now``) fire under ``policy``."""
    if not due:
        return []
    if policy == "all":
        return list(due)
    if policy == "one" or now - due[-1] <= LATE_GRACE:
        return [due[-1]]
    return []


def check_policies(catchup: str, overlap: str) -> None:
    if catchup not in CATCHUPS:
        raise ConfigurationError(f"catchup must be one of {', '.join(CATCHUPS)}, got {catchup!r}")
    if overlap not in OVERLAPS:
        raise ConfigurationError(f"overlap must be one of {', '.join(OVERLAPS)}, got {overlap!r}")
