"""A fenced lease queue of dataset dates on Redis: at-least-once, earliest date first.

Fixes the GKE sample's queue (docs/facts.md#the-gke-sample, #redis-and-memorystore): a lease
records a deadline taken
from Redis `TIME` and a random token; a heartbeat renews it; a reaper that runs inside
every `lease()` returns expired leases to pending and counts attempts, dead-lettering a
date after `max_attempts`; complete, fail, renew and release check the token, so a holder
whose lease expired and went to someone else gets `LeaseLostError` instead of deleting
the new holder's item. Every state change is one Lua script (`trainer.queue.scripts`).

Training is one warm-start chain, so by default the queue hands out one lease at a time
(`serial=True`): `lease()` returns None while any date is leased. The queue is only the
work list; the lineage on the share is the record of what was trained (a Redis that loses
writes can cause a re-delivery, never a second lineage entry: the step skips known days
and moves the head only by compare-and-swap, with `assert_holds` as its guard).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar, cast

import redis

from trainer.data.schema import parse_date
from trainer.errors import LeaseLostError
from trainer.queue import scripts as queue_scripts
from trainer.queue.settings import RedisSettings

T = TypeVar("T")


@dataclass(frozen=True)
class Lease:
    """One date handed to one holder until `deadline` (Redis clock)."""

    date: dt.date
    """The dataset's day."""
    token: str
    """Random fencing token; only its bearer may renew, complete, fail or release."""
    deadline: dt.datetime
    """When the reaper may hand the date to someone else (UTC, Redis `TIME`)."""
    attempt: int
    """1 for the first hand-out of the date, 2 after one failure or expiry, ..."""
    holder: str = ""
    """Who leased it (host:pid of the worker), for stats and logs."""


@dataclass(frozen=True)
class LeasedItem:
    """A row of `QueueStats.leased`."""

    date: dt.date
    holder: str
    deadline: dt.datetime
    """UTC."""


@dataclass(frozen=True)
class QueueStats:
    """Counts of the queue's states, plus who holds what."""

    pending: int
    leased: list[LeasedItem] = field(default_factory=list)
    dead: int = 0
    done: int = 0

    def to_json(self) -> dict[str, object]:
        """The stats as JSON.

        Returns:
            `{"pending": int, "leased": [{"date", "holder", "deadline"}], "dead": int,
            "done": int}`.
        """
        return {
            "pending": self.pending,
            "leased": [
                {"date": i.date.isoformat(), "holder": i.holder,
                 "deadline": i.deadline.isoformat()} for i in self.leased
            ],
            "dead": self.dead,
            "done": self.done,
        }


@dataclass(frozen=True)
class QueueKeys:
    """The Redis keys of one queue, in the order the Lua scripts expect them."""

    pending: str
    leased: str
    holders: str
    attempts: str
    dead: str
    done: str
    legacy: str
    reasons: str

    @classmethod
    def of(cls, settings: RedisSettings) -> QueueKeys:
        """The key names for `settings`' prefix and queue name."""
        base = f"{settings.key_prefix}:{settings.queue_name}"
        names = ["pending", "leased", "holders", "attempts", "dead", "done"]
        keys = {name: f"{base}:{name}" for name in names}
        # The sample fills exactly `datasets`, so the legacy list carries no prefix.
        return cls(**keys, legacy=settings.queue_name, reasons=f"{base}:reasons")

    def all(self) -> list[str]:
        """Every key, in the order the Lua scripts take them."""
        return [self.pending, self.leased, self.holders, self.attempts,
                self.dead, self.done, self.legacy, self.reasons]


def _from_ms(ms: str | int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ms) / 1000, tz=dt.UTC)


def _iso(day: dt.date | str) -> str:
    return day.isoformat() if isinstance(day, dt.date) else parse_date(str(day)).isoformat()


