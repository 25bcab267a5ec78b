"""The training step: order, no-ops, gaps, reports (a step killed at every write:
tests/integration/test_step_killed.py)."""

import datetime as dt
import json

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import trainer.step as step_module
from tests.shares import simulate_days, simulated_share
from trainer.backlog import train_all
from trainer.data.ingest import ingest_path
from trainer.errors import LineageError, OutOfOrderError
from trainer.learners import LEARNER_NAMES
from trainer.share.layout import Share
from trainer.share.lineage import Lineage, verify
from trainer.step import run_step

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(10)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Five days trained without interruption: the lineage every other run must match."""
    share = simulated_share(tmp_path_factory.mktemp("ref"), 5)
    train_all(share)
    return share


def _landing_copy(tmp_path, days):
    return simulated_share(tmp_path, days)


def test_train_all_builds_a_verified_chain_in_date_order(reference):
    chain = verify(reference)
    assert [e.date for e in chain] == D[:5]
    assert chain[0].parent_sha256 is None
    assert all(b.parent_sha256 == a.sha256 for a, b in zip(chain, chain[1:], strict=False))
    for entry in chain:
        name = f"model_cpt_{entry.date.isoformat()}.skops"
        assert (reference.root / entry.checkpoint).name == name


def test_every_day_after_the_first_is_scored_before_training(reference):
    for day in D[1:5]:
        scores = __import__("pandas").read_parquet(reference.scores(day))
        assert scores["FRAUD_SCORE"].between(0, 1).all()
        ranks = scores["CARD_RANK"].dropna()
        assert ranks.min() == 1 and ranks.max() <= 100
    assert not reference.scores(D[0]).exists()  # no model before the first day
    assert Lineage.load(reference).chain()[1].metrics["prequential"]["auc_roc"] is not None


def test_same_data_same_checkpoints(tmp_path, reference):
    share = simulated_share(tmp_path, 5)
    train_all(share)
    assert [e.sha256 for e in verify(share)] == [e.sha256 for e in verify(reference)]


def test_a_trained_day_is_a_no_op_and_an_earlier_day_is_refused(reference):
    before = reference.lineage.read_bytes()
    assert run_step(reference, D[2]).status == "skipped"
    assert reference.lineage.read_bytes() == before
    lineage = Lineage.load(reference)
    # a day before the head that is not on the chain (none exists here): forge one by
    # asking for a date earlier than the first
    with pytest.raises(OutOfOrderError, match="replay"):
        run_step(reference, dt.date(2018, 3, 31))
    assert Lineage.load(reference).head == lineage.head


def test_a_gap_is_allowed_and_recorded(tmp_path):
    # A gap is a day never ingested (a day ingested and then lost stops the step instead).
    simulate_days(tmp_path / "landing", 5)
    (tmp_path / "landing" / f"{D[2]}.parquet").unlink()
    share = Share.at(tmp_path / "share")
    ingest_path(tmp_path / "landing", share)
    train_all(share)
    chain = verify(share)
    assert [e.date for e in chain] == [D[0], D[1], D[3], D[4]]
    assert chain[2].gap_days == 1
    assert "Gap: 1 day(s) missing" in share.report_txt.read_text()


def test_report_keeps_the_sample_format_in_chronological_order(reference):
    text = reference.report_txt.read_text()
    entries = text.strip().split("\n\n")
    assert len(entries) == 5
    for entry, day in zip(entries, D, strict=False):
        lines = entry.splitlines()
        assert lines[0].startswith("Report generated on: ")
        assert lines[1] == f"Training dataset: datasets/training/{day}.parquet"
        assert lines[2] == f"Model checkpoint: model_cpt_{day}.skops"
        assert lines[3] == "---"
        assert lines[4].startswith("Accuracy on training data: 0.")
        assert lines[5].startswith("Accuracy on testing data: ")
    steps = json.loads(reference.report_json.read_text())["steps"]
    assert [s["date"] for s in steps] == [d.isoformat() for d in D[:5]]




def test_the_step_runs_on_one_blas_thread_and_gives_the_process_its_pool_back(tmp_path,
                                                                               monkeypatch):
    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    # GIVEN a process whose BLAS pools have two threads, and a share with a day to train
    share = simulated_share(tmp_path, 1)
    during: list[set[int]] = []
    body = step_module._train_and_commit

    def observed(*args, **kwargs):
        during.append(blas_threads())
        return body(*args, **kwargs)

    monkeypatch.setattr(step_module, "_train_and_commit", observed)
    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}
        # WHEN the day is trained
        result = run_step(share, D[0])
        # THEN its training and scoring saw one BLAS thread, and the two came back after
        after = blas_threads()
    assert result.status == "trained"
    assert during == [{1}] and after == {2}


@pytest.mark.parametrize("learner", LEARNER_NAMES)
def test_a_step_continuing_from_the_model_in_memory_writes_what_a_load_would(tmp_path,
                                                                             monkeypatch,
                                                                             learner):
    # GIVEN the same four days trained twice in this process: once each step continuing
    # from the model the step before committed, once each step reading the head back
    # from its file (as a step in a fresh process does)
    loads: list[str] = []
    load = step_module.load_checkpoint

    def counted(path, sha256):
        loads.append(sha256)
        return load(path, sha256)

    monkeypatch.setattr(step_module, "load_checkpoint", counted)
    kept = simulated_share(tmp_path / "kept", 4)
    train_all(kept, learner=learner)
    assert loads == []  # WHEN the first run never reads a head back ...
    read = simulated_share(tmp_path / "read", 4)
    for day in D[:4]:
        monkeypatch.setattr(step_module, "_committed", None)
        run_step(read, day, learner=learner)
    assert len(loads) == 3  # ... and the second reads every head
    # THEN both write the same checkpoints, the same scores files and the same metrics
    chains = verify(kept), verify(read)
    assert [e.sha256 for e in chains[0]] == [e.sha256 for e in chains[1]]
    assert [e.metrics for e in chains[0]] == [e.metrics for e in chains[1]]
    for day in D[1:4]:
        assert kept.scores(day).read_bytes() == read.scores(day).read_bytes()


def test_a_model_kept_in_memory_is_used_only_while_its_file_is_what_the_lineage_names(
        tmp_path):
    # GIVEN a chain whose head this process committed, and the head's file then changed
    share = simulated_share(tmp_path, 2)
    run_step(share, D[0])
    head = Lineage.load(share).head_entry
    (share.root / head.checkpoint).write_bytes(b"not the committed checkpoint")
    # WHEN the next day is trained, THEN the step stops as a load of that file would
    with pytest.raises(LineageError, match="changed or corrupted"):
        run_step(share, D[1])
    assert Lineage.load(share).head == head.sha256
