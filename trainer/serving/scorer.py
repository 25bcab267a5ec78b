"""The service's state and its operations: score, roll the day, reload the head.

What serves a request is one immutable `Serving` (a verified head and the serving day's
history), read once per request: a reload or a day roll builds the next one aside and
swaps the reference, so a request in flight finishes with the head it started with and
no request waits for a load or fails because of one. Every answer names its checkpoint.

Features: a transaction of serving day S at time t gets its inputs from the query an
arrived day's scores come from (`trainer.serving.inputs`,
`trainer.features.prepared.day_features`, there over the whole day): S's history,
prepared for the day (`trainer.serving.history`), plus its card's
transactions of S recorded so far (`trainer.serving.intraday`); a batch takes the day's
rows so far, with all its rows as targets, in one call. The windows end at the row
itself by (time, transaction id), so later rows change nothing and the features equal
those of the arrival path over the full day, whose rows before t are the same. Recording
and reading the card's rows is one atomic step, so two replicas serving one card see each
other's earlier transactions.

Day roll: the wall clock's midnight in the share's time zone (``clock="wall"``), or the
first transaction of a later day (``clock="replay"``, for replaying recorded days). The
next day N's history is prepared in two parts (`trainer.serving.history`): its carried
part (days N-37 .. N-2, N-50 .. N-2 for the card inputs: the share's files and the days
served here) ahead, in the
background thread, in the last minutes of the day before (``prepare_ahead_seconds``
before midnight: of the wall clock, or under the replay clock of the latest transaction
accepted; the part is held beside the day's own history from then on); the roll prepares
only the day just served (its rows, or its file if it arrived) and installs (~0.2 s ->
~0.01 s at default size, ~3.4 s -> ~0.1 s at 100k a day: `bench/serve_roll.py`). The
day is then served from the two parts (a query looks up both, ~0.2 ms more than one; a
load or a reload prepares one): preparing them again as one right after the roll was
~0.4 s of background CPU at default size competing with the new day's first answers.
A carried part is used only if the share's days, labels and head are as they were when
it was prepared (`WatchKey`); otherwise, or when none is ready, the roll prepares the
whole history itself, as a load does.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd

from trainer.data.mapping import ColumnMapping
from trainer.features.compute import NS_PER_DAY
from trainer.features.prepared import day_rows
from trainer.serving.head import Head, head_sha256, load_head, top_reasons
from trainer.serving.history import (
    History,
    HistoryPart,
    load_history,
    prepare_carried,
    row_columns,
)
from trainer.serving.inputs import model_scores, one_row_inputs, rows_inputs
from trainer.serving.intraday import Intraday
from trainer.serving.metrics import Metrics
from trainer.serving.requests import (
    IdKinds,
    RequestError,
    Row,
    id_key,
    parse_batch,
    parse_one,
    plain,
)
from trainer.share.layout import Share

log = logging.getLogger(__name__)

EPOCH = dt.date(1970, 1, 1)
#: What a reload watches: the lineage head's sha256, and the (mtime, size) of the ingest
#: manifest and of the labels directory.
WatchKey = tuple[str | None, tuple[tuple[int, int] | None, ...]]
#: How long a duplicate waits for its first answer while that one is being computed.
PENDING_WAIT_SECONDS = 2.0


class WouldWait(Exception):
    """`Scorer.score_one(wait=False)` would have to wait (a day roll, a pending first answer).

    Nothing was recorded: the caller scores the same body again where waiting is allowed.
    """


@dataclass(frozen=True)
class ServeConfig:
    """How the service runs (the `fraudpipe serve` options)."""

    mapping: ColumnMapping
    clock: str = "wall"
    """``wall``: the day is the wall clock's in the share's zone; ``replay``: the day moves
    to the day of the first transaction of a later day."""
    today: dt.date | None = None
    """The first serving day (default: wall clock today; replay: the head's day + 1)."""
    lateness_seconds: float = 0.0
    """A transaction may be this much older than the latest accepted one of its day."""
    reload_seconds: float = 2.0
    """How often the lineage head (and the ingest manifest) are checked for changes."""
    reasons: int = 3
    """Top reasons per single answer."""
    prepare_ahead_seconds: float = 900.0
    """The next day's carried history is prepared this long before midnight: of the wall
    clock, or under the replay clock of the latest transaction accepted (from then on it
    is held beside the day's: ~0.6 GiB at 100,000 transactions a day)."""
    freeze_gc: bool = False
    """After each install (load, reload, roll), move every object out of the garbage
    collector's sight (``gc.freeze``), after a load or a reload collecting once first:
    the service's process sets it, so the model, the history and the libraries are not
    rescanned by every full collection (~110 ms each with them, on the default-size
    share, a stall of the whole service every ~30 s at 300 requests/s; well under 1 ms
    without). A day roll only freezes: that collection would be most of its pause, and
    the history it replaces leaves no cycles behind (none found after three rolls,
    `bench/RESULTS.md`): it is freed by reference counts."""


@dataclass(frozen=True)
class Serving:
    """What answers requests: the verified head and the serving day's history."""

    head: Head
    history: History
    kinds: IdKinds

    @property
    def day(self) -> dt.date:
        """The serving day."""
        return self.history.day


class Scorer:
    """Scores transactions; keeps its `Serving` current (reload, day roll)."""

    def __init__(self, share: Share, config: ServeConfig, intraday: Intraday,
                 metrics: Metrics | None = None,
                 now: Callable[[], dt.datetime] | None = None):
        self.share = share
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self.config = config
        self.intraday = intraday
        self.metrics = metrics or Metrics()
        self.serving: Serving | None = None
        self.not_ready = "starting"
        self._roll_lock = threading.Lock()
        # the next day's carried history part, prepared ahead: (day, the share's key then,
        # the part); its lock is held while one is prepared, so a roll waits for it
        self._carry_lock = threading.Lock()
        self._carried: tuple[dt.date, WatchKey, HistoryPart] | None = None
        self._refused: WatchKey | None = None
        self._head_seen: tuple[tuple[int, ...], str | None] | None = None
        self._watched: WatchKey | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Counter children bound once: `labels()` looks its child up on every call.
        self._scored_count = self.metrics.transactions.labels("scored")
        self._duplicate = self.metrics.transactions.labels("duplicate")
        self._rejected = self.metrics.transactions.labels("rejected")

    # --- the clock ---------------------------------------------------------------------

    def wall_today(self) -> dt.date:
        """Today in the share's time zone (`now` is an aware datetime)."""
        return self._now().astimezone(zoneinfo.ZoneInfo(self.config.mapping.timezone)).date()

    def ready(self) -> tuple[bool, str]:
        """Whether a verified head and the serving day's history are loaded, and why not."""
        serving = self.serving
        if serving is None:
            return False, self.not_ready
        if self.config.clock == "wall" and serving.day != self.wall_today():
            return False, (f"the loaded history is {serving.day}'s; today is "
                           f"{self.wall_today()} (rolling)")
        return True, f"serving {serving.day} with the checkpoint of {serving.head.day}"

    # --- start, stop, reload -----------------------------------------------------------

    def load(self) -> bool:
        """Load the head and the first day's history; False (and why) when it cannot."""
        try:
            head = load_head(self.share)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the service unready
            self.not_ready = f"no verified head: {exc}"
            self.metrics.errors.labels("reload").inc()
            log.error("serve: %s", self.not_ready)
            return False
        day = self.config.today or (self.wall_today() if self.config.clock == "wall"
                                    else head.day + dt.timedelta(days=1))
        self._install(head, self._history(day, head))
        self._watched = self._watch_key()
        return True

    def _history(self, day: dt.date, head: Head, carried: HistoryPart | None = None) -> History:
        return load_history(self.share, day, self.intraday, carried, cards=head.cards)

    def _install(self, head: Head, history: History, collect: bool = True) -> None:
        self.serving = Serving(head, history, IdKinds(history.id_kinds()))
        self.metrics.set_model_day(head.day)
        self.metrics.set_state_day(history.day)
        if self.config.freeze_gc:
            if collect:  # the previous install's objects are scanned (cycles freed) once
                gc.unfreeze()
                gc.collect()
            gc.freeze()
        if history.missing:
            log.warning("serve: %s's history has no rows for %d of its days (%s .. %s: no "
                        "file, not served here)", history.day, len(history.missing),
                        history.missing[0], history.missing[-1])

    def _watch_key(self) -> WatchKey:
        """What a change of triggers a reload: the lineage head, the ingest manifest, labels.

        A label file added or replaced changes its directory's mtime (atomic renames).
        """
        stamps: list[tuple[int, int] | None] = []
        for path in (self.share.ingest_manifest, self.share.labels_dir):
            try:
                stat = path.stat()
                stamps.append((stat.st_mtime_ns, stat.st_size))
            except FileNotFoundError:
                stamps.append(None)
        return self._head_sha256(), tuple(stamps)

    def _head_sha256(self) -> str | None:
        """The lineage's head sha256, the file parsed again only when it changed.

        The lineage is replaced by an atomic rename (a new inode) on every commit; parsing
        its JSON on every check took ~1.5 ms of the GIL every 2 s (up to 150 ms under load).
        """
        try:
            stat = self.share.lineage.stat()
        except FileNotFoundError:
            return head_sha256(self.share)
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
        if self._head_seen is not None and self._head_seen[0] == stamp:
            return self._head_seen[1]
        sha = head_sha256(self.share)
        self._head_seen = (stamp, sha)
        return sha

    def check_reload(self) -> str:
        """Reload when the head or the manifest changed; returns what happened."""
        try:
            key = self._watch_key()
        except Exception as exc:  # noqa: BLE001 - a damaged lineage: keep serving
            self.metrics.errors.labels("reload").inc()
            log.error("serve: cannot read the lineage, keeping the loaded head: %s", exc)
            return "error"
        if self.serving is None:
            return "loaded" if self.load() else "refused"
        if key == self._watched or key == self._refused:
            return "unchanged"
        current = self.serving
        try:
            head = current.head if key[0] == current.head.sha256 else load_head(self.share)
        except Exception as exc:  # noqa: BLE001 - refuse it, keep the old one
            self._refused = key
            self.metrics.reloads.labels("refused").inc()
            self.metrics.errors.labels("reload").inc()
            log.error("serve: refused the new head %s, still serving %s: %s",
                      (key[0] or "none")[:12], current.head.sha256[:12], exc)
            return "refused"
        self._install(head, self._history(current.day, head))
        self._watched = key
        with self._carry_lock:
            self._carried = None  # prepared from the share as it was: the tick redoes it
        if head is current.head:  # the share's days changed (labels, a late file)
            self.metrics.reloads.labels("history").inc()
            log.info("serve: the share's days changed: %s's history re-read", current.day)
            return "history"
        self.metrics.reloads.labels("loaded").inc()
        log.info("serve: now serving checkpoint %s (trained through %s)", head.sha256[:12],
                 head.day)
        return "loaded"

    def start(self) -> None:
        """Load, then watch the share and the clock in a background thread."""
        self.load()
        self._thread = threading.Thread(target=self._watch, name="serve-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        next_check = 0.0
        while not self._stop.wait(0.2):
            try:
                self.tick()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.config.reload_seconds
                    self.check_reload()
            except Exception:  # noqa: BLE001 - the watcher must outlive one failure
                self.metrics.errors.labels("watch").inc()
                log.exception("serve: background check failed")

    def tick(self) -> None:
        """The clock's work: roll at midnight (wall clock), prepare the next day's ahead."""
        if self.serving is None:
            return
        if self.config.clock == "wall" and self.wall_today() > self.serving.day:
            self.roll_to(self.wall_today())
            return
        if self._ahead_due():
            self.prepare_ahead(self.serving.day + dt.timedelta(days=1))

    def _ahead_due(self) -> bool:
        """Whether the next day's carried history is to be prepared now.

        Within ``prepare_ahead_seconds`` of midnight: the wall clock's, or under the replay
        clock the latest accepted transaction's.
        """
        serving = self.serving
        if serving is None:
            return False
        next_day = serving.day + dt.timedelta(days=1)
        if self.config.clock == "replay":
            latest = self.intraday.latest_ns(serving.day)
            midnight_ns = (next_day - EPOCH).days * NS_PER_DAY
            return latest is not None and (
                midnight_ns - latest <= self.config.prepare_ahead_seconds * 1e9)
        zone = zoneinfo.ZoneInfo(self.config.mapping.timezone)
        midnight = dt.datetime.combine(next_day, dt.time(0), zone)
        left = midnight.astimezone(dt.UTC) - self._now().astimezone(dt.UTC)
        return left.total_seconds() <= self.config.prepare_ahead_seconds

    def prepare_ahead(self, day: dt.date) -> None:
        """Prepare serving day `day`'s carried history part, unless it is ready and current.

        For the serving head's inputs (a head changed since changes the key: not used).
        """
        serving = self.serving
        cards = serving is not None and serving.head.cards
        with self._carry_lock:
            key = self._watch_key()  # taken first: a change while preparing redoes it
            carried = self._carried
            if carried is not None and carried[0] == day and carried[1] == key:
                return
            self._carried = None  # the old part is not kept alive while the next is built
            self._carried = (day, key, prepare_carried(self.share, day, self.intraday, cards))

    def _take_carried(self, day: dt.date) -> HistoryPart | None:
        """The carried part prepared ahead for `day` if the share is unchanged since; taken.

        Waits for one being prepared (finishing it costs less than starting another).
        """
        with self._carry_lock:
            carried, self._carried = self._carried, None
            if carried is None or carried[0] != day:
                return None
            if carried[1] != self._watch_key():
                log.info("serve: the share changed since %s's history was prepared ahead: "
                         "prepared again at the roll", day)
                return None
            return carried[2]

    def roll_to(self, day: dt.date) -> Serving:
        """Make `day` the serving day (no-op when it already is or is past)."""
        with self._roll_lock:
            current = self.serving
            if current is None:
                raise RequestError(503, f"not ready: {self.not_ready}")
            if current.day >= day:
                return current
            carried = self._take_carried(day)
            started = time.perf_counter()
            history = self._history(day, current.head, carried)
            self._install(current.head, history, collect=False)
            self.metrics.rolls.inc()
            log.info("serve: day rolled from %s to %s in %.3f s (history carried %s)",
                     current.day, day, time.perf_counter() - started,
                     "ahead" if carried is not None else "prepared at the roll")
            assert self.serving is not None
            return self.serving

    # --- scoring -----------------------------------------------------------------------

    def _current(self) -> Serving:
        serving = self.serving
        if serving is None:
            raise RequestError(503, f"not ready: {self.not_ready}")
        return serving

    def _serving_for(self, serving: Serving, day: dt.date, stamp: object) -> Serving:
        """The `Serving` of `day` (rolling to it when the clock allows), else a 422."""
        if day == serving.day:
            return serving
        later = day > serving.day and (self.config.clock == "replay"
                                       or day == self.wall_today())
        if later:
            return self.roll_to(day)
        field = self.config.mapping.columns["timestamp"]
        raise RequestError(422, f"field {field!r} is {stamp}, on {day}; expected a time on "
                                f"{serving.day}, the day being served", field)

    def _late(self, stamp: object, latest_ns: int | None) -> RequestError:
        field = self.config.mapping.columns["timestamp"]
        latest = pd.Timestamp(latest_ns) if latest_ns is not None else None
        return RequestError(422, f"field {field!r} is {stamp}, earlier than the latest "
                                 f"accepted transaction of the day ({latest}) by more than "
                                 f"the allowed lateness ({self.config.lateness_seconds:g} s)",
                            field)

    def score_one(self, body: bytes, inputs: bool = False, reasons: int | None = None,
                  wait: bool = True) -> dict:
        """Score one transaction (a JSON object in the share's mapped columns).

        With `inputs`, the answer also lists every model input by name (for audits: they
        are the arrival path's features of the same row, bit for bit); `reasons` is the
        number of reasons (default: the service's). Without `wait`, a transaction of
        another day than the serving one, or a repeat whose first answer is still being
        computed, raises `WouldWait` with nothing recorded.
        """
        serving = self._current()
        row = parse_one(body, self.config.mapping, serving.kinds)
        day = day_of(row[1])
        if day != serving.day:
            if not wait:
                raise WouldWait(f"{day} is not the serving day {serving.day}")
            serving = self._serving_for(serving, day, pd.Timestamp(row[1]))
        added = self.intraday.add(serving.day, row, self._lateness_ns())
        if added.status == "late":
            self._rejected.inc()
            raise self._late(pd.Timestamp(row[1]), added.latest_ns)
        if added.status == "duplicate":
            if added.answer is None and not wait:
                raise WouldWait(f"transaction {row[0]}'s first answer is being computed")
            self._duplicate.inc()
            return {**orjson.loads(self._first_answer(serving.day, row[0], added.answer)),
                    "duplicate": True}
        card_rows = added.card_rows  # the card's rows of the day so far, this one last
        target = len(card_rows) - 1
        while card_rows[target][0] != row[0]:
            target -= 1
        X = one_row_inputs(serving.head, serving.history.prepared,
                           day_rows(row_columns(card_rows), one_card=True), target)
        answer = self._scored(serving, [row[0]], X,
                              self.config.reasons if reasons is None else reasons, inputs)[0]
        self.intraday.set_answer(serving.day, row[0], orjson.dumps(answer))
        self._scored_count.inc()
        return {**answer, "duplicate": False}

    def _first_answer(self, day: dt.date, transaction_id: object,
                      answer: bytes | None) -> bytes:
        deadline = time.monotonic() + PENDING_WAIT_SECONDS
        while answer is None and time.monotonic() < deadline:
            time.sleep(0.005)
            answer = self.intraday.answer(day, transaction_id)
        if answer is None:
            raise RequestError(503, f"transaction {transaction_id} is being scored by another "
                                    f"request; retry for its answer")
        return answer

    def _lateness_ns(self) -> int:
        return int(round(self.config.lateness_seconds * 1e9))

    def _scored(self, serving: Serving, ids: list, X: np.ndarray, reasons: int,
                inputs: bool = False) -> list[dict]:
        """Answers for the model inputs `X` of the transactions `ids`."""
        head = serving.head
        scores = model_scores(head, X)
        why = top_reasons(head, X, reasons)
        checkpoint = head.described
        answers = [{"transaction_id": ids[i], "score": float(scores[i]),
                    "checkpoint": checkpoint, "serving_day": serving.day.isoformat(),
                    "reasons": why[i]} for i in range(len(ids))]
        if inputs:
            for answer, values in zip(answers, X, strict=True):
                answer["inputs"] = dict(zip(head.inputs, map(float, values), strict=True))
        return answers

    def score_batch(self, body: bytes, content_type: str, reasons: int = 0,
                    inputs: bool = False) -> list[bytes]:
        """Score many transactions of one day; JSON answers in the body's row order.

        A bad value refuses the whole body (nothing recorded). Otherwise the rows are
        recorded in (time, id) order, in one call: a repeated id gets its first answer, a
        row too late for the day an ``error`` line of its own. The recorded rows are then
        scored together: one call of the feature functions over the day's history and its
        rows so far, every recorded row a target (each row's windows end at the row
        itself, so the later rows of the batch change nothing), one model call.
        """
        serving = self._current()
        frame, keys = parse_batch(body, content_type, self.config.mapping, serving.kinds)
        times = frame["TX_DATETIME"].to_numpy().astype("datetime64[ns]").view(np.int64)
        # (the ingest's validation has refused a body spanning two days)
        serving = self._serving_for(serving, day_of(int(times[0])),
                                    frame["TX_DATETIME"].iloc[0])
        rows: list[Row] = list(zip(
            plain_list(frame["TRANSACTION_ID"]), times.tolist(),
            plain_list(frame["CUSTOMER_ID"]), plain_list(frame["TERMINAL_ID"]),
            frame["TX_AMOUNT"].to_numpy(np.float64).tolist(), strict=True))
        answers: dict[str, bytes] = {}
        fresh = []
        for row, added in zip(rows, self.intraday.add_many(serving.day, rows,
                                                           self._lateness_ns()), strict=True):
            if added.status == "added":
                fresh.append(row)
            elif added.status == "duplicate":
                answers[id_key(row[0])] = _marked(self._first_answer(
                    serving.day, row[0], added.answer), b"true")
            else:
                answers[id_key(row[0])] = orjson.dumps(self._late(
                    pd.Timestamp(row[1]), added.latest_ns).to_json())
        if fresh:
            scored = self._batch_answers(serving, fresh, reasons, inputs)
            self.intraday.set_answers(serving.day, scored)
            answers.update({key: _marked(answer, b"false") for key, answer in scored.items()})
        self._scored_count.inc(len(fresh))
        self._duplicate.inc(len(keys) - len(fresh))
        return [answers[key] for key in keys]

    def _batch_answers(self, serving: Serving, fresh: list[Row], reasons: int,
                       inputs: bool) -> dict[str, bytes]:
        """Answers (JSON, by id key) of the rows just recorded.

        From the history and the day's rows so far.
        """
        day_columns = row_columns(self.intraday.day_rows(serving.day))
        ids = [row[0] for row in fresh]
        targets = pd.Index(day_columns["TRANSACTION_ID"]).get_indexer(ids)
        X = rows_inputs(serving.head, serving.history.prepared, day_rows(day_columns),
                        targets)
        if reasons <= 0 and not inputs:
            return dict(zip(map(id_key, ids), _plain_answers(serving, ids, X), strict=True))
        return {id_key(answer["transaction_id"]): orjson.dumps(answer)
                for answer in self._scored(serving, ids, X, reasons, inputs)}


def _plain_answers(serving: Serving, ids: list, X: np.ndarray) -> list[bytes]:
    """``orjson.dumps`` of `Scorer._scored`'s answers without reasons, byte for byte.

    The fields every answer shares (checkpoint, serving day, no reasons) are serialised
    once and the ids and scores as one list each: a 100,000-row batch spends its time
    in the model, not in 100,000 dictionaries.
    """
    shared = orjson.dumps({"checkpoint": serving.head.described,
                           "serving_day": serving.day.isoformat(), "reasons": []})
    scores = orjson.dumps(model_scores(serving.head, X).tolist())[1:-1].split(b",")
    if all(type(i) is int for i in ids):  # ints print without commas: one dumps
        texts = orjson.dumps(ids)[1:-1].split(b",") if ids else []
    else:
        texts = [orjson.dumps(i) for i in ids]
    return [b'{"transaction_id":%b,"score":%b,%b' % (i, score, shared[1:])
            for i, score in zip(texts, scores, strict=True)]


def _marked(answer: bytes, duplicate: bytes) -> bytes:
    """A kept answer (a JSON object) with its ``duplicate`` field appended."""
    return answer[:-1] + b',"duplicate":' + duplicate + b"}"


def plain_list(values: pd.Series) -> list:
    """A column's values as Python ints or strs (`plain`), in one pass."""
    array = values.to_numpy()
    return array.tolist() if array.dtype.kind in "iu" else [plain(v) for v in array]


def day_of(nanoseconds: int) -> dt.date:
    """The day of a TX_DATETIME (wall-clock nanoseconds in the share's zone)."""
    return EPOCH + dt.timedelta(days=nanoseconds // NS_PER_DAY)
