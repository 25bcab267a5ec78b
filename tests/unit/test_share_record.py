"""The share is the record: no silent corruption, no lost input, a way back.

Each test runs `fraudpipe` commands in this process (`trainer.cli.main`, exit status and
output as a user sees them) on a small simulated share, and names the numbered case it
covers. The cases that need a second process (a step held before its commit) or a real
full file system are in tests/integration/test_share_record_processes.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.share_cases import D, fraudpipe, make_landing, share_with
from trainer.share.layout import Share
from trainer.share.lineage import Lineage, verify


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """Eight small simulated days (seed 1) in a landing directory."""
    return make_landing(tmp_path_factory.mktemp("landing"))


# --- case 2: missing lineage with checkpoints; no foreign checkpoint is overwritten -----

def test_a_checkpoint_the_step_did_not_write_is_kept_not_overwritten(tmp_path, landing):
    root = share_with(tmp_path, landing, D[:3])
    share_with(tmp_path, landing, D[3:4], train=False)
    share = Share.at(root)
    # GIVEN a file under the name day 4's checkpoint will take, that no lineage entry names
    foreign = share.checkpoint(D[3])
    foreign.write_bytes(b"a checkpoint of some other chain")
    # WHEN day 4 is trained
    code, _, err = fraudpipe("step", "--storage", root, "--dataset", D[3])
    assert code == 0, err
    # THEN the foreign file is kept under its own name, and the chain verifies
    [kept] = share.output_dir.glob(f"model_cpt_{D[3]}.orphan-*.skops")
    assert kept.read_bytes() == b"a checkpoint of some other chain"
    assert [e.date for e in verify(share)] == D[:4]


def test_lost_lineage_is_an_error_then_repaired_from_the_share(tmp_path, landing):
    root = share_with(tmp_path, landing, D[:4])
    share = Share.at(root)
    before = share.lineage.read_text()
    heads = [e.sha256 for e in verify(share)]
    share.lineage.unlink()
    # GIVEN a lost lineage.json: every command refuses, train overwrites nothing
    code, _, err = fraudpipe("train", "--storage", root)
    assert code == 4 and "lineage --repair" in err, err
    # WHEN it is repaired
    code, out, err = fraudpipe("lineage", "--repair", "--storage", root)
    # THEN the chain is rebuilt from report.json and the checkpoints' sha256, and verifies
    assert code == 0, err
    assert "rebuilt" in out and "4 checkpoint(s) on the chain, all verified" in out
    assert [e.sha256 for e in verify(share)] == heads
    rebuilt = {e.date.isoformat(): e.dataset_sha256 for e in Lineage.load(share).entries}
    assert rebuilt == {e["date"]: e["dataset_sha256"] for e in json.loads(before)["entries"]}
    code, _, err = fraudpipe("train", "--storage", root)
    assert code == 0, err


# --- case 3: a deleted dataset of a trained day stops the next step ---------------------

def test_a_lost_day_of_the_history_stops_the_step_naming_the_file_and_the_fix(
        tmp_path, landing):
    root = share_with(tmp_path, landing, D[:5])
    share_with(tmp_path, landing, D[5:6], train=False)
    share = Share.at(root)
    lost = share.training_dataset(D[2])
    lost.unlink()
    # WHEN the next day is trained
    code, _, err = fraudpipe("step", "--storage", root, "--dataset", D[5])
    # THEN it stops (permanent, exit 3) naming the file and the source to re-ingest
    assert code == 3, err
    assert str(lost) in err and f"{D[2]}.parquet" in err and "fraudpipe ingest" in err
    assert Lineage.load(share).entry_for(D[5]) is None
    # AND re-ingesting the day from its source restores it; the step then gives the same
    # checkpoint as a share that never lost anything
    code, out, err = fraudpipe("ingest", "--source", landing / f"{D[2]}.parquet",
                               "--storage", root)
    assert code == 0 and "ingested" in out, out + err
    code, _, err = fraudpipe("step", "--storage", root, "--dataset", D[5])
    assert code == 0, err
    intact = share_with(tmp_path / "intact", landing, D[:6])
    assert Lineage.load(share).head == Lineage.load(Share.at(intact)).head


# --- case 4 and 7: input never lost; duplicate ids across days caught at ingest ---------

def test_duplicate_transaction_ids_across_days_are_refused_naming_both_files(tmp_path,
                                                                                landing):
    import pandas as pd

    root = share_with(tmp_path, landing, D[:2], train=False)
    # GIVEN day 3 whose first transaction reuses an id of day 1
    frame = pd.read_parquet(landing / f"{D[2]}.parquet")
    reused = int(pd.read_parquet(landing / f"{D[0]}.parquet")["TRANSACTION_ID"].iloc[5])
    frame.loc[0, "TRANSACTION_ID"] = reused
    bad = tmp_path / "bad" / f"{D[2]}.parquet"
    bad.parent.mkdir()
    frame.to_parquet(bad, index=False)
    # WHEN it is ingested
    code, out, err = fraudpipe("ingest", "--source", bad, "--storage", root)
    # THEN it is refused, naming both files and the id; the source stays
    assert f"TRANSACTION_ID {reused}" in out, out + err
    assert f"{D[2]}.parquet" in out and f"{D[0]}.parquet" in out
    assert bad.is_file() and not Share.at(root).training_dataset(D[2]).exists()


def test_ingest_moves_sources_only_with_archive(tmp_path, landing):
    source = tmp_path / "in"
    source.mkdir()
    for day in D[:2]:
        shutil.copy(landing / f"{day}.parquet", source)
    (source / f"{D[2]}.csv").write_text("not,a,dataset\n1,2,3\n")
    root = tmp_path / "share"
    # WHEN ingested without --archive, nothing leaves the source directory
    code, _, err = fraudpipe("ingest", "--source", source, "--storage", root)
    assert code == 0, err
    assert sorted(p.name for p in source.iterdir()) == [f"{D[0]}.parquet", f"{D[1]}.parquet",
                                                       f"{D[2]}.csv"]
    # AND with --archive, the files on the share move there; the bad one stays
    code, _, err = fraudpipe("ingest", "--source", source, "--storage", root,
                             "--archive", tmp_path / "done")
    assert code == 0, err
    assert sorted(p.name for p in source.iterdir()) == [f"{D[2]}.csv"]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [f"{D[0]}.parquet",
                                                                    f"{D[1]}.parquet"]


# --- case 6: late days ------------------------------------------------------------------

def test_a_late_day_is_reported_with_the_replay_command_that_trains_it(tmp_path, landing):
    root = share_with(tmp_path, landing, [D[0], D[1], D[3], D[4]])
    # GIVEN day 3 arriving after days 4 and 5 were trained
    share_with(tmp_path, landing, [D[2]], train=False)
    # WHEN train runs
    code, out, err = fraudpipe("train", "--storage", root)
    # THEN it says so, with the exact command
    share = Share.at(root)
    command = f"fraudpipe replay --from {D[1]} --storage {share.root}"
    assert code == 0 and "late day(s) not trained: 2018-04-03" in err and command in err, err
    # AND the step's refusal names the same command (not a command that does not exist)
    code, _, err = fraudpipe("step", "--storage", root, "--dataset", D[2])
    assert code == 3 and command in err, err
    # WHEN the command is run, the chain holds every day, as if they had come in order
    code, out, err = fraudpipe(*command.split()[1:])
    assert code == 0, err
    assert "superseded (kept in the lineage): 2018-04-04, 2018-04-05" in out
    assert [e.date for e in verify(share)] == D[:5]
    in_order = share_with(tmp_path / "in-order", landing, D[:5])
    assert Lineage.load(share).head == Lineage.load(Share.at(in_order)).head


# --- case 8: errors, not tracebacks -----------------------------------------------------

@pytest.mark.parametrize("content", ["[]", "null", '{"format": 1, "head": null, "entries": '
                                     '[{"date": "2018-04-01"}]}', "{not json"])
def test_a_malformed_lineage_is_a_permanent_clear_error(tmp_path, landing, content):
    root = share_with(tmp_path, landing, D[:1], train=False)
    Share.at(root).lineage.parent.mkdir(parents=True, exist_ok=True)
    Share.at(root).lineage.write_text(content)
    for command in (["lineage"], ["train"], ["step", "--dataset", D[0]]):
        code, _, err = fraudpipe(*command, "--storage", root)
        assert code == 4, err  # not retried by Argo (only 5-8 are) nor by the worker
        assert "Traceback" not in err and "lineage.json" in err
        assert "fraudpipe lineage --repair" in err


def test_separator_and_date_only_problems_are_named(tmp_path, landing):
    import pandas as pd

    source = tmp_path / "in"
    source.mkdir()
    frame = pd.read_parquet(landing / f"{D[0]}.parquet")
    frame.to_csv(source / f"{D[0]}.csv", sep=";", index=False)
    frame.assign(TX_DATETIME=str(D[1])).to_csv(source / f"{D[1]}.csv", index=False)
    code, out, err = fraudpipe("ingest", "--source", source, "--storage", tmp_path / "share")
    assert code == 3, err
    assert "seems to use ';' as separator" in out
    assert f"TX_DATETIME is '{D[1]}', a date without a time" in out


def test_a_database_out_of_range_is_named(tmp_path):
    code, _, err = fraudpipe("queue", "stats", "--redis-url", "redis://127.0.0.1:1/99")
    assert code != 0 and "database 99 does not exist" in err and "pydantic" not in err, err


# --- case 9/10: repair and fsck ---------------------------------------------------------

def test_fsck_lists_and_cleans_temp_files_and_orphans_and_reports_quarantine(tmp_path,
                                                                               landing):
    root = share_with(tmp_path, landing, D[:2])
    share = Share.at(root)
    (share.root / "datasets" / "bad").mkdir()
    (share.root / "datasets" / "bad" / f"{D[3]}.csv").write_text("x\n")
    fraudpipe("ingest", "--source", share.root / "datasets" / "bad", "--storage", root)
    stale = share.output_dir / ".tmp-model_cpt_2018-04-03.skops.abc"
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))  # left by a kill long ago
    orphan = share.output_dir / "model_cpt_2018-04-07.skops"
    orphan.write_bytes(b"never committed")
    code, out, err = fraudpipe("fsck", "--storage", root)
    assert code == 0, err
    assert f"found temp file: output/{stale.name}" in out
    assert "found orphan checkpoint: output/model_cpt_2018-04-07.skops" in out
    assert f"{D[3]}.csv: missing column(s)" in out
    code, out, err = fraudpipe("fsck", "--clean", "--storage", root)
    assert code == 0 and not stale.exists() and not orphan.exists(), out + err
    assert [e.date for e in verify(share)] == D[:2]  # the chain is untouched


def test_repair_moves_the_head_back_before_a_corrupt_checkpoint(tmp_path, landing):
    root = share_with(tmp_path, landing, D[:4])
    share = Share.at(root)
    share.checkpoint(D[2]).write_bytes(b"corrupted")
    code, _, err = fraudpipe("lineage", "--storage", root)
    assert code == 4 and str(share.checkpoint(D[2])) in err
    code, out, err = fraudpipe("lineage", "--repair", "--storage", root)
    assert code == 0, err
    assert f"could not prove: {D[2]}" in out and f"head moved back to {D[1]}" in out
    code, _, err = fraudpipe("train", "--storage", root)
    assert code == 0, err
    assert [e.date for e in verify(share)] == D[:4]
