"""The serving day's transactions seen so far: the intraday part of every card's windows.

Each accepted transaction is recorded once, atomically with the checks that guard it: a
transaction id already seen that day gets the first answer back (nothing recorded), a
timestamp earlier than the latest accepted one by more than the allowed lateness is
refused (nothing recorded). A rejected request therefore never touches the windows.

`MemoryIntraday` serves one replica (a restart mid-day loses the day's transactions seen
so far: later answers that day miss them in their card's windows). `RedisIntraday` shares
the windows between replicas through Redis, each addition one Lua script (atomic), under
its own key space ``<prefix>:serve:{<day>}:...``, apart from the work queue's keys; a
restart loses nothing. Keys expire `KEEP_SECONDS` after the day's last write: the next day
reads yesterday's rows until its file arrives.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import orjson

from trainer.serving.requests import Row, id_key

#: How long Redis keeps a day's keys after its last write: yesterday is read at the roll.
KEEP_SECONDS = 3 * 86_400
#: Width of a time as zero-padded text, so Lua compares times as strings (Lua numbers are
#: doubles: nanoseconds since 1970 do not fit exactly).
TIME_DIGITS = 20


@dataclass(frozen=True)
class Added:
    """What recording one transaction did."""

    status: str
    """``added``, ``duplicate`` (its first answer in `answer`, or pending) or ``late``."""
    card_rows: list[Row] = field(default_factory=list)
    """With ``added``: every row of the card that day so far, this one included."""
    answer: bytes | None = None
    """With ``duplicate``: the first answer, None while it is being computed."""
    latest_ns: int | None = None
    """With ``late``: the latest accepted time."""


#: What `add_many` answers for a recorded row.
ADDED = Added("added")


@runtime_checkable
class Intraday(Protocol):
    """Where the serving day's transactions are kept."""

    def add(self, day: dt.date, row: Row, lateness_ns: int) -> Added:
        """Record `row` unless its id was seen that day or it is too late."""

    def add_many(self, day: dt.date, rows: list[Row], lateness_ns: int) -> list[Added]:
        """`add` of each row in turn (their card rows not returned: a batch reads the day)."""

    def set_answer(self, day: dt.date, transaction_id: object, answer: bytes) -> None:
        """Keep the answer given for a recorded transaction (for its duplicates)."""

    def set_answers(self, day: dt.date, answers: dict[str, bytes]) -> None:
        """`set_answer` of many, keyed by ``id_key`` of their transaction ids."""

    def answer(self, day: dt.date, transaction_id: object) -> bytes | None:
        """The answer kept for a transaction id, None if none (yet)."""

    def day_rows(self, day: dt.date) -> list[Row]:
        """Every transaction recorded on `day`, in recording order."""

    def latest_ns(self, day: dt.date) -> int | None:
        """The latest accepted time of `day`, None before its first transaction."""


def encode(row: Row) -> bytes:
    """A row as JSON text (floats round-trip exactly; ids keep int or text)."""
    return orjson.dumps(list(row))


def decode(data: bytes | str) -> Row:
    """`encode`'s inverse."""
    tx, t, card, terminal, amount = orjson.loads(data)
    return tx, int(t), card, terminal, float(amount)


