"""The database's clock, one for every replica.

Replicas run on different hosts whose clocks drift apart; what they must compare across
replicas (a lease heartbeat's age) is stamped and judged with the PostgreSQL server's
clock instead, so a replica whose clock is off neither takes a live holder for dead nor a
dead one for alive.
"""

from __future__ import annotations

from bot.store.postgres.base import PgStoreBase


class PgClock(PgStoreBase):
    async def database_now(self) -> float:
        """The server's time now, in epoch seconds (`clock_timestamp()`: the moment of the
        call, not the start of a transaction)."""
        value = await self._pool.fetchval(
            "SELECT extract(epoch FROM clock_timestamp())::double precision"
        )
        return float(value)
