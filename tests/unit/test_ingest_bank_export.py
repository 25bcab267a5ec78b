"""The bank-export example: its files ingest as the simulator's transactions, unlabelled."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from trainer.cli import main
from trainer.data.bank_export import CHARGEBACK_DELAY_DAYS
from trainer.data.datasets import load_canonical
from trainer.features.compute import compute_features
from trainer.share.layout import Share
from trainer.share.manifest import manifest_key, read_manifest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_MAPPING = REPO / "examples" / "bank_export" / "fraudpipe-mapping.json"
#: A small run across a month boundary: April's last days and May's first.
START, DAYS = dt.date(2018, 4, 27), 6
SIZE = ["--customers", "300", "--terminals", "600", "--seed", "3"]


def test_bank_export_files_ingest_as_the_same_transactions_unlabelled(tmp_path, capsys):
    # GIVEN one simulated range written as the simulator's days and as a bank export
    days = [START + dt.timedelta(days=n) for n in range(DAYS)]
    common = ["--start", START.isoformat(), "--days", str(DAYS), *SIZE]
    assert main(["simulate", "--out", str(tmp_path / "sim"), *common]) == 0
    assert main(["simulate", "--out", str(tmp_path / "bank"), *common,
                 "--format", "bank-export"]) == 0
    bank = tmp_path / "bank"
    assert sorted(p.name for p in (bank / "transactions").iterdir()) == [
        "transactions-2018-04.csv", "transactions-2018-05.csv"]
    header = (bank / "transactions" / "transactions-2018-04.csv").read_text().splitlines()[:2]
    assert header[0] == "tx_id,timestamp,card_id,merchant_id,amount"
    assert header[1].startswith("tx-") and "Z,card-" in header[1] and ",m-" in header[1]
    # AND the export's mapping is the one in examples/
    assert json.loads((bank / "fraudpipe-mapping.json").read_text()) == json.loads(
        EXAMPLE_MAPPING.read_text())

    # WHEN the simulator's days and the export's month files are ingested on two shares
    labelled, arrived = Share.at(tmp_path / "labelled"), Share.at(tmp_path / "arrived")
    assert main(["ingest", "--source", str(tmp_path / "sim"), "--storage",
                 str(labelled.root)]) == 0
    capsys.readouterr()
    assert main(["ingest", "--source", str(bank / "transactions"), "--storage",
                 str(arrived.root), "--mapping", str(EXAMPLE_MAPPING), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)

    # THEN every day arrived unlabelled, with the same transactions one to one
    assert [(e["date"], e["kind"]) for e in result["ingested"]] == [
        (d.isoformat(), "arrived") for d in days]
    assert result["quarantined"] == [] and result["refused"] == []
    manifest = read_manifest(arrived)
    assert arrived.training_dates() == []
    for day in days:
        assert manifest[manifest_key("arrived", day)]["source"] == (
            f"transactions-{day:%Y-%m}.csv")
        mine = load_canonical(arrived.arrived_dataset(day))
        theirs = load_canonical(labelled.training_dataset(day))
        assert "TX_FRAUD" not in mine.columns and len(mine) == len(theirs)
        assert (mine["TX_DATETIME"] == theirs["TX_DATETIME"]).all()
        assert (mine["TX_AMOUNT"] == theirs["TX_AMOUNT"]).all()
        for column, prefix, width in (("TRANSACTION_ID", "tx-", 10), ("CUSTOMER_ID", "card-", 6),
                                      ("TERMINAL_ID", "m-", 6)):
            expected = prefix + theirs[column].astype(str).str.zfill(width)
            assert (mine[column] == expected).all(), column

    # AND the chargebacks, a week later, are exactly the simulator's frauds
    for day in days:
        reported = day + dt.timedelta(days=CHARGEBACK_DELAY_DAYS)
        chargebacks = pd.read_csv(bank / "chargebacks" / f"{reported}.csv")
        theirs = load_canonical(labelled.training_dataset(day))
        frauds = theirs.loc[theirs["TX_FRAUD"] == 1, "TRANSACTION_ID"]
        assert sorted(chargebacks["tx_id"]) == sorted(
            "tx-" + frauds.astype(str).str.zfill(10))
        assert (chargebacks["is_fraud"] == 1).all()

    # AND with those labels merged, the features equal the simulator's bit for bit
    def with_labels(day: dt.date) -> pd.DataFrame:
        frame = load_canonical(arrived.arrived_dataset(day))
        reported = day + dt.timedelta(days=CHARGEBACK_DELAY_DAYS)
        frauds = set(pd.read_csv(bank / "chargebacks" / f"{reported}.csv")["tx_id"])
        return frame.assign(TX_FRAUD=frame["TRANSACTION_ID"].isin(frauds).astype("int64"))

    last = days[-1]
    mine = compute_features(pd.concat([with_labels(d) for d in days], ignore_index=True), last)
    theirs = compute_features(pd.concat([load_canonical(labelled.training_dataset(d))
                                         for d in days], ignore_index=True), last)
    values = [c for c in theirs.columns if not c.endswith("_ID")]
    pd.testing.assert_frame_equal(mine[values], theirs[values])
