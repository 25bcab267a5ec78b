"""Ingesting files onto the share (trainer.data.ingest, `fraudpipe ingest`)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
from pathlib import Path

import pandas as pd
import pytest

import trainer.backlog
import trainer.data.ingest
import trainer.share.lineage
from tests.fixtures import bad_datasets as fixtures
from trainer.commands import ingest as ingest_command
from trainer.data.datasets import load_training_day
from trainer.data.ingest import ingest_path
from trainer.data.schema import COLUMNS
from trainer.errors import DatasetValidationError
from trainer.share.files import sha256_file
from trainer.share.layout import Share
from trainer.share.manifest import read_manifest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = (REPO / "../shared/reference/gke-sample/datasets").resolve()


DAY = dt.date(2018, 4, 2)


def write_day(directory: Path, day: dt.date = DAY, seed: int = 0, suffix: str = "parquet") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{day.isoformat()}.{suffix}"
    frame = fixtures.good_frame(day, seed=seed)
    if suffix == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    ingest_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["ingest", *argv])
    return args.func(args)


def test_bad_corpus_is_quarantined_with_specific_reasons_and_good_files_are_ingested(tmp_path):
    # GIVEN a landing directory holding the bad corpus and four good files
    landing = tmp_path / "landing"
    expected_reasons, good_names = fixtures.write_corpus(landing)
    assert len(expected_reasons) >= 12
    share = Share.at(tmp_path / "share")

    # WHEN the whole directory is ingested
    result = ingest_path(landing, share)

    # THEN every bad file is copied to quarantine with its own reason, and stays in landing
    reasons = {Path(entry["source"]).name: entry["reason"] for entry in result.quarantined}
    assert set(reasons) == set(expected_reasons)
    for entry in result.quarantined:
        name, copy = Path(entry["source"]).name, Path(entry["quarantined_to"])
        fragment = expected_reasons[name]
        assert reasons[name].startswith(f"{name}: "), reasons[name]
        assert fragment in reasons[name], (name, reasons[name])
        assert copy.parent == share.quarantine_dir and copy.name.endswith(f"-{name}")
        assert fragment in copy.with_name(copy.name + ".reason.txt").read_text()
        assert copy.read_bytes() == (landing / name).read_bytes()
    # AND the good files are on the share in canonical form; landing is untouched
    assert sorted(Path(entry["source"]).name for entry in result.ingested) == good_names
    assert share.training_dates() == [dt.date(2018, 4, n) for n in (1, 2, 3, 4)]
    for day in share.training_dates():
        frame = load_training_day(share, day)
        assert len(frame) == 40
        assert (frame["TX_DATETIME"].dt.date == day).all()
    assert sorted(p.name for p in landing.iterdir()) == sorted(good_names + list(reasons))
    assert result.refused == [] and result.unchanged == []


def test_good_files_of_the_corpus_run_train(tmp_path):
    train = trainer.backlog
    landing = tmp_path / "landing"
    fixtures.write_corpus(landing)
    share = Share.at(tmp_path / "share")
    ingest_path(landing, share)

    steps = train.train_all(share)

    assert [(s.date.isoformat(), s.status) for s in steps] == [
        (f"2018-04-0{n}", "trained") for n in (1, 2, 3, 4)
    ]


def test_quarantine_keeps_every_bad_file_and_never_touches_the_source(tmp_path):
    # GIVEN two different bad files of the same name, ingested one after the other
    share = Share.at(tmp_path / "share")
    copies = []
    for content in ("not,a,dataset\n1,2,3\n", "still,not,a,dataset\n4,5,6,7\n"):
        landing = tmp_path / f"landing-{len(copies)}"
        landing.mkdir()
        bad = landing / "2018-04-02.csv"
        bad.write_text(content)
        [entry] = ingest_path(landing, share).quarantined
        # THEN the source stays where it was, unchanged
        assert entry["source_removed"] is False and bad.read_text() == content
        copies.append(Path(entry["quarantined_to"]))
    # AND each has its own copy and reason in quarantine: the second overwrote nothing
    assert copies[0] != copies[1]
    assert [c.read_text() for c in copies] == ["not,a,dataset\n1,2,3\n",
                                               "still,not,a,dataset\n4,5,6,7\n"]
    for copy in copies:
        assert "missing column(s) TRANSACTION_ID" in copy.with_name(
            copy.name + ".reason.txt").read_text()


@pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"GKE sample datasets not found at {SAMPLE}")
def test_gke_sample_pickles_ingest_with_allow_pickle(tmp_path):
    share = Share.at(tmp_path / "share")

    training = ingest_path(SAMPLE / "training", share, allow_pickle=True)
    testing = ingest_path(
        SAMPLE / "testing" / "test_dataset.pkl", share, allow_pickle=True, testing=True
    )

    assert [(e["date"], e["rows"], e["frauds"]) for e in training.ingested] == [
        ("2018-04-01", 9488, 3),
        ("2018-04-02", 9583, 13),
        ("2018-04-03", 9747, 15),
        ("2018-04-04", 9530, 18),
    ]
    # 9629 of the 9651 test rows are not fraud (docs/facts.md#the-gke-sample: accuracy 0.99772).
    assert [(e["date"], e["rows"], e["frauds"]) for e in testing.ingested] == [
        ("2018-04-05", 9651, 22)
    ]
    assert share.testing_dataset("2018-04-05").is_file()
    frame = load_training_day(share, dt.date(2018, 4, 1))
    assert {c: str(t) for c, t in frame.dtypes.items()} == {c: str(t) for c, t in COLUMNS.items()}
    original = pd.read_pickle(
        SAMPLE / "training" / "2018-04-01.pkl"
    )  # allow_pickle: test reference
    # The sample breaks datetime ties in no particular order; the share breaks them by id.
    original = original.sort_values(["TX_DATETIME", "TRANSACTION_ID"])
    assert frame["TRANSACTION_ID"].tolist() == original["TRANSACTION_ID"].tolist()
    assert frame["CUSTOMER_ID"].tolist() == [int(v) for v in original["CUSTOMER_ID"]]
    assert frame["TX_DATETIME"].astype("int64").tolist() == original["TX_DATETIME"].tolist()
    manifest = read_manifest(share)
    assert sorted(manifest) == [
        "2018-04-01",
        "2018-04-02",
        "2018-04-03",
        "2018-04-04",
        "testing/2018-04-05",
    ]
    assert manifest["testing/2018-04-05"]["source"] == "test_dataset.pkl"
    assert manifest["2018-04-02"]["dataset_sha256"] == sha256_file(
        share.training_dataset(dt.date(2018, 4, 2))
    )


@pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"GKE sample datasets not found at {SAMPLE}")
def test_gke_sample_pickles_are_quarantined_without_allow_pickle(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "2018-04-01.pkl").write_bytes((SAMPLE / "training" / "2018-04-01.pkl").read_bytes())

    status = run_cli("--source", str(landing), "--storage", str(tmp_path / "share"))

    assert status == 3  # nothing could be read
    [reason] = (tmp_path / "share/datasets/quarantine").glob("*-2018-04-01.pkl.reason.txt")
    assert "--allow-pickle" in reason.read_text()
    # AND the user's original is still in its directory
    assert (landing / "2018-04-01.pkl").read_bytes() == (
        SAMPLE / "training" / "2018-04-01.pkl").read_bytes()


def test_identical_reingest_is_a_no_op(tmp_path):
    landing = tmp_path / "landing"
    write_day(landing)
    share = Share.at(tmp_path / "share")
    first = ingest_path(landing, share)
    output = share.training_dataset(DAY)
    before = (output.read_bytes(), output.stat().st_mtime_ns, share.ingest_manifest.read_bytes())

    again = ingest_path(landing, share)

    assert len(first.ingested) == 1
    assert again.ingested == [] and [e["date"] for e in again.unchanged] == ["2018-04-02"]
    after = (output.read_bytes(), output.stat().st_mtime_ns, share.ingest_manifest.read_bytes())
    assert after == before


def test_same_content_in_another_format_is_unchanged_and_output_identical(tmp_path):
    share = Share.at(tmp_path / "share")
    ingest_path(write_day(tmp_path / "a", suffix="parquet"), share)
    output = share.training_dataset(DAY)
    before = (output.read_bytes(), output.stat().st_mtime_ns)

    result = ingest_path(write_day(tmp_path / "b", suffix="csv"), share)

    assert [e["date"] for e in result.unchanged] == ["2018-04-02"]
    assert (output.read_bytes(), output.stat().st_mtime_ns) == before
    assert read_manifest(share)["2018-04-02"]["source"] == "2018-04-02.csv"


def test_output_is_deterministic_across_shares(tmp_path):
    source = write_day(tmp_path / "landing", seed=4)
    first, second = Share.at(tmp_path / "one"), Share.at(tmp_path / "two")

    ingest_path(source, first)
    ingest_path(source, second)

    assert first.training_dataset(DAY).read_bytes() == second.training_dataset(DAY).read_bytes()


def test_changed_file_for_an_untrained_day_replaces_the_old_one(tmp_path):
    share = Share.at(tmp_path / "share")
    ingest_path(write_day(tmp_path / "v1", seed=1), share)
    old_sha = sha256_file(share.training_dataset(DAY))

    result = ingest_path(write_day(tmp_path / "v2", seed=2), share)

    [entry] = result.ingested
    assert entry["replaced"] is True
    new_sha = sha256_file(share.training_dataset(DAY))
    assert new_sha != old_sha and entry["sha256"] == new_sha
    assert read_manifest(share)["2018-04-02"]["dataset_sha256"] == new_sha


def test_changed_file_for_a_trained_day_is_refused_and_left_in_place(tmp_path):
    share = Share.at(tmp_path / "share")
    ingest_path(write_day(tmp_path / "v1", seed=1), share)
    trainer.backlog.train_all(share)
    before = share.training_dataset(DAY).read_bytes()
    changed = write_day(tmp_path / "v2", seed=2)

    result = ingest_path(changed, share)

    [entry] = result.refused
    assert "2018-04-02 is already trained" in entry["reason"]
    assert "cannot change" in entry["reason"]
    # AND it names the replay that would let the new content in
    assert f"fraudpipe replay --from start --rewind-only --storage {share.root}" in \
        entry["reason"]
    assert changed.exists()
    assert not (share.quarantine_dir / changed.name).exists()
    assert share.training_dataset(DAY).read_bytes() == before
    assert result.ingested == [] and result.quarantined == []


def test_changed_file_for_a_day_on_the_real_lineage_is_refused(tmp_path):
    lineage = trainer.share.lineage
    # GIVEN a day ingested, and a lineage whose chain holds that day
    share = Share.at(tmp_path / "share")
    ingest_path(write_day(tmp_path / "v1", seed=1), share)
    dataset_sha = sha256_file(share.training_dataset(DAY))
    entry = lineage.Entry(
        date=DAY.isoformat(),
        checkpoint="output/model_cpt_2018-04-02.skops",
        sha256="c" * 64,
        parent_sha256=None,
        dataset_sha256=dataset_sha,
        learner="sgd",
    )
    lineage.Lineage(head=entry.sha256, entries=[entry]).save(share)

    # WHEN a different file for that day arrives, and an identical one
    refused = ingest_path(write_day(tmp_path / "v2", seed=2), share)
    identical = ingest_path(write_day(tmp_path / "v1", seed=1), share)

    # THEN the changed one is refused and the trained dataset is untouched
    assert [e["date"] for e in refused.refused] == ["2018-04-02"]
    assert [e["date"] for e in identical.unchanged] == ["2018-04-02"]
    assert sha256_file(share.training_dataset(DAY)) == dataset_sha


def test_a_failed_write_leaves_the_old_file_intact_and_no_partial_file(tmp_path, monkeypatch):
    # GIVEN a day already on the share
    share = Share.at(tmp_path / "share")
    ingest_path(write_day(tmp_path / "v1", seed=1), share)
    old = share.training_dataset(DAY).read_bytes()
    manifest = share.ingest_manifest.read_bytes()

    # WHEN the replacement's write dies half-way through
    real_write_bytes = Path.write_bytes

    def write_half_then_fail(self, data):
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        ingest_path(write_day(tmp_path / "v2", seed=2), share)
    monkeypatch.undo()

    # THEN the old file and the manifest are untouched and no temporary file is left
    assert share.training_dataset(DAY).read_bytes() == old
    assert share.ingest_manifest.read_bytes() == manifest
    assert sorted(p.name for p in share.training_dir.iterdir()) == ["2018-04-02.parquet"]


def test_testing_file_with_a_non_date_name_takes_the_date_of_its_rows(tmp_path):
    path = tmp_path / "test_dataset.parquet"
    fixtures.good_frame(dt.date(2018, 4, 5)).to_parquet(path, index=False)
    share = Share.at(tmp_path / "share")

    result = ingest_path(path, share, testing=True)

    assert [e["date"] for e in result.ingested] == ["2018-04-05"]
    assert share.testing_dataset("2018-04-05").is_file()
    assert not share.training_dir.exists()


def test_cli_json_lists_every_outcome_and_exits_zero(tmp_path, capsys):
    landing = tmp_path / "landing"
    write_day(landing)
    (landing / "2018-04-03.csv").write_text("")

    status = run_cli("--source", str(landing), "--storage", str(tmp_path / "share"), "--json")

    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [e["date"] for e in report["ingested"]] == ["2018-04-02"]
    assert "file is empty (0 bytes)" in report["quarantined"][0]["reason"]
    assert report["unchanged"] == [] and report["refused"] == []


def test_cli_missing_source_is_an_error(tmp_path):
    with pytest.raises(DatasetValidationError, match="no such file or directory"):
        run_cli("--source", str(tmp_path / "nowhere"), "--storage", str(tmp_path / "share"))


def test_hidden_files_are_ignored_and_extra_columns_dropped_with_a_note(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / ".tmp-2018-04-03.parquet.abc").write_bytes(b"half a file")
    fixtures.good_frame(DAY).assign(NOTE="x").to_parquet(landing / "2018-04-02.parquet")

    result = ingest_path(landing, Share.at(tmp_path / "share"))

    [entry] = result.ingested
    assert entry["dropped_columns"] == ["NOTE"]
    assert result.quarantined == []


def test_unforeseen_validation_failure_quarantines_only_that_file(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    write_day(landing, DAY)
    write_day(landing, dt.date(2018, 4, 3))
    real_validate = trainer.data.ingest.validate_dataset

    def validate_or_crash(df, name, expected_date, **options):
        if name.startswith("2018-04-02"):
            raise KeyError("surprise")
        return real_validate(df, name, expected_date, **options)

    monkeypatch.setattr(trainer.data.ingest, "validate_dataset", validate_or_crash)
    result = ingest_path(landing, Share.at(tmp_path / "share"))

    assert [e["date"] for e in result.ingested] == ["2018-04-03"]
    assert "could not be validated (KeyError" in result.quarantined[0]["reason"]


def test_through_the_fraudpipe_cli_exit_codes(tmp_path, capsys):
    from trainer.cli import main

    assert main(["ingest", "--source", str(tmp_path / "nowhere"), "--storage", str(tmp_path)]) == 3
    assert "no such file or directory" in capsys.readouterr().err
    write_day(tmp_path / "landing")
    assert main(["ingest", "--source", str(tmp_path / "landing"), "--storage", str(tmp_path)]) == 0


def test_two_different_files_for_one_day_in_one_run_keep_the_first(tmp_path):
    landing = tmp_path / "landing"
    write_day(landing, seed=1, suffix="csv")
    write_day(landing, seed=2, suffix="parquet")
    share = Share.at(tmp_path / "share")

    result = ingest_path(landing, share)

    assert [Path(e["source"]).name for e in result.ingested] == ["2018-04-02.csv"]
    [refused] = result.refused
    assert "already handled in this run from 2018-04-02.csv" in refused["reason"]
    assert "one file of a name per day" in refused["reason"]
    assert read_manifest(share)["2018-04-02"]["source"] == "2018-04-02.csv"

    # The same holds when the first file is unchanged from an earlier run.
    again = ingest_path(landing, share)
    assert [e["date"] for e in again.unchanged] == ["2018-04-02"]
    assert [Path(e["source"]).name for e in again.refused] == ["2018-04-02.parquet"]


def _ingest_in_subprocess(landing: str, root: str) -> dict:
    return ingest_path(landing, Share.at(root)).to_json()


def test_concurrent_ingestions_of_one_landing_area_agree(tmp_path):
    # GIVEN four days, ingested by two processes at once onto one share
    landing = tmp_path / "landing"
    for n in range(1, 5):
        write_day(landing, dt.date(2018, 4, n), seed=n)
    share = Share.at(tmp_path / "share")
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        results = pool.starmap(_ingest_in_subprocess, [(str(landing), str(share.root))] * 2)
        # workers leave on their own: the context manager's terminate() would need them to
        # die of SIGTERM, which a handler another test left in the process can swallow
        pool.close()
        pool.join()

    # THEN each day was written exactly once, and the manifest matches the files
    written = sorted(e["date"] for r in results for e in r["ingested"])
    assert written == ["2018-04-01", "2018-04-02", "2018-04-03", "2018-04-04"]
    assert sum(len(r["unchanged"]) for r in results) == 4
    manifest = read_manifest(share)
    for day in share.training_dates():
        assert manifest[day.isoformat()]["dataset_sha256"] == sha256_file(
            share.training_dataset(day)
        )


@pytest.mark.parametrize("reused", ["first", "last"])
def test_an_integer_id_reused_at_the_edge_of_another_days_range_is_refused(tmp_path, reused):
    # WHY: ingest skips reading a neighbour's ids when the two days' id ranges (from the
    # Parquet footers) are disjoint; a range that touches at one id must still be read.
    from tests.shares import simulate_days

    simulate_days(tmp_path / "landing", days=2)
    share = Share.at(tmp_path / "share")
    days = sorted((tmp_path / "landing").glob("*.parquet"))
    ingest_path(days[0], share)
    first = pd.read_parquet(days[0])
    second = pd.read_parquet(days[1])
    edge = first["TRANSACTION_ID"].min() if reused == "first" else first["TRANSACTION_ID"].max()
    assert second["TRANSACTION_ID"].min() > first["TRANSACTION_ID"].max()  # disjoint at first
    second.loc[0, "TRANSACTION_ID"] = edge
    changed = tmp_path / "changed" / days[1].name
    changed.parent.mkdir()
    second.to_parquet(changed, index=False)

    result = ingest_path(changed, share)

    assert not result.ingested and len(result.refused) == 1
    assert f"TRANSACTION_ID {edge} (and 0 more) is already used by" in result.refused[0]["reason"]
