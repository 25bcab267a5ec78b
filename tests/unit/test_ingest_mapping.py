"""Your own data, the ingest side: users' own columns, text ids, zoned times, files of any days."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.fixtures import bad_datasets as fixtures
from trainer.cli import main
from trainer.data.datasets import load_canonical
from trainer.data.ingest import ingest_path
from trainer.data.mapping import ColumnMapping, MappingError, resolve_mapping
from trainer.data.schema import COLUMNS
from trainer.features.compute import compute_features
from trainer.features.store import features_for_day
from trainer.share.layout import Share
from trainer.share.manifest import manifest_key, read_manifest

#: The user's names for the roles, as in a typical card export.
USER_NAMES = {"TRANSACTION_ID": "tx_id", "TX_DATETIME": "timestamp", "CUSTOMER_ID": "card_id",
              "TERMINAL_ID": "merchant_id", "TX_AMOUNT": "amount", "TX_FRAUD": "is_fraud"}
USER_MAPPING = {"columns": {"transaction_id": "tx_id", "timestamp": "timestamp",
                            "card": "card_id", "terminal": "merchant_id", "amount": "amount",
                            "label": "is_fraud"}}


def user_frame(days: list[dt.date], rows: int = 30, text_ids: bool = True) -> pd.DataFrame:
    """Good rows of `days` in a user's shape: own names, text ids, UTC `Z` times, an extra."""
    frames = [fixtures.good_frame(day, rows=rows, seed=n) for n, day in enumerate(days)]
    frame = pd.concat(frames, ignore_index=True)
    out = pd.DataFrame({
        "tx_id": frame["TRANSACTION_ID"],
        "timestamp": frame["TX_DATETIME"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "card_id": frame["CUSTOMER_ID"],
        "merchant_id": frame["TERMINAL_ID"],
        "amount": frame["TX_AMOUNT"],
        "is_fraud": frame["TX_FRAUD"],
        "channel": "pos",
    })
    if text_ids:
        out["tx_id"] = "tx-" + out["tx_id"].astype(str).str.zfill(9)
        out["card_id"] = "card-" + out["card_id"].astype(str).str.zfill(6)
        out["merchant_id"] = "m-" + out["merchant_id"].astype(str).str.zfill(5)
    return out


def landed(directory: Path, files: dict[str, pd.DataFrame]) -> Path:
    """A landing directory holding each frame as the CSV of its name."""
    directory.mkdir()
    for name, frame in files.items():
        frame.to_csv(directory / name, index=False)
    return directory


def test_mapping_from_the_share_file_renames_drops_extras_and_is_recorded(tmp_path):
    # GIVEN a share holding the user's mapping, and a one-day CSV in the user's names
    # (labels as true/false)
    share = Share.at(tmp_path / "share")
    share.root.mkdir()
    (share.root / "fraudpipe-mapping.json").write_text(json.dumps(USER_MAPPING))
    landing = tmp_path / "landing"
    landing.mkdir()
    frame = user_frame([dt.date(2018, 4, 2)])
    frame.assign(is_fraud=frame["is_fraud"] == 1).to_csv(landing / "2018-04-02.csv",
                                                          index=False)

    # WHEN it is ingested without any option
    result = ingest_path(landing, share)

    # THEN the day is a training day in canonical columns; the extra column is dropped
    [entry] = result.ingested
    assert entry["kind"] == "training" and entry["dropped_columns"] == ["channel"]
    stored = load_canonical(share.training_dataset(dt.date(2018, 4, 2)))
    assert list(stored.columns) == ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID",
                                    "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"]
    assert entry["frauds"] == int(frame["is_fraud"].sum()) > 0
    # AND the manifest records the mapping used and what was dropped
    recorded = read_manifest(share)["2018-04-02"]
    assert recorded["mapping"]["columns"]["card"] == "card_id"
    assert recorded["mapping"]["from"] == str(share.root / "fraudpipe-mapping.json")
    assert recorded["mapping"]["timezone"] == "UTC"
    assert recorded["dropped_columns"] == ["channel"]
    assert recorded["id_types"] == dict.fromkeys(
        ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"), "string")


def test_mapping_on_the_command_line_is_shown_in_help_and_used(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--map ROLE=COLUMN" in help_text and "--mapping FILE" in help_text
    assert "transaction_id, timestamp, card, terminal, amount, label" in help_text

    landing = tmp_path / "landing"
    landing.mkdir()
    user_frame([dt.date(2018, 4, 2)]).to_csv(landing / "2018-04-02.csv", index=False)
    mapping_file = tmp_path / "mine.json"
    mapping_file.write_text(json.dumps({"columns": {"transaction_id": "tx_id"}}))
    argv = ["ingest", "--source", str(landing), "--storage", str(tmp_path / "share"),
            "--mapping", str(mapping_file), "--map", "timestamp=timestamp",
            "--map", "card=card_id", "--map", "terminal=merchant_id", "--map", "amount=amount",
            "--map", "label=is_fraud", "--json"]

    assert main(argv) == 0

    result = json.loads(capsys.readouterr().out)
    assert [e["date"] for e in result["ingested"]] == ["2018-04-02"]
    recorded = read_manifest(Share.at(tmp_path / "share"))["2018-04-02"]["mapping"]
    assert recorded["from"] == f"{mapping_file} + --map"
    assert recorded["columns"]["transaction_id"] == "tx_id"
    assert recorded["columns"]["label"] == "is_fraud"


def test_an_unmapped_role_is_named_with_the_columns_found(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    user_frame([dt.date(2018, 4, 2)]).to_csv(landing / "2018-04-02.csv", index=False)
    share = Share.at(tmp_path / "share")
    mapping = ColumnMapping(columns={"transaction_id": "tx_id", "timestamp": "timestamp",
                                     "card": "card_number", "terminal": "merchant_id",
                                     "amount": "amount"})

    [entry] = ingest_path(landing, share, mapping=mapping).quarantined

    assert entry["reason"].startswith(
        "2018-04-02.csv: missing column(s) CUSTOMER_ID (role card, mapped to 'card_number'); "
        "the file has column(s) tx_id, timestamp, card_id, merchant_id, amount, is_fraud, "
        "channel. Map each role")
    assert "--map ROLE=COLUMN" in entry["reason"]


def test_bad_mappings_are_refused_before_reading_anything(tmp_path):
    share = Share.at(tmp_path)
    with pytest.raises(MappingError, match="unknown role.*cardholder"):
        ColumnMapping(columns={"cardholder": "x"})
    with pytest.raises(MappingError, match="'id' is mapped to two roles"):
        ColumnMapping(columns={"transaction_id": "id", "card": "id"})
    with pytest.raises(MappingError, match="time zone 'Mars/Olympus' is unknown"):
        resolve_mapping(share, timezone="Mars/Olympus")
    with pytest.raises(MappingError, match="expected ROLE=COLUMN"):
        resolve_mapping(share, pairs=["card"])
    with pytest.raises(MappingError, match="no such mapping file"):
        resolve_mapping(share, tmp_path / "missing.json")
    # On the command line: exit 2, and nothing created
    assert main(["ingest", "--source", str(tmp_path), "--storage", str(tmp_path / "new"),
                 "--map", "card"]) == 2
    assert not (tmp_path / "new").exists()
    # The default is the identity on the simulator's names, in UTC.
    default = resolve_mapping(share)
    assert default.columns["card"] == "CUSTOMER_ID" and default.timezone == "UTC"


def test_text_ids_round_trip_and_give_the_same_features_as_numbers(tmp_path):
    # GIVEN the same two days with numeric ids and with the user's text ids
    days = [dt.date(2018, 4, 1), dt.date(2018, 4, 2)]
    shares = {}
    for text in (False, True):
        landing = tmp_path / f"landing-{text}"
        landing.mkdir()
        frame = user_frame(days, text_ids=text)
        # Two transactions of one card at one instant: their order is the ids' order.
        frame.loc[[31, 32], ["timestamp", "card_id"]] = frame.loc[[30, 30], [
            "timestamp", "card_id"]].to_numpy()
        frame.to_csv(landing / "export.csv", index=False)
        shares[text] = Share.at(tmp_path / f"share-{text}")
        ingest_path(landing, shares[text], mapping=ColumnMapping(**USER_MAPPING))

    # THEN the text ids are stored exactly, as a string column, one to one with the numbers
    numbers = load_canonical(shares[False].training_dataset(days[1]))
    text = load_canonical(shares[True].training_dataset(days[1]))
    assert pq.read_schema(shares[True].training_dataset(days[1])).field(
        "CUSTOMER_ID").type in ("string", "large_string")
    assert (text["CUSTOMER_ID"] == "card-" + numbers["CUSTOMER_ID"].astype(str).str.zfill(6)).all()
    assert (text["TRANSACTION_ID"] ==
            "tx-" + numbers["TRANSACTION_ID"].astype(str).str.zfill(9)).all()
    # AND the features (tie order by transaction id included) are the same values
    history = {key: pd.concat([load_canonical(s.training_dataset(d)) for d in days],
                              ignore_index=True) for key, s in shares.items()}
    features = {key: compute_features(frame, days[1]) for key, frame in history.items()}
    columns = [c for c in features[False].columns if not c.endswith("_ID")]
    pd.testing.assert_frame_equal(features[True][columns], features[False][columns])
    # (the share's route: text ids take the pandas path of the features store)
    pd.testing.assert_frame_equal(features_for_day(shares[True], days[1]), features[True])
    assert (features[True]["TRANSACTION_ID"] ==
            "tx-" + features[False]["TRANSACTION_ID"].astype(str).str.zfill(9)).all()


def test_id_text_rules_leading_zeros_stay_text_numbers_become_integers(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    frame = user_frame([dt.date(2018, 4, 2)], text_ids=False)
    frame["card_id"] = frame["card_id"].astype(str).str.zfill(6)   # 000123: keeps its zeros
    frame.to_csv(landing / "2018-04-02.csv", index=False)
    share = Share.at(tmp_path / "share")

    ingest_path(landing, share, mapping=ColumnMapping(**USER_MAPPING))

    stored = load_canonical(share.training_dataset(dt.date(2018, 4, 2)))
    assert stored["TRANSACTION_ID"].dtype == "int64" and stored["TERMINAL_ID"].dtype == "int64"
    assert pd.api.types.is_string_dtype(stored["CUSTOMER_ID"])
    assert stored["CUSTOMER_ID"].str.fullmatch(r"\d{6}").all()


def test_a_day_whose_id_type_differs_from_the_share_is_refused_naming_the_file(tmp_path):
    share = Share.at(tmp_path / "share")
    first = landed(tmp_path / "one", {"a.csv": user_frame([dt.date(2018, 4, 1)], text_ids=False)})
    second = landed(tmp_path / "two", {"b.csv": user_frame([dt.date(2018, 4, 2)])})
    mapping = ColumnMapping(**USER_MAPPING)
    ingest_path(first, share, mapping=mapping)
    # (an entry without id_types, as older versions wrote them: the file's schema tells)
    manifest = read_manifest(share)
    del manifest["2018-04-01"]["id_types"]
    share.ingest_manifest.write_text(json.dumps(manifest))

    result = ingest_path(second, share, mapping=mapping)

    [refused] = result.refused
    assert refused["reason"].startswith(
        "b.csv: its TRANSACTION_ID values are strings, but the share's are int64s "
        "(2018-04-01 from a.csv)")
    assert not share.training_dataset(dt.date(2018, 4, 2)).exists()


def test_zoned_times_across_a_daylight_saving_change_land_on_the_right_days(tmp_path):
    # GIVEN UTC times around Paris' spring-forward (2018-03-25 01:00 UTC, +01:00 -> +02:00)
    utc = ["2018-03-24T22:59:00Z",   # 23:59 on the 24th in Paris (+01:00)
           "2018-03-24T23:30:00Z",   # 00:30 on the 25th (+01:00)
           "2018-03-25T00:59:00Z",   # 01:59 on the 25th, just before the change
           "2018-03-25T01:00:00Z",   # 03:00 on the 25th (+02:00)
           "2018-03-25T21:59:00Z",   # 23:59 on the 25th (+02:00)
           "2018-03-25T22:30:00Z",   # 00:30 on the 26th
           "2018-10-27T22:30:00Z",   # 00:30 on the 28th (+02:00), fall-back day
           "2018-10-28T22:59:00Z"]   # 23:59 on the 28th (+01:00 after the change)
    frame = pd.DataFrame({"TRANSACTION_ID": range(len(utc)), "TX_DATETIME": utc,
                          "CUSTOMER_ID": 1, "TERMINAL_ID": 2, "TX_AMOUNT": 10.0,
                          "TX_FRAUD": 0})
    landing = tmp_path / "landing"
    landing.mkdir()
    frame.to_csv(landing / "march-and-october.csv", index=False)
    share = Share.at(tmp_path / "share")

    # WHEN ingested with the storage zone Europe/Paris
    result = ingest_path(landing, share,
                         mapping=resolve_mapping(share, timezone="Europe/Paris"))

    # THEN each row is on its Paris day, stored naive in Paris wall-clock time
    assert [(e["date"], e["rows"]) for e in result.ingested] == [
        ("2018-03-24", 1), ("2018-03-25", 4), ("2018-03-26", 1), ("2018-10-28", 2)]
    stored = pd.concat([load_canonical(share.training_dataset(dt.date.fromisoformat(e["date"])))
                        for e in result.ingested], ignore_index=True)
    assert stored["TX_DATETIME"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2018-03-24 23:59", "2018-03-25 00:30", "2018-03-25 01:59", "2018-03-25 03:00",
        "2018-03-25 23:59", "2018-03-26 00:30", "2018-10-28 00:30", "2018-10-28 23:59"]
    assert read_manifest(share)["2018-03-25"]["mapping"]["timezone"] == "Europe/Paris"
    # AND a tz-aware datetime column is converted the same way
    aware = frame.assign(TX_DATETIME=pd.to_datetime(frame["TX_DATETIME"], utc=True))
    other = tmp_path / "aware"
    other.mkdir()
    aware.to_parquet(other / "march.parquet", index=False)
    again = ingest_path(other, share, mapping=resolve_mapping(share, timezone="Europe/Paris"))
    assert [e["date"] for e in again.unchanged] == ["2018-03-24", "2018-03-25", "2018-03-26",
                                                    "2018-10-28"]


def test_a_multi_day_file_is_split_and_one_bad_day_quarantined_the_others_ingested(tmp_path):
    # GIVEN one file holding three days, the middle one with a negative amount
    days = [dt.date(2018, 4, n) for n in (1, 2, 3)]
    frame = user_frame(days, rows=20)
    bad_row = 20 + 7
    frame.loc[bad_row, "amount"] = -3.5
    landing = tmp_path / "landing"
    landing.mkdir()
    source = landing / "april-export.csv"
    frame.to_csv(source, index=False)
    before = source.read_bytes()
    share = Share.at(tmp_path / "share")

    # WHEN it is ingested
    result = ingest_path(landing, share, mapping=ColumnMapping(**USER_MAPPING))

    # THEN the good days are on the share; the bad one is quarantined with its reason
    assert [(e["date"], e["rows"]) for e in result.ingested] == [("2018-04-01", 20),
                                                                 ("2018-04-03", 20)]
    assert share.training_dates() == [days[0], days[2]]
    [bad] = result.quarantined
    assert bad["date"] == "2018-04-02"
    assert bad["reason"] == (
        f"april-export.csv, day 2018-04-02: row {bad_row} (TRANSACTION_ID "
        f"{frame.loc[bad_row, 'tx_id']}): TX_AMOUNT is -3.5, expected >= 0")
    copy = Path(bad["quarantined_to"])
    assert copy.read_bytes() == before
    assert bad["reason"] in copy.with_name(copy.name + ".reason.txt").read_text()
    # AND the source is untouched, and the manifest names it for each day
    assert source.read_bytes() == before and bad["source_removed"] is False
    assert read_manifest(share)["2018-04-03"]["source"] == "april-export.csv"
    # AND ingesting it again leaves the good days unchanged, byte for byte
    manifest = share.ingest_manifest.read_bytes()
    again = ingest_path(landing, share, mapping=ColumnMapping(**USER_MAPPING))
    assert [e["date"] for e in again.unchanged] == ["2018-04-01", "2018-04-03"]
    assert again.ingested == [] and share.ingest_manifest.read_bytes() == manifest
    assert read_manifest(share)["2018-04-01"]["source_days"] == 3


def test_a_multi_day_file_already_ingested_is_not_read_again(tmp_path, monkeypatch):
    import trainer.data.ingest

    landing = tmp_path / "landing"
    landing.mkdir()
    user_frame([dt.date(2018, 4, n) for n in (1, 2, 3)]).to_csv(landing / "x.csv", index=False)
    share = Share.at(tmp_path / "share")
    mapping = ColumnMapping(**USER_MAPPING)
    assert len(ingest_path(landing, share, mapping=mapping).ingested) == 3

    def no_reading(*args, **kwargs):
        raise AssertionError("read again")

    monkeypatch.setattr(trainer.data.ingest, "read_dataset", no_reading)
    again = ingest_path(landing, share, mapping=mapping)

    assert [e["date"] for e in again.unchanged] == ["2018-04-01", "2018-04-02", "2018-04-03"]
    # A day changed on the share (or missing) makes the file be read again.
    share.training_dataset(dt.date(2018, 4, 2)).unlink()
    [entry] = ingest_path(landing, share, mapping=mapping).quarantined
    assert "read again" in entry["reason"]


def test_cli_names_the_source_and_quarantine_paths_of_a_bad_day(tmp_path, capsys):
    frame = user_frame([dt.date(2018, 4, 1), dt.date(2018, 4, 2)], rows=10)
    frame.loc[15, "amount"] = -1.0
    landing = tmp_path / "landing"
    landing.mkdir()
    frame.to_csv(landing / "export.csv", index=False)
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps(USER_MAPPING))

    assert main(["ingest", "--source", str(landing), "--storage", str(tmp_path / "share"),
                 "--mapping", str(mapping_file)]) == 0

    out = capsys.readouterr().out
    assert f"quarantined {landing / 'export.csv'} (2018-04-02): export.csv, day 2018-04-02: " \
           "row 15" in out
    assert "the source left in place" in out and str(tmp_path / "share" / "datasets" /
                                                      "quarantine") in out


def test_rows_a_day_already_holds_identically_from_another_file_change_nothing(tmp_path):
    share = Share.at(tmp_path / "share")
    mapping = ColumnMapping(**USER_MAPPING)
    first = landed(tmp_path / "one", {"march.csv": user_frame([dt.date(2018, 4, 1)])})
    # the same rows of the same day again, in a file of another name
    second = landed(tmp_path / "two", {"april.csv": user_frame([dt.date(2018, 4, 1)]).iloc[:5]})
    ingest_path(first, share, mapping=mapping)

    result = ingest_path(second, share, mapping=mapping)

    assert [e["date"] for e in result.unchanged] == ["2018-04-01"] and not result.refused
    assert len(load_canonical(share.training_dataset(dt.date(2018, 4, 1)))) == 30
    # A file of the same name (in any format) is a corrected export: it replaces the day.
    fixed = landed(tmp_path / "three", {})
    user_frame([dt.date(2018, 4, 1)]).iloc[:7].to_parquet(fixed / "march.parquet")
    [replaced] = ingest_path(fixed, share, mapping=mapping).ingested
    assert replaced["replaced"] is True
    assert len(load_canonical(share.training_dataset(dt.date(2018, 4, 1)))) == 7


def test_an_unlabelled_day_is_written_to_arrived_without_the_label(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    user_frame([dt.date(2018, 4, 2)]).drop(columns=["is_fraud"]).to_csv(
        landing / "2018-04-02.csv", index=False)
    share = Share.at(tmp_path / "share")

    result = ingest_path(landing, share, mapping=ColumnMapping(**USER_MAPPING))

    [entry] = result.ingested
    assert entry["kind"] == "arrived" and entry["frauds"] is None
    assert entry["output"] == str(share.arrived_dataset(dt.date(2018, 4, 2)))
    assert share.training_dates() == []
    stored = load_canonical(share.arrived_dataset(dt.date(2018, 4, 2)))
    assert "TX_FRAUD" not in stored.columns and len(stored) == 30
    assert read_manifest(share)[manifest_key("arrived", dt.date(2018, 4, 2))]["frauds"] is None
    # Ingesting it again is a no-op (the dated file's fast path knows arrived days too).
    again = ingest_path(landing, share, mapping=ColumnMapping(**USER_MAPPING))
    assert [e["kind"] for e in again.unchanged] == ["arrived"] and again.ingested == []
    # A testing dataset needs its labels.
    [testing] = ingest_path(landing, share, mapping=ColumnMapping(**USER_MAPPING),
                            testing=True).quarantined
    assert "no label column 'is_fraud' (role label); a testing dataset needs labels" in \
        testing["reason"]


def test_simulator_only_columns_are_optional_and_kept_when_present(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    day = dt.date(2018, 4, 2)
    fixtures.good_frame(day).drop(columns=["TX_TIME_SECONDS", "TX_FRAUD_SCENARIO"]).to_parquet(
        landing / "2018-04-02.parquet", index=False)
    share = Share.at(tmp_path / "share")

    [entry] = ingest_path(landing, share).ingested

    stored = load_canonical(share.training_dataset(day))
    assert list(stored.columns) == [c for c in COLUMNS
                                    if c not in ("TX_TIME_SECONDS", "TX_FRAUD_SCENARIO")]
    assert entry["dropped_columns"] == []
    assert np.array_equal(stored["TX_TIME_DAYS"].to_numpy(), np.full(40, 1))


def test_a_text_transaction_id_reused_on_another_day_is_refused_naming_both_files(tmp_path):
    share = Share.at(tmp_path / "share")
    mapping = ColumnMapping(**USER_MAPPING)
    day1, day2 = user_frame([dt.date(2018, 4, 1)]), user_frame([dt.date(2018, 4, 2)])
    day2.loc[4, "tx_id"] = day1.loc[7, "tx_id"]
    first = landed(tmp_path / "one", {"a.csv": day1})
    second = landed(tmp_path / "two", {"b.csv": day2})
    ingest_path(first, share, mapping=mapping)

    [refused] = ingest_path(second, share, mapping=mapping).refused

    assert refused["reason"].startswith(
        f"b.csv: TRANSACTION_ID {day1.loc[7, 'tx_id']} (and 0 more) is already used by "
        f"{share.training_dataset(dt.date(2018, 4, 1))} (ingested from a.csv)")


def test_epoch_seconds_are_not_taken_for_nanoseconds(tmp_path):
    frame = user_frame([dt.date(2018, 4, 2)], text_ids=False)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("int64") // 10**9
    landing = landed(tmp_path / "landing", {"export.csv": frame})

    [entry] = ingest_path(landing, Share.at(tmp_path / "share"),
                          mapping=ColumnMapping(**USER_MAPPING)).quarantined

    assert f"row 0 (TRANSACTION_ID {frame.loc[0, 'tx_id']}): TX_DATETIME is " \
           f"{frame.loc[0, 'timestamp']}, which as nanoseconds is 1970-01-01" in entry["reason"]
    assert "seconds or milliseconds?" in entry["reason"]
