"""What the AI layer learned about deployments (servers differ in what they accept), written
once for both dialects (see ``dialect.py``). A fact is a name and a JSON value; the last
write wins, so a fact that changes (a server upgraded) is simply learned again."""

from __future__ import annotations

from legato.store.dialect import Dialect, Tx


class SQLDeployments(Dialect):
    """The :class:`~legato.store.base.DeploymentStore` role."""

    async def learn_about_deployment(
        self, deployment: str, fact: str, value: str, now: float
    ) -> None:
        async def work(tx: Tx) -> None:
            await tx.execute(
                "INSERT INTO deployment_facts (deployment, fact, value, learned_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (deployment, fact) DO UPDATE SET"
                " value = excluded.value, learned_at = excluded.learned_at",
                (deployment, fact, value, now),
            )

        await self._transact(work, one_statement=True)

    async def deployment_facts(self, deployment: str) -> dict[str, str]:
        rows = await self._select(
            "SELECT fact, value FROM deployment_facts WHERE deployment = ?", (deployment,)
        )
        return {str(fact): str(value) for fact, value in rows}