class WorkQueue:
    """The dataset queue. Safe to share between threads; one per process is enough.

    Args:
        settings: where Redis is and the key prefix / queue name.
        lease_seconds: how long a lease lasts without renewal.
        max_attempts: hand-outs (failures or expiries) before a date is dead-lettered.
        serial: hand out one lease at a time (the warm-start chain needs it).
        client: an existing client (tests); by default `settings.client()`.
    """

    def __init__(
        self,
        settings: RedisSettings,
        *,
        lease_seconds: float = 300,
        max_attempts: int = 3,
        serial: bool = True,
        client: redis.Redis | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.settings = settings
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.serial = serial
        self.keys = QueueKeys.of(settings)
        self.redis = client if client is not None else settings.client()
        self._scripts = {
            name: self.redis.register_script(getattr(queue_scripts, name))
            for name in ("PUSH", "LEASE", "RENEW", "COMPLETE", "FAIL", "RELEASE",
                         "RETRY_DEAD", "MARK_DONE")
        }

    # -- plumbing ---------------------------------------------------------------------
    def _run(self, name: str, *args: str | int | float) -> list[str]:
        """Run one of the Lua scripts; its reply is a list of strings (decode_responses)."""
        try:
            return cast(list[str], self._scripts[name](keys=self.keys.all(), args=list(args)))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self.settings.explain(exc) from exc

    def _redis_call(self, call: Callable[[], T]) -> T:
        """Run one plain Redis command, translating connection failures."""
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self.settings.explain(exc) from exc

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease_seconds * 1000))

    def _checked(self, lease: Lease, reply: list[str], action: str) -> list[str]:
        if reply[0] == "lost":
            now_held_by = reply[1] or "nobody"
            raise LeaseLostError(
                f"cannot {action} {lease.date}: lease {lease.token[:8]} (attempt "
                f"{lease.attempt}) expired and the date is now held by {now_held_by}"
            )
        return reply

    # -- producer side ----------------------------------------------------------------
    def push(self, dates: Iterable[dt.date | str]) -> list[dt.date]:
        """Queue dates; those already pending, leased, done or dead are left alone.

        Returns:
            The dates actually added, earliest first.
        """
        iso = sorted({_iso(d) for d in dates})
        if not iso:
            return []
        return sorted(dt.date.fromisoformat(d) for d in self._run("PUSH", *iso))

    def mark_done(self, dates: Iterable[dt.date | str]) -> list[dt.date]:
        """Record dates the lineage already holds as done (never handed out again)."""
        iso = sorted({_iso(d) for d in dates})
        if not iso:
            return []
        return sorted(dt.date.fromisoformat(d) for d in self._run("MARK_DONE", *iso))

    def forget_done(self, dates: Iterable[dt.date | str]) -> None:
        """Let `dates` be queued again although they are recorded as done.

        The queue never re-hands a done date, which is right until a replay moves the head
        back behind it; the lineage (the authority) then says it is untrained.
        """
        iso = sorted({_iso(d) for d in dates})
        if iso:
            self._redis_call(lambda: self.redis.srem(self.keys.done, *iso))

    def retry_dead(self) -> list[dt.date]:
        """Move every dead-lettered date back to pending with a fresh attempt count."""
        return sorted(dt.date.fromisoformat(d) for d in self._run("RETRY_DEAD"))

    # -- worker side ------------------------------------------------------------------
    def lease(self, holder: str) -> Lease | None:
        """Lease the earliest pending date, after reaping expired leases.

        Returns:
            The lease, or None if nothing is pending or (serial queue) a date is leased.
        """
        token = secrets.token_hex(16)
        reply = self._run("LEASE", holder, token, self._lease_ms, self.max_attempts,
                          "1" if self.serial else "0")
        if reply[0] != "leased":
            return None
        return Lease(
            date=dt.date.fromisoformat(reply[1]),
            token=token,
            deadline=_from_ms(reply[2]),
            attempt=int(reply[3]),
            holder=holder,
        )

    def renew(self, lease: Lease) -> Lease:
        """Push the deadline `lease_seconds` past Redis' now. Raises `LeaseLostError`."""
        reply = self._checked(lease, self._run("RENEW", lease.date.isoformat(), lease.token,
                                               self._lease_ms), "renew")
        return Lease(lease.date, lease.token, _from_ms(reply[1]), lease.attempt, lease.holder)

    def complete(self, lease: Lease) -> None:
        """Mark the date done. Raises `LeaseLostError` if the token no longer holds it."""
        self._checked(lease, self._run("COMPLETE", lease.date.isoformat(), lease.token),
                      "complete")

    def fail(self, lease: Lease, reason: str, permanent: bool = False) -> bool:
        """Give the date back after a failure, counting the attempt.

        Args:
            lease: the caller's lease.
            reason: error text, kept in the dead-letter entry.
            permanent: dead-letter at once (retrying cannot help).

        Returns:
            True if the date was dead-lettered, False if it was requeued.
        """
        reply = self._checked(lease, self._run(
            "FAIL", lease.date.isoformat(), lease.token, reason,
            "1" if permanent else "0", self.max_attempts), "fail")
        return reply[0] == "dead"

    def release(self, lease: Lease) -> None:
        """Give the date back without counting an attempt (shutdown on SIGTERM)."""
        self._checked(lease, self._run("RELEASE", lease.date.isoformat(), lease.token),
                      "release")

    def assert_holds(self, lease: Lease) -> None:
        """Raise `LeaseLostError` unless `lease`'s token still holds its date.

        This is the guard the step calls under the lineage lock just before it moves
        the head. A lease past its deadline that the reaper has not handed to anyone
        else still holds: exclusivity comes from the token, not from the clock.
        """
        raw = self._redis_call(lambda: self.redis.hget(self.keys.holders, lease.date.isoformat()))
        if raw is None or json.loads(raw).get("token") != lease.token:
            holder = json.loads(raw).get("holder") if raw else "nobody"
            raise LeaseLostError(
                f"lease {lease.token[:8]} on {lease.date} (attempt {lease.attempt}) no longer "
                f"holds it (now held by {holder}); refusing to commit"
            )

    # -- observation ------------------------------------------------------------------
    def stats(self) -> QueueStats:
        """A consistent snapshot (one MULTI) of pending, leased, dead and done."""
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zcard(self.keys.pending)
                pipe.llen(self.keys.legacy)
                pipe.hgetall(self.keys.holders)
                pipe.hlen(self.keys.dead)
                pipe.scard(self.keys.done)
                pending, legacy, holders, dead, done = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self.settings.explain(exc) from exc
        leased = []
        for day, raw in sorted(holders.items()):
            info = json.loads(raw)
            leased.append(LeasedItem(dt.date.fromisoformat(day), info["holder"],
                                     _from_ms(info["deadline"])))
        return QueueStats(pending=pending + legacy, leased=leased, dead=dead, done=done)

    def dead(self) -> list[tuple[str, str, int]]:
        """Dead-lettered items as (date or raw item, reason, attempts), sorted."""
        entries = self._redis_call(lambda: self.redis.hgetall(self.keys.dead))
        out = []
        for item, raw in sorted(entries.items()):
            info = json.loads(raw)
            out.append((str(item), str(info["reason"]), int(info["attempts"])))
        return out

    def done(self) -> set[dt.date]:
        """Dates completed through the queue."""
        members = self._redis_call(lambda: self.redis.smembers(self.keys.done))
        return {dt.date.fromisoformat(str(d)) for d in members}