class MemoryIntraday:
    """One replica's intraday transactions, in this process (lost on restart)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._days: dict[dt.date, _Day] = {}

    def _day(self, day: dt.date) -> _Day:
        if day not in self._days:
            self._days[day] = _Day()
            for old in sorted(self._days)[:-3]:  # yesterday is read at the roll; older not
                del self._days[old]
        return self._days[day]

    def add(self, day: dt.date, row: Row, lateness_ns: int) -> Added:
        """Record `row` (see `Intraday.add`)."""
        key = id_key(row[0])
        with self._lock:
            state = self._day(day)
            if key in state.answers:
                return Added("duplicate", answer=state.answers[key])
            if state.latest is not None and row[1] + lateness_ns < state.latest:
                return Added("late", latest_ns=state.latest)
            state.answers[key] = None
            state.rows.append(row)
            card = state.cards.setdefault(id_key(row[2]), [])
            card.append(row)
            state.latest = row[1] if state.latest is None else max(state.latest, row[1])
            return Added("added", card_rows=list(card))

    def add_many(self, day: dt.date, rows: list[Row], lateness_ns: int) -> list[Added]:
        """Record each of `rows` in turn (see `Intraday.add_many`), under one lock."""
        out = []
        with self._lock:
            state = self._day(day)
            answers, recorded, cards = state.answers, state.rows, state.cards
            latest = state.latest
            for row in rows:
                key = id_key(row[0])
                if key in answers:
                    out.append(Added("duplicate", answer=answers[key]))
                elif latest is not None and row[1] + lateness_ns < latest:
                    out.append(Added("late", latest_ns=latest))
                else:
                    answers[key] = None
                    recorded.append(row)
                    cards.setdefault(id_key(row[2]), []).append(row)
                    latest = row[1] if latest is None else max(latest, row[1])
                    out.append(ADDED)
            state.latest = latest
        return out

    def set_answer(self, day: dt.date, transaction_id: object, answer: bytes) -> None:
        """Keep the answer of a recorded transaction."""
        with self._lock:
            self._day(day).answers[id_key(transaction_id)] = answer

    def set_answers(self, day: dt.date, answers: dict[str, bytes]) -> None:
        """Keep the answers of recorded transactions (keys: ``id_key`` of their ids)."""
        with self._lock:
            self._day(day).answers.update(answers)

    def answer(self, day: dt.date, transaction_id: object) -> bytes | None:
        """The answer kept for `transaction_id` on `day`."""
        with self._lock:
            return self._day(day).answers.get(id_key(transaction_id))

    def day_rows(self, day: dt.date) -> list[Row]:
        """Every row recorded on `day`."""
        with self._lock:
            return list(self._days[day].rows) if day in self._days else []

    def latest_ns(self, day: dt.date) -> int | None:
        """The latest accepted time of `day`."""
        with self._lock:
            return self._days[day].latest if day in self._days else None


@dataclass
class _Day:
    answers: dict[str, bytes | None] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    cards: dict[str, list[Row]] = field(default_factory=dict)
    latest: int | None = None


#: KEYS: answers hash, rows list, card list, latest time. ARGV: id key, row, time (padded),
#: time + lateness (padded), seconds to keep. One script: the checks and the writes are
#: atomic, so a refused transaction writes nothing and two replicas never both add an id.
ADD_SCRIPT = """
local seen = redis.call('HGET', KEYS[1], ARGV[1])
if seen then return {'duplicate', seen} end
local latest = redis.call('GET', KEYS[4])
if latest and ARGV[4] < latest then return {'late', latest} end
redis.call('HSET', KEYS[1], ARGV[1], '')
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[2])
if (not latest) or ARGV[3] > latest then redis.call('SET', KEYS[4], ARGV[3]) end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
local rows = redis.call('LRANGE', KEYS[3], 0, -1)
table.insert(rows, 1, 'added')
return rows
"""


#: `ADD_SCRIPT` for many rows in one call (a batch): KEYS answers hash, rows list, latest
#: time; ARGV seconds to keep, the card lists' key prefix, then per row its id key, row,
#: time (padded), time + lateness (padded) and card key. Answers status, value per row.
#: A card list key is built in the script from the day's own prefix, so every key stays
#: in the day's hash slot.
ADD_MANY_SCRIPT = """
local out = {}
local latest = redis.call('GET', KEYS[3])
local cards = {}
for i = 3, #ARGV, 5 do
  local seen = redis.call('HGET', KEYS[1], ARGV[i])
  if seen then
    table.insert(out, 'duplicate'); table.insert(out, seen)
  elseif latest and ARGV[i + 3] < latest then
    table.insert(out, 'late'); table.insert(out, latest)
  else
    redis.call('HSET', KEYS[1], ARGV[i], '')
    redis.call('RPUSH', KEYS[2], ARGV[i + 1])
    local card = ARGV[2] .. ARGV[i + 4]
    redis.call('RPUSH', card, ARGV[i + 1])
    cards[card] = true
    if (not latest) or ARGV[i + 2] > latest then latest = ARGV[i + 2] end
    table.insert(out, 'added'); table.insert(out, '')
  end
