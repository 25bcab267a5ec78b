"""Ingesting dataset files onto the share: validate, convert, write atomically, record.

For each source file: read it, rename its columns by the column mapping
(`trainer.data.mapping`), cut it into days (a file named after a date is that day; any
other file holds the days its rows fall on, in the mapping's time zone), and validate each
day on its own (`trainer.data.datasets`). Each good day is converted to canonical Parquet
in memory, then, under the ingest lock, compared with what the share already holds and
either left ("unchanged"), written atomically ("ingested", possibly replacing a day not
yet trained that came from a file of the same name, in any format; or merged with the rows
other files gave the day: `trainer.data.day_parts`), held (new rows of a day already
trained, merged into a copy kept aside until the day is trained again:
`trainer.data.held_parts`), or refused (a changed day already trained: the lineage was
built on the old content; rows whose ids the day holds from another file with other
values; ids of another type than the share's). A labelled day goes
to `datasets/training/<date>.parquet`; a day without the label column is "arrived" and
goes to `datasets/arrived/<date>.parquet`, without TX_FRAUD, to be scored at once and
trained once its labels come. A file that does not read, map or parse, or a day of it that
does not validate, is copied to `datasets/quarantine/` beside a `.reason.txt` (one copy
per file, listing its bad days), and the run goes on with the other days and files.
Sources are never moved or deleted (unless `archive` asks).

Each day written is recorded in the ingest manifest (`trainer.share.manifest`): its source
file and sha256, the Parquet sha256 the lineage records, rows, frauds, mapping and id types.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trainer.data.datasets import dataset_day, read_dataset, split_days, validate_dataset
from trainer.data.day_parts import merge_part, write_parts
from trainer.data.held_parts import adds_rows_only, held_base, held_days, held_path, hold
from trainer.data.mapping import ColumnMapping, resolve_mapping
from trainer.data.parquet import canonical_parquet_bytes
from trainer.data.quarantine import quarantine
from trainer.data.roles import ROLES
from trainer.data.schema import ID_COLUMNS, LABEL, date_from_name
from trainer.errors import ChangedDatasetError, DatasetValidationError
from trainer.features.compute import HISTORY_DAYS
from trainer.replay import replay_command
from trainer.share.files import atomic_path, sha256_bytes, sha256_file
from trainer.share.layout import Share
from trainer.share.lineage import Lineage
from trainer.share.locks import file_lock, try_exclusive_lock
from trainer.share.manifest import dataset_of_key, manifest_key, read_manifest, write_manifest

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """What one ingestion run did, file by file; every entry is a JSON-ready dict."""

    ingested: list[dict] = field(default_factory=list)
    """Days written to the share: source, kind ("training", "arrived" or "testing"), date,
    output, rows, frauds (None when arrived), sha256, replaced (an older version of a
    not-yet-trained day was replaced), dropped_columns."""
    unchanged: list[dict] = field(default_factory=list)
    """Files whose canonical content is already on the share (source, kind, date, output,
    sha256): nothing was written."""
    quarantined: list[dict] = field(default_factory=list)
    """Bad files, or bad days of a file (then with their date): source, reason,
    quarantined_to, source_removed (False: copied only)."""
    refused: list[dict] = field(default_factory=list)
    """Files left where they are (source, date, reason): a changed file for a day already
    trained, or a second, different file for a day this run already handled."""
    held: list[dict] = field(default_factory=list)
    """New rows of a day already trained, merged into a copy kept aside until the day is
    trained again (`trainer.data.held_parts`): source, kind, date, rows (late rows of the
    day held so far), output (the copy), apply (the command that applies them)."""
    archived: list[str] = field(default_factory=list)
    """Where `archive` moved sources that are on the share (empty without the option)."""

    @property
    def read_any(self) -> bool:
        """True when at least one file could be read (the run had something to work on)."""
        return bool(self.ingested or self.unchanged or self.refused or self.held)

    def to_json(self) -> dict:
        """The result as JSON: lists of file records (see the class docstring)."""
        return asdict(self)

    def summary(self) -> str:
        """Human-readable lines, one per file, then the totals."""
        lines = [
            f"ingested   {e['date']} <- {e['source']} ({e['rows']} rows, "
            + ("unlabelled: arrived" if e["frauds"] is None else f"{e['frauds']} frauds") + ")"
            + (f" [parts: {', '.join(e['parts'])}]" if e.get("parts") else
               " [replaced]" if e["replaced"] else "")
            + (f"\n           {len(e['labels_for_missing_ids'])} label(s) name transaction(s) "
               f"no longer in {e['date']}: {', '.join(e['labels_for_missing_ids'][:5])} "
               "(kept; listed by fraudpipe days)" if e.get("labels_for_missing_ids") else "")
            for e in self.ingested
        ]
        lines += [f"unchanged  {e['date']} <- {e['source']}" for e in self.unchanged]
        lines += [f"quarantined {e['source']}" + (f" ({e['date']})" if e.get("date") else "")
                  + f": {e['reason']}" for e in self.quarantined]
        lines += [f"refused    {e['source']}: {e['reason']}" for e in self.refused]
        lines += [f"held       {e['date']} <- {e['source']}: the day is already trained; its "
                  f"{e['rows']} late row(s) are kept aside ({e['output']}) until it is "
                  f"trained again: {e['apply']}" for e in self.held]
        lines.append(
            f"{len(self.ingested)} ingested, {len(self.unchanged)} unchanged, "
            f"{len(self.quarantined)} quarantined, {len(self.refused)} refused"
            + (f", {len(self.held)} held for a trained day" if self.held else "")
        )
        return "\n".join(lines)


def ingest_path(
    source: str | Path, share: Share, *, allow_pickle: bool = False, testing: bool = False,
    archive: str | Path | None = None, mapping: ColumnMapping | None = None,
) -> IngestResult:
    """Ingest one file, or every file of a directory in name order, onto the share.

    Hidden files (names starting with ".", e.g. a producer's temporary files) and
    sub-directories are ignored.

    Args:
        source: a dataset file or a directory of them.
        share: the storage root.
        allow_pickle: also read `.pkl` files (they can execute code when loaded).
        testing: write to `datasets/testing/` instead of `datasets/training/`; a file whose
            name is not a date takes the date of its rows.
        archive: opt-in: move each file that is on the share afterwards (ingested or
            unchanged) into this directory. By default, and for files quarantined or
            refused, the source stays where it is.
        mapping: the column mapping and time zone; default: `resolve_mapping(share)`
            (the share's fraudpipe-mapping.json, else the simulator's names in UTC).

    Raises:
        DatasetValidationError: `source` does not exist.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    elif source.is_file():
        files = [source]
    else:
        raise DatasetValidationError(f"{source}: no such file or directory")
    if mapping is None:
        mapping = resolve_mapping(share)
    result = IngestResult()
    for path in files:
        done = len(result.ingested) + len(result.unchanged)
        _ingest_file(path, share, result, allow_pickle=allow_pickle, testing=testing,
                     mapping=mapping)
        if archive is not None and len(result.ingested) + len(result.unchanged) > done:
            result.archived.append(str(archive_source(path, Path(archive))))
    return result


def archive_source(path: Path, archive: Path) -> Path:
    """Move an ingested source into `archive`, never over another file; return where."""
    archive.mkdir(parents=True, exist_ok=True)
    target = archive / path.name
    n = 1
    while target.exists():
        target = archive / f"{path.stem}.{n}{path.suffix}"
        n += 1
    shutil.move(path, target)
    return target


def _ingest_file(
    path: Path, share: Share, result: IngestResult, *, allow_pickle: bool, testing: bool,
    mapping: ColumnMapping,
) -> None:
    """Read, map and split one file, then ingest each day; bad days go to quarantine."""
    name_date = date_from_name(path.name)
    try:
        source_sha = sha256_file(path)
        if name_date and _unchanged_fast(share, result, path, testing, name_date, source_sha):
            return
        if not name_date and _unchanged_file(share, result, path, testing, source_sha):
            return
        raw = read_dataset(path, allow_pickle=allow_pickle,
                           text_columns=tuple(mapping.columns[r] for r in _ID_ROLES))
        mapped = mapping.apply(raw, path.name)
        if testing and not mapped.labelled:
            raise DatasetValidationError(
                f"{path.name}: no label column {mapping.columns['label']!r} (role label); "
                "a testing dataset needs labels")
        days = split_days(mapped.frame, path.name, name_date, mapping.timezone)
    except DatasetValidationError as exc:
        result.quarantined.append(quarantine(path, share, str(exc)))
        return
    except Exception as exc:  # a file no check foresaw must not stop the other files
        log.exception("%s: unexpected error while validating", path)
        reason = f"{path.name}: could not be validated ({type(exc).__name__}: {exc})"
        result.quarantined.append(quarantine(path, share, reason))
        return
    kind = "testing" if testing else ("training" if mapped.labelled else "arrived")
    record = {"source": path.name, "source_sha256": source_sha, "source_days": len(days),
              "mapping": mapping.to_json(), "dropped_columns": mapped.dropped}
    bad: list[tuple[dt.date | None, str]] = []
    for day, rows in days:
        # A day cut from a longer file is named in its messages; rows keep their file numbers.
        name = path.name if name_date or len(days) == 1 else f"{path.name}, day {day}"
        try:
            canonical = validate_dataset(rows, name, day, timezone=mapping.timezone,
                                         rows=rows.index.to_numpy())
        except DatasetValidationError as exc:
            bad.append((day, str(exc)))
            continue
        except Exception as exc:
            log.exception("%s: unexpected error while validating %s", path, day)
            bad.append((day, f"{name}: could not be validated ({type(exc).__name__}: {exc})"))
            continue
        _ingest_day(path, share, result, kind, day or dataset_day(canonical), canonical, record)
    if bad:
        copy = quarantine(path, share, "\n".join(reason for _, reason in bad))
        for bad_day, reason in bad:
            dated = {"date": bad_day.isoformat()} if bad_day and not name_date else {}
            result.quarantined.append({**copy, **dated, "reason": reason})


#: The roles whose columns are ids (read as text from CSV, so that 000123 keeps its zeros).
_ID_ROLES = tuple(role for role, column in ROLES.items() if column in ID_COLUMNS)


def id_types(canonical: pd.DataFrame) -> dict[str, str]:
    """The type of each id column of a canonical frame: "int64" or "string"."""
    return {column: "int64" if pd.api.types.is_integer_dtype(canonical[column]) else "string"
            for column in ID_COLUMNS}


def _ingest_day(path: Path, share: Share, result: IngestResult, kind: str, day: dt.date,
                canonical: pd.DataFrame, record: dict) -> None:
    """Compare one validated day with the share and write it, or refuse it."""
    data = canonical_parquet_bytes(canonical)
    entry = {
        **record,
        "dataset_sha256": sha256_bytes(data),
        "rows": len(canonical),
        "frauds": int(canonical[LABEL].sum()) if LABEL in canonical else None,
        "id_types": id_types(canonical),
    }
    brief = {**_brief(path, kind, day, share), "sha256": entry["dataset_sha256"]}
    if _other_file_this_run(result, path, kind, day, str(entry["dataset_sha256"])):
        return
    output = share.dataset(kind, day)
    # Content already on the share passed these checks when it was written.
    known = output.is_file() and sha256_file(output) == entry["dataset_sha256"]
    clash = None if known else other_id_types(share, path, entry["id_types"]) or (
        None if kind == "testing" else duplicate_ids_nearby(share, day, canonical, path))
    if clash:
        result.refused.append({"source": str(path), "date": day.isoformat(), "reason": clash})
        return
    outcome = _commit(share, kind, day, entry, data, canonical)
    if kind == "arrived" and outcome in ("replaced", "merged"):
        from trainer.labels import refresh_completed  # labels builds on this module

        refresh_completed(share, day)
    if outcome == "unchanged":
        result.unchanged.append(brief)
    elif outcome in ("ingested", "replaced", "merged"):
        written = read_manifest(share).get(manifest_key(kind, day), entry)
        result.ingested.append(
            {
                **brief,
                "sha256": written["dataset_sha256"],
                "rows": written["rows"],
                "frauds": written["frauds"],
                "replaced": outcome != "ingested",
                "parts": [p["source"] for p in written.get("parts") or []],
                "dropped_columns": record["dropped_columns"],
                "labels_for_missing_ids": (labels_for_missing_ids(share, day)
                                           if kind == "arrived" and outcome != "ingested"
                                           else []),
            }
        )
    elif outcome == "held":
        late = [d for d in held_days(share) if (d["kind"], d["date"]) == (kind, brief["date"])]
        result.held.append({**brief, "rows": late[0]["rows"] if late else 0,
                            "output": str(held_path(share, kind, day)),
                            "apply": f"fraudpipe relabel --storage {share.root} merges them "
                                     f"and trains again from {day}"})
    else:
        result.refused.append({"source": str(path), "date": brief["date"], "reason": outcome})


def labels_for_missing_ids(share: Share, day: dt.date) -> list[str]:
    """Ids (as text) with a label stored for the arrived `day` that its rows no longer hold."""
    labels, rows = share.labels(day), share.arrived_dataset(day)
    if not labels.is_file() or not rows.is_file():
        return []
    stored = set(map(str, pq.read_table(labels, columns=["TRANSACTION_ID"]).column(0)
                     .to_pylist()))
    here = set(map(str, pq.read_table(rows, columns=["TRANSACTION_ID"]).column(0).to_pylist()))
    return sorted(stored - here)


def other_id_types(share: Share, source: Path, types: dict[str, str]) -> str | None:
    """Why ids of `types` do not fit the share (its days have ids of another type), or None.

    Features and alerts join days by id, so a share keeps one type per id column. Every
    day on the share has the same types (each was checked against the earlier ones), so
    the first day the manifest lists tells: its recorded `id_types`, or, for an entry
    without them (written before ids could be text, or by another writer), its file's
    Parquet schema.
    """
    for key, recorded in sorted(read_manifest(share).items()):
        output = dataset_of_key(share, key)
        theirs = recorded.get("id_types") or (output and _id_types_of_file(output))
        if not theirs:
            continue
        differ = [c for c in ID_COLUMNS if theirs.get(c, "int64") != types[c]]
        if differ:
            column = differ[0]
            return (f"{source.name}: its {column} values are {types[column]}s, but the share's "
                    f"are {theirs.get(column, 'int64')}s ({key} from "
                    f"{recorded.get('source', '?')}); a share keeps one id type across days. "
                    "The file was left in place; export the ids as the earlier days had them")
        return None
    return None


def _id_types_of_file(path: Path) -> dict[str, str] | None:
    """`id_types` read from a dataset's Parquet schema; None if it cannot be read."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None
    return {column: "int64" if pa.types.is_integer(schema.field(column).type) else "string"
            for column in ID_COLUMNS if column in schema.names}


def _commit(share: Share, kind: str, day: dt.date, entry: dict, data: bytes,
            canonical: pd.DataFrame) -> str:
    """Compare with the share and write, all under the ingest lock.

    Returns:
        "unchanged", "ingested", "replaced", "merged" (a part added to the day), "held"
        (new rows of a trained day, kept aside), or the reason the file was refused.
    """
    if kind == "testing":
        with file_lock(share.ingest_lock):
            return _compare_and_write(share, kind, day, entry, data, canonical)
    # A step holds its day's lock shared while it trains: a busy day is not replaced. The
    # lineage lock makes "not trained yet" hold until the file is written.
    with file_lock(share.ingest_lock), try_exclusive_lock(share.training_lock(day)) as free:
        if not free:
            return (f"{entry['source']}: {day} is being trained right now; the file was left "
                    "in place. Run the ingest again once the step ends (if it committed, "
                    "the day is trained and its dataset can no longer change)")
        with file_lock(share.lineage_lock):
            return _compare_and_write(share, kind, day, entry, data, canonical)


def _compare_and_write(share: Share, kind: str, day: dt.date, entry: dict, data: bytes,
                       canonical: pd.DataFrame) -> str:
    """`_commit`'s body; the caller holds the locks."""
    output = share.dataset(kind, day)
    key = manifest_key(kind, day)
    manifest = read_manifest(share)
    recorded = manifest.get(key)
    on_share = sha256_file(output) if output.exists() else None
    if on_share == entry["dataset_sha256"]:
        if (recorded is None or recorded.get("source_sha256") != entry["source_sha256"]) and (
                not (recorded or {}).get("parts")):
            ingested_at = (recorded or {}).get("ingested_at") or _now()
            manifest[key] = {**entry, "ingested_at": ingested_at}
            write_manifest(share, manifest)
        return "unchanged"
    base, base_record = held_base(share, kind, day, recorded)
    parts = (base_record or {}).get("parts") or []
    source = entry["source"]
    pending: dict[str, pd.DataFrame] = {}
    merged = None
    if recorded is not None and on_share is not None and (
            len(parts) > 1 or Path(str(recorded.get("source"))).stem != Path(source).stem):
        # Another file's rows of the day (a month cut in another zone, a late file): a part.
        merged, parts, refused = merge_part(share, kind, day, base_record or {}, base,
                                            canonical, source, entry["source_sha256"])
        if refused is not None:
            return refused
        if merged is None:
            return "unchanged"
        pending = merged.attrs.pop("part_rows")
        data = canonical_parquet_bytes(merged)
        if sha256_bytes(data) == sha256_file(base):
            return "unchanged"  # a part sent again as it was (a month file re-read)
        entry = {**entry, "dataset_sha256": sha256_bytes(data), "rows": len(merged),
                 "frauds": int(merged[LABEL].sum()) if LABEL in merged else None,
                 "source": recorded.get("source"), "source_sha256":
                 recorded.get("source_sha256"), "source_days": recorded.get("source_days"),
                 "parts": parts}
    # The lineage records what each trained day was trained on: that content only.
    trained = Lineage.load(share).entry_for(day) if kind != "testing" else None
    if trained is not None and trained.dataset_sha256 != entry["dataset_sha256"]:
        day_now = merged if merged is not None else canonical
        if adds_rows_only(output, day_now):
            # New rows of a trained day, nothing it was trained on changed: kept aside
            # until the day is trained again.
            held_parts = parts if merged is not None else [
                {"source": source, "source_sha256": entry["source_sha256"],
                 "rows": len(canonical)}]
            if hold(share, kind, day, day_now, held_parts, source) is None:
                return "unchanged"
            write_parts(share, kind, day, pending)
            return "held"
        rewind = replay_command(share, day, rewind_only=True)
        return str(
            ChangedDatasetError(
                f"{source}: {day} is already trained on a dataset with sha256 "
                f"{trained.dataset_sha256}, and this file changes or removes rows of it (the "
                f"day would convert to {entry['dataset_sha256']}); a trained day's dataset "
                "cannot change, the file was left in place. To train on this content "
                f"instead, rewind first ({rewind}), ingest it again, then fraudpipe train "
                f"--storage {share.root}"
            )
        )
    with atomic_path(output) as tmp:
        tmp.write_bytes(data)
    if base != output:  # merged over rows kept aside for a day no longer trained
        base.unlink()
    if "parts" in entry:
        write_parts(share, kind, day, pending)
    manifest[key] = {**entry, "ingested_at": _now()}
    write_manifest(share, manifest)
    if "parts" in entry:
        return "merged"
    return "replaced" if on_share is not None else "ingested"


def duplicate_ids_nearby(share: Share, day: dt.date, frame: pd.DataFrame,
                         source: Path) -> str | None:
    """Why `frame` conflicts with a training day within a features window of `day`, or None.

    Features read 37 days of history, and a transaction id seen twice in one history
    stops every later step; this names both files at ingest time instead.
    """
    ids = pa.array(frame["TRANSACTION_ID"])
    ours = (pc.min(ids).as_py(), pc.max(ids).as_py()) if (
        pa.types.is_integer(ids.type) and len(ids) and not ids.null_count) else None
    manifest = read_manifest(share)
    for back, kind in itertools.product(range(-HISTORY_DAYS, HISTORY_DAYS + 1),
                                        ("training", "arrived")):
        other = day + dt.timedelta(days=back)
        path = share.dataset(kind, other)
        if other == day or not path.is_file():
            continue
        theirs_range = _integer_id_range(path) if ours is not None else None
        if ours is not None and theirs_range is not None and (
                theirs_range[1] < ours[0] or theirs_range[0] > ours[1]):
            continue  # integer ids in disjoint ranges cannot clash
        try:
            theirs = pq.read_table(path, columns=["TRANSACTION_ID"]).column(0)
        except (OSError, pa.ArrowException):
            continue  # an unreadable day is reported by the step that needs it
        if pa.types.is_integer(ids.type) != pa.types.is_integer(theirs.type):
            continue  # ids of another type: other_id_types refuses the day
        # A hash lookup in Arrow: text ids would make numpy sort Python strings.
        clashing = theirs.filter(pc.is_in(theirs, value_set=ids.cast(theirs.type)))
        if len(clashing):
            origin = manifest.get(manifest_key(kind, other), {}).get("source", "?")
            return (f"{source.name}: TRANSACTION_ID {pc.min(clashing).as_py()!s} (and "
                    f"{len(clashing) - 1} more) is already used by {path} (ingested from "
                    f"{origin}), within {HISTORY_DAYS} days of {day}; transaction ids must be "
                    "unique across days. The file was left in place; fix the ids of one of "
                    "the two files")
    return None


#: (path, mtime ns, size) -> the file's integer TRANSACTION_ID range, or None.
_ID_RANGES: dict[tuple[str, int, int], tuple[int, int] | None] = {}


def _integer_id_range(path: Path) -> tuple[int, int] | None:
    """A day file's smallest and largest integer TRANSACTION_ID, from its Parquet footer.

    Ingesting a day checks every day within a features window for reused ids; reading
    their id columns again for every day ingested was 10.6 s of a 20.8 s (profiled) ingest
    of the 183 default days. Simulated and most real ids grow from day to day, so the
    footers' ranges settle almost every pair. None (read the ids) for text ids, nulls,
    missing statistics or an unreadable footer. Cached by path, mtime and size.
    """
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _ID_RANGES:
        if len(_ID_RANGES) > 10_000:
            _ID_RANGES.clear()
        _ID_RANGES[key] = _footer_id_range(path)
    return _ID_RANGES[key]


def _footer_id_range(path: Path) -> tuple[int, int] | None:
    try:
        parquet = pq.ParquetFile(path)
        column = parquet.schema_arrow.get_field_index("TRANSACTION_ID")
        if column < 0 or not pa.types.is_integer(parquet.schema_arrow.field(column).type):
            return None
        metadata = parquet.metadata
        lows, highs = [], []
        for group in range(metadata.num_row_groups):
            chunk = metadata.row_group(group).column(column)
            stats = chunk.statistics
            if stats is None or not stats.has_min_max or stats.null_count:
                return None
            lows.append(int(stats.min))
            highs.append(int(stats.max))
    except (OSError, pa.ArrowException):
        return None
    return (min(lows), max(highs)) if lows else None


def _unchanged_fast(share: Share, result: IngestResult, path: Path, testing: bool,
                    day: dt.date, source_sha: str) -> bool:
    """Record a dated file as unchanged, without reading it, if it was ingested before."""
    for kind in ("testing",) if testing else ("training", "arrived"):
        known_sha = _already_there(share, kind, day, source_sha)
        if known_sha:
            if not _other_file_this_run(result, path, kind, day, known_sha):
                result.unchanged.append({**_brief(path, kind, day, share), "sha256": known_sha})
            return True
    return False


def _unchanged_file(share: Share, result: IngestResult, path: Path, testing: bool,
                    source_sha: str) -> bool:
    """Record an undated file's days as unchanged, without reading it, if all are there.

    All: the `source_days` days it held are on the share from this exact file, intact.
    """
    days = {}
    for key, recorded in read_manifest(share).items():
        if recorded.get("source") == path.name and recorded.get("source_sha256") == source_sha:
            days[key] = recorded
    counts = {recorded.get("source_days") for recorded in days.values()}
    if not days or counts != {len(days)}:
        return False
    briefs = []
    for key, recorded in sorted(days.items()):
        kind, _, date = key.rpartition("/")
        kind = kind or "training"
        output = dataset_of_key(share, key)
        if (kind == "testing") != testing or output is None or not output.is_file() or (
                sha256_file(output) != recorded.get("dataset_sha256")):
            return False
        briefs.append({**_brief(path, kind, dt.date.fromisoformat(date), share),
                       "sha256": recorded["dataset_sha256"]})
    result.unchanged.extend(briefs)
    return True


def _already_there(share: Share, kind: str, day: dt.date, source_sha: str) -> str | None:
    """Fast path: the dataset sha256 if this exact source was ingested and is intact."""
    recorded = read_manifest(share).get(manifest_key(kind, day))
    output = share.dataset(kind, day)
    if (
        recorded is not None
        and recorded.get("source_sha256") == source_sha
        and output.exists()
        and sha256_file(output) == recorded.get("dataset_sha256")
    ):
        return recorded["dataset_sha256"]
    return None


def _other_file_this_run(
    result: IngestResult, path: Path, kind: str, day: dt.date, dataset_sha: str
) -> bool:
    """Refuse (and record) a second, different file for a day this run already handled.

    Which of two files of one name (in two formats) for one day in one batch is meant is
    a guess; the first one stays. Files of other names are parts of the day (merged).
    """
    for earlier in result.ingested + result.unchanged:
        if (earlier["kind"], earlier["date"]) != (kind, day.isoformat()):
            continue
        if Path(earlier["source"]).stem != path.stem:
            continue
        if earlier["sha256"] == dataset_sha:
            return False
        reason = (
            f"{path.name}: {day} was already handled in this run from "
            f"{Path(earlier['source']).name} with different content; expected one file of a "
            "name per day"
        )
        result.refused.append({"source": str(path), "date": day.isoformat(), "reason": reason})
        return True
    return False


def _brief(path: Path, kind: str, day: dt.date, share: Share) -> dict:
    return {
        "source": str(path),
        "kind": kind,
        "date": day.isoformat(),
        "output": str(share.dataset(kind, day)),
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
