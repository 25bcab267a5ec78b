"""`fraudpipe evaluate --prequential`: back-to-back test windows, each by the checkpoint
8 days before it, and their mean, on a small trained share (the same code the quality
benchmark reports with: `trainer.evaluation.prequential`)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from tests.cli_runner import run_main
from tests.shares import simulated_share
from trainer.backlog import train_all
from trainer.commands import evaluate as evaluate_command
from trainer.evaluation import prequential
from trainer.share.layout import Share

START = dt.date(2018, 4, 1)
#: 13 days ingested (04-01..04-13); checkpoints 04-02..04-04 score windows from 04-10.
DAYS = 13


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Share:
    """13 small days ingested, the chain trained through 04-04 with the cheapest learner."""
    share = simulated_share(tmp_path_factory.mktemp("prequential"), DAYS, customers=300,
                            terminals=600)
    train_all(share, through=START + dt.timedelta(days=3), learner="sgd")
    return share


def _cli_json(share: Share, *args: str) -> dict:
    code, out, err = run_main("evaluate", "--storage", str(share.root), *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_prequential_weeks_are_the_single_splits_eight_days_later(trained):
    # WHEN three 1-day windows from 04-10 are evaluated prequentially
    got = _cli_json(trained, "--prequential", "--test-start", "2018-04-10", "--weeks", "3",
                    "--test-days", "1")
    # THEN each window is scored by the checkpoint 8 days before it, with exactly what
    # `evaluate --checkpoint C --test-start S` gives for that split
    assert list(got["splits"]) == ["2018-04-02/2018-04-10", "2018-04-03/2018-04-11",
                                   "2018-04-04/2018-04-12"]
    for key, metrics in got["splits"].items():
        checkpoint, start = key.split("/")
        single = _cli_json(trained, "--checkpoint", checkpoint, "--test-start", start,
                           "--test-days", "1")
        for m in (*prequential.METRICS, "transactions", "frauds"):
            assert metrics[m] == single[m], (key, m)
    # AND the mean is the plain mean of the windows
    for m in prequential.METRICS:
        values = [s[m] for s in got["splits"].values() if s[m] is not None]
        assert got["mean"][m] == pytest.approx(float(np.mean(values)))
    assert got["learner"] == "sgd"


def test_prequential_table_lists_each_window_and_the_mean(trained):
    code, out, _ = run_main("evaluate", "--storage", str(trained.root), "--prequential",
                            "--test-start", "2018-04-10", "--weeks", "2", "--test-days", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "learner: sgd"
    assert [line.split()[0] for line in lines[2:]] == ["2018-04-02", "2018-04-03", "mean"]


def test_prequential_names_the_missing_days_of_its_windows(trained):
    # three 2-day windows from 04-10 end on 04-15; the share holds days up to 04-13
    code, _, err = run_main("evaluate", "--storage", str(trained.root), "--prequential",
                            "--test-start", "2018-04-10", "--weeks", "3", "--test-days", "2")
    assert code == 3
    assert "2018-04-10 to 2018-04-15" in err and "2018-04-14, 2018-04-15" in err
    assert "2018-04-13," not in err and "Traceback" not in err


def test_prequential_without_the_checkpoint_it_needs_names_it(trained):
    # a window from 04-13 needs the checkpoint of 04-05; the chain stops at 04-04
    code, _, err = run_main("evaluate", "--storage", str(trained.root), "--prequential",
                            "--test-start", "2018-04-13", "--weeks", "1", "--test-days", "1")
    assert code != 0 and "Traceback" not in err
    assert "no checkpoint for 2018-04-05" in err and "2018-04-04" in err


def test_prequential_refuses_a_checkpoint_and_one_split_needs_both(trained):
    code, _, err = run_main("evaluate", "--storage", str(trained.root), "--prequential",
                            "--checkpoint", "2018-04-02")
    assert code == 3 and "drop --checkpoint" in err
    code, _, err = run_main("evaluate", "--storage", str(trained.root),
                            "--test-start", "2018-04-10")
    assert code == 3 and "--checkpoint and --test-start" in err


def test_the_commands_defaults_are_the_protocols():
    # the parser keeps its own copy (it must not import the evaluation code)
    assert evaluate_command.FIRST_TEST_START == prequential.FIRST_TEST_START
    assert evaluate_command.WEEKS == prequential.WEEKS
    assert evaluate_command.TEST_DAYS == prequential.TEST_DAYS
    assert prequential.PREQUENTIAL_SPLITS == [
        (dt.date(2018, 7, 31), dt.date(2018, 8, 8)), (dt.date(2018, 8, 7), dt.date(2018, 8, 15)),
        (dt.date(2018, 8, 14), dt.date(2018, 8, 22)),
        (dt.date(2018, 8, 21), dt.date(2018, 8, 29))]
    assert prequential.HEADLINE_SPLIT == (dt.date(2018, 7, 31), dt.date(2018, 8, 8))