end
if latest then redis.call('SET', KEYS[3], latest) end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[1]) end
for card in pairs(cards) do redis.call('EXPIRE', card, ARGV[1]) end
return out
"""
#: Rows per `ADD_MANY_SCRIPT` call: Redis runs one script at a time, so a batch of many
#: thousands is cut in pieces that each hold the server for milliseconds only.
ADD_CHUNK = 2_000


def _bytes(value: bytes | str | None) -> bytes:
    """A Redis reply as bytes, whether the client decodes responses or not."""
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


class RedisIntraday:
    """The replicas' shared intraday transactions, in Redis (survive a restart)."""

    def __init__(self, client, prefix: str = "fraudpipe") -> None:
        self._redis = client
        self._prefix = f"{prefix}:serve"
        self._add = client.register_script(ADD_SCRIPT)
        self._add_many = client.register_script(ADD_MANY_SCRIPT)

    def _key(self, day: dt.date, part: str) -> str:
        # The day in braces is a Redis Cluster hash tag: a day's keys share one slot.
        return f"{self._prefix}:{{{day.isoformat()}}}:{part}"

    def add(self, day: dt.date, row: Row, lateness_ns: int) -> Added:
        """Record `row` (see `Intraday.add`) in one atomic script."""
        reply = self._add(
            keys=[self._key(day, "answers"), self._key(day, "rows"),
                  self._key(day, f"card:{id_key(row[2])}"), self._key(day, "latest")],
            args=[id_key(row[0]), encode(row), str(row[1]).zfill(TIME_DIGITS),
                  str(row[1] + lateness_ns).zfill(TIME_DIGITS), KEEP_SECONDS])
        status = _bytes(reply[0]).decode()
        if status == "duplicate":
            return Added("duplicate", answer=_bytes(reply[1]) or None)
        if status == "late":
            return Added("late", latest_ns=int(reply[1]))
        return Added("added", card_rows=[decode(item) for item in reply[1:]])

    def add_many(self, day: dt.date, rows: list[Row], lateness_ns: int) -> list[Added]:
        """Record each of `rows` in turn: `ADD_MANY_SCRIPT`, one call per `ADD_CHUNK` rows."""
        out: list[Added] = []
        for start in range(0, len(rows), ADD_CHUNK):
            chunk = rows[start:start + ADD_CHUNK]
            args: list = [KEEP_SECONDS, self._key(day, "card:")]
            for row in chunk:
                args += [id_key(row[0]), encode(row), str(row[1]).zfill(TIME_DIGITS),
                         str(row[1] + lateness_ns).zfill(TIME_DIGITS), id_key(row[2])]
            reply = self._add_many(keys=[self._key(day, "answers"), self._key(day, "rows"),
                                         self._key(day, "latest")], args=args)
            for status, value in zip(reply[0::2], reply[1::2], strict=True):
                status = _bytes(status).decode()
                if status == "added":
                    out.append(ADDED)
                elif status == "duplicate":
                    out.append(Added("duplicate", answer=_bytes(value) or None))
                else:
                    out.append(Added("late", latest_ns=int(value)))
        return out

    def set_answer(self, day: dt.date, transaction_id: object, answer: bytes) -> None:
        """Keep the answer of a recorded transaction."""
        self._redis.hset(self._key(day, "answers"), id_key(transaction_id), answer)

    def set_answers(self, day: dt.date, answers: dict[str, bytes]) -> None:
        """Keep the answers of recorded transactions, `ADD_CHUNK` per call."""
        items = list(answers.items())
        for start in range(0, len(items), ADD_CHUNK):
            self._redis.hset(self._key(day, "answers"),
                             mapping=dict(items[start:start + ADD_CHUNK]))

    def answer(self, day: dt.date, transaction_id: object) -> bytes | None:
        """The answer kept for `transaction_id` on `day`."""
        value = self._redis.hget(self._key(day, "answers"), id_key(transaction_id))
        return _bytes(value) or None

    def day_rows(self, day: dt.date) -> list[Row]:
        """Every row recorded on `day`."""
        return [decode(item) for item in self._redis.lrange(self._key(day, "rows"), 0, -1)]

    def latest_ns(self, day: dt.date) -> int | None:
        """The latest accepted time of `day`."""
        value = self._redis.get(self._key(day, "latest"))
        return int(value) if value is not None else None
