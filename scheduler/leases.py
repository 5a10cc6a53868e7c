"""Shared-mode ledger operations (several instances on one database), as a `Store` mixin.

Leases are computed in SQL on the database's clock, never from a host's clock; every
ownership change is a compare-and-swap.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.ledger import Entry, State
from scheduler.schema import calls, instances, targets, to_row


class LeaseOps:
    engine: AsyncEngine
    _insert: Any

    def _begin(self) -> Any:  # provided by Store
        raise NotImplementedError

    async def _select(self, query: Any) -> list[Entry]:  # provided by Store
        raise NotImplementedError

    def _now(self) -> Any:
        """The database's clock in UNIX seconds: leases never depend on the hosts' clocks."""
        if self.engine.dialect.name == "postgresql":
            return func.extract("epoch", func.clock_timestamp())
        return (func.julianday("now") - 2440587.5) * 86400.0

    async def db_now(self) -> float:
        async with self._begin() as conn:
            return float((await conn.execute(select(self._now()))).scalar_one())

    async def claim_leased(
        self, entry: Entry, lease_s: float, window_s: float
    ) -> tuple[bool, str | None]:
        """In one transaction: insert the claim (with owner and a lease on the database clock)
        unless the key exists, then reserve the provider target. Returns (inserted, key of the
        call that already hit the target inside `window_s` for an overlapping span, if any);
        such a claim is recorded `suppressed` at once."""
        insert = self._insert(calls).values(**to_row(entry), lease_until=self._now() + lease_s)
        async with self._begin() as conn:
            result = await conn.execute(insert.on_conflict_do_nothing(index_elements=["key"]))
            if result.rowcount != 1:
                return False, None
            previous = await self._reserve_target(conn, entry, window_s)
            if previous is not None:
                await conn.execute(
                    update(calls)
                    .where(calls.c.key == entry.key)
                    .values(state=str(State.SUPPRESSED), detail=previous, lease_until=None)
                )
            return True, previous

    async def _reserve_target(self, conn: Any, entry: Entry, window_s: float) -> str | None:
        stmt = self._insert(targets).values(
            target=entry.target,
            call_key=entry.key,
            span_start=entry.span_start.timestamp(),
            span_end=entry.span_end.timestamp(),
            hit_at=self._now(),
        )
        fresh = stmt.excluded
        allowed = or_(
            targets.c.call_key == fresh.call_key,
            targets.c.hit_at < fresh.hit_at - window_s,
            targets.c.span_end <= fresh.span_start,
            targets.c.span_start >= fresh.span_end,
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=["target"],
            set_={k: getattr(fresh, k) for k in ("call_key", "span_start", "span_end", "hit_at")},
            where=allowed,
        ).returning(targets.c.call_key)
        if (await conn.execute(upsert)).first() is not None:
            return None
        holder = select(targets.c.call_key).where(targets.c.target == entry.target)
        return str((await conn.execute(holder)).scalar_one())

    async def lease_left(self, key: str) -> tuple[str, float] | None:
        """(owner, seconds its lease still runs) for an unsettled call, or None."""
        query = select(calls.c.owner, calls.c.lease_until - self._now()).where(
            (calls.c.key == key) & calls.c.state.in_([str(State.CLAIMED), str(State.SENT)])
        )
        async with self._begin() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None or row[1] is None else (str(row[0]), float(row[1]))

    async def take_over(self, key: str, owner: str, lease_s: float) -> bool:
        """Become the owner of an unsettled call whose lease has expired (compare-and-swap)."""
        stmt = (
            update(calls)
            .where(
                (calls.c.key == key)
                & calls.c.state.in_([str(State.CLAIMED), str(State.SENT)])
                & (calls.c.lease_until < self._now())
            )
            .values(owner=owner, lease_until=self._now() + lease_s)
        )
        async with self._begin() as conn:
            return bool((await conn.execute(stmt)).rowcount == 1)

    async def mark_sent(self, entry: Entry, owner: str, hold_s: float) -> bool:
        """Record `sent` only if we still own the call, extend the lease over the request and
        mark the target hit: the fence a paused instance cannot pass after a takeover."""
        values = to_row(entry)
        values.pop("key")
        values["owner"] = owner  # whatever the entry says, the fence decides who owns it
        stmt = (
            update(calls)
            .where((calls.c.key == entry.key) & (calls.c.owner == owner))
            .values(**values, lease_until=self._now() + hold_s)
        )
        async with self._begin() as conn:
            if (await conn.execute(stmt)).rowcount != 1:
                return False
            await conn.execute(
                update(targets)
                .where((targets.c.target == entry.target) & (targets.c.call_key == entry.key))
                .values(hit_at=self._now())
            )
        return True

    async def settle(self, entry: Entry) -> None:
        """Write an outcome, whoever owns the call now: the provider's answer is the truth."""
        values = to_row(entry)
        values.pop("key")
        values.pop("owner")
        async with self._begin() as conn:
            await conn.execute(
                update(calls).where(calls.c.key == entry.key).values(**values, lease_until=None)
            )

    async def unsettled(self, before: datetime) -> list[Entry]:
        """Claimed/sent calls whose span ended before `before` and whose lease has expired."""
        query = select(calls).where(
            calls.c.state.in_([str(State.CLAIMED), str(State.SENT)])
            & (calls.c.span_end <= before.timestamp())
            & (calls.c.lease_until.is_(None) | (calls.c.lease_until < self._now()))
        )
        return await self._select(query)

    async def open_tasks(self, actions: Collection[str], now: datetime) -> list[Entry]:
        """`ok` calls of `actions` with a task id whose span ends after `now`, by key."""
        query = select(calls).where(
            calls.c.action.in_(list(actions))
            & (calls.c.state == str(State.OK))
            & (calls.c.task_id != "")
            & (calls.c.span_end > now.timestamp())
        )
        return await self._select(query.order_by(calls.c.key))

    async def beat(self, instance: str, host: str, pid: int, config_hash: str) -> list[Any]:
        """Upsert this instance's heartbeat; return the instances seen in the last minute."""
        stmt = self._insert(instances).values(
            id=instance,
            host=host,
            pid=pid,
            config_hash=config_hash,
            started_at=self._now(),
            heartbeat_at=self._now(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"heartbeat_at": stmt.excluded.heartbeat_at, "config_hash": config_hash},
        )
        async with self._begin() as conn:
            await conn.execute(stmt)
            recent = select(instances).where(instances.c.heartbeat_at > self._now() - 60)
            return list((await conn.execute(recent)).all())

    async def instances(self) -> list[tuple[Any, float]]:
        """Every instance ever seen, with seconds since its last heartbeat."""
        async with self._begin() as conn:
            now = float((await conn.execute(select(self._now()))).scalar_one())
            rows = (await conn.execute(select(instances).order_by(instances.c.id))).all()
        return [(row, now - float(row.heartbeat_at)) for row in rows]
