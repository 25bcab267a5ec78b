"""A day is built from every file that holds its rows, and closed only when it is over.

A bank's export cut by month at UTC midnight, read by a share in Europe/Paris: local
2018-04-01 starts in the March file (its first two hours) and goes on in the April file.
"""

import datetime as dt
import json

import pandas as pd
import pytest

from trainer.cli import main
from trainer.share.files import sha256_file
from trainer.share.layout import Share
from trainer.share.manifest import read_manifest

ZONE = "Europe/Paris"
SIZE = ["--customers", "200", "--terminals", "400", "--seed", "1"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A 12-day bank export from 2018-03-25 (the DST change) cut into two month files."""
    root = tmp_path_factory.mktemp("export")
    assert main(["simulate", "--out", str(root), "--start", "2018-03-25", "--days", "12",
                 *SIZE, "--format", "bank-export"]) == 0
    months = sorted((root / "transactions").glob("*.csv"))
    assert [m.name for m in months] == ["transactions-2018-03.csv", "transactions-2018-04.csv"]
    return root, months


def _local_days(months) -> pd.Series:
    rows = pd.concat([pd.read_csv(m) for m in months], ignore_index=True)
    local = pd.to_datetime(rows["timestamp"], utc=True).dt.tz_convert(ZONE)
    return local.dt.date.value_counts()


def _ingest(source, share, export_root) -> int:
    return main(["ingest", "--source", str(source), "--storage", str(share.root),
                 "--mapping", str(export_root / "fraudpipe-mapping.json"),
                 "--timezone", ZONE])


def _rows_on_share(share) -> dict[dt.date, int]:
    return {dt.date.fromisoformat(p.stem): len(pd.read_parquet(p))
            for p in share.arrived_dir.glob("*.parquet")}


def test_month_files_in_another_zone_lose_no_row(export, tmp_path, capsys):
    root, months = export
    share = Share.at(tmp_path / "share")
    # WHEN both month files are ingested in one run
    assert _ingest(root / "transactions", share, root) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].endswith(" 0 refused"), out
    # THEN every row of the export is on the share, on its local day
    expected = _local_days(months)
    assert _rows_on_share(share) == {day: int(n) for day, n in expected.items()}
    first = dt.date(2018, 4, 1)
    parts = read_manifest(share)[f"arrived/{first}"]["parts"]
    assert sorted(p["source"] for p in parts) == [m.name for m in months]
    # AND the day equals the one a single file of all rows gives
    together = tmp_path / "together"
    together.mkdir()
    pd.concat([pd.read_csv(m) for m in months]).to_csv(together / "all.csv", index=False)
    single = Share.at(tmp_path / "single")
    assert _ingest(together, single, root) == 0
    assert sha256_file(share.arrived_dataset(first)) == sha256_file(
        single.arrived_dataset(first))


def test_a_day_is_not_completed_before_later_data_shows_it_is_over(export, tmp_path,
                                                                   capsys):
    root, months = export
    share = Share.at(tmp_path / "share")
    first = dt.date(2018, 4, 1)
    # GIVEN only the March file: local 04-01 holds its first two hours
    assert _ingest(months[0], share, root) == 0
    # WHEN the N-day rule runs weeks later, 04-01 is still open: nothing after its end
    main(["labels", "--storage", str(share.root), "--today", "2018-04-30"])
    assert not share.training_dataset(first).exists()
    assert share.training_dataset(dt.date(2018, 3, 31)).exists()  # 04-01 rows show it over
    capsys.readouterr()
    assert main(["days", "--storage", str(share.root), "--json"]) == 0
    states = {d["date"]: d for d in json.loads(capsys.readouterr().out)}
    assert states[first.isoformat()]["closed"] is False
    # WHEN the April file arrives, 04-01 gets all its rows and can complete
    assert _ingest(months[1], share, root) == 0
    assert len(pd.read_parquet(share.arrived_dataset(first))) == int(_local_days(months)[first])
    main(["labels", "--storage", str(share.root), "--today", "2018-04-30"])
    assert share.training_dataset(first).exists()
    # AND the last local day (two hours of it in the April file) waits for an explicit close
    last = dt.date(2018, 4, 6)
    assert share.arrived_dataset(last).exists() and not share.training_dataset(last).exists()
    assert main(["close", "--date", last.isoformat(), "--storage", str(share.root)]) == 0
    main(["labels", "--storage", str(share.root), "--today", "2018-04-30"])
    assert share.training_dataset(last).exists()


def test_overlaps_identical_are_unchanged_conflicting_are_refused(export, tmp_path, capsys):
    root, months = export
    share = Share.at(tmp_path / "share")
    assert _ingest(months[1], share, root) == 0
    april = pd.read_csv(months[1])
    again = tmp_path / "again"
    again.mkdir()
    april.head(50).to_csv(again / "resent.csv", index=False)
    before = {p.name: sha256_file(p) for p in share.arrived_dir.glob("*.parquet")}
    capsys.readouterr()
    # WHEN rows already on the share come again in another file, identical: nothing changes
    assert _ingest(again / "resent.csv", share, root) == 0
    assert {p.name: sha256_file(p) for p in share.arrived_dir.glob("*.parquet")} == before
    # WHEN they come with another amount: refused, naming both files and the ids
    changed = april.head(3).assign(amount=april.head(3)["amount"] + 1)
    changed.to_csv(again / "changed.csv", index=False)
    capsys.readouterr()
    assert _ingest(again / "changed.csv", share, root) == 0
    out = capsys.readouterr().out
    assert "refused" in out and "changed.csv" in out and months[1].name in out
    assert april["tx_id"].iloc[0] in out
    assert {p.name: sha256_file(p) for p in share.arrived_dir.glob("*.parquet")} == before


def test_month_files_read_again_after_training_change_nothing(export, tmp_path, capsys):
    root, months = export
    share = Share.at(tmp_path / "share")
    # GIVEN both month files ingested, every day completed and trained (04-01 of two parts)
    assert _ingest(root / "transactions", share, root) == 0
    assert main(["close", "--date", "2018-04-06", "--storage", str(share.root)]) == 0
    main(["labels", "--storage", str(share.root), "--today", "2018-04-30"])
    assert main(["train", "--storage", str(share.root), "--learner", "sgd"]) == 0
    before = {p.name: sha256_file(p) for p in share.training_dir.glob("*.parquet")}
    assert "2018-04-01.parquet" in before
    capsys.readouterr()
    # WHEN the landing area is read again (the daily run does it every day)
    assert _ingest(root / "transactions", share, root) == 0
    out = capsys.readouterr().out
    # THEN nothing is refused or held, nothing changes
    assert out.splitlines()[-1].endswith(" 0 refused"), out
    assert out.splitlines()[-1].startswith("0 ingested"), out
    assert {p.name: sha256_file(p) for p in share.training_dir.glob("*.parquet")} == before
