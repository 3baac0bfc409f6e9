"""Controls that match nothing: a policy rule for tool ``refnd`` governs no call, and a pause of
``nightly-reprot`` stops no run. A typo in a safety control must not pass silently, so a worker
names each one when it starts (the gate cannot: it only ever sees the names that do exist)."""

from __future__ import annotations

from collections.abc import Collection

from legato.errors import did_you_mean
from legato.governance.policy import Policy


def unmatched_controls(
    app: str,
    policy: Policy | None,
    tools: Collection[str],
    workflows: Collection[str],
    paused: Collection[str],
) -> list[str]:
    """One sentence per policy rule, throttle or pause that names no tool or workflow of the
    app ``app``."""
    found = []
    if policy is not None:
        for name in policy.tools:
            if name not in tools:
                found.append(
                    f"policy: tools.{name} matches no tool of app {app!r}"
                    f"{did_you_mean(name, tools)}: its rules and risk apply to nothing"
                )
        for i, throttle in enumerate(policy.throttles):
            if throttle.tool is not None and throttle.tool not in tools:
                found.append(
                    f"policy: throttles[{i}] is for tool {throttle.tool!r}, which app {app!r}"
                    f" does not have{did_you_mean(throttle.tool, tools)}: it limits nothing"
                )
    for name in paused:
        if name not in workflows:
            found.append(
                f"workflow {name!r} is paused, but app {app!r} has no such workflow"
                f"{did_you_mean(name, workflows)}: the pause stops none of its runs"
            )
    return found
