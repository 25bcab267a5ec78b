"""The content of the flows' artifacts, built without a Prefect server.

The headline, alerts and plot are built on a real share: small simulated days trained by
the real step (the fast `sgd` learner), read back from the real scores files.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from flows.artifacts import (
    METRICS,
    artifact_key,
    build_artifacts,
    markdown_report,
    metrics_figure,
    metrics_rows,
    plot_path,
    write_metrics_plot,
)
from flows.summary import DeadLetter, QuarantinedFile, RunSummary, TrainedDay
from flows.tasks import backoff_delays, is_retryable
from flows.today import headline_markdown
from tests.shares import simulated_share
from trainer.errors import (
    DatasetValidationError,
    FraudpipeError,
    HeadMovedError,
    LeaseLostError,
    LineageError,
)
from trainer.report import card_alerts
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage
from trainer.step import run_step

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALERTS_KEY = "fraudpipe-daily-pipeline-alerts"


def entry(day: str, parent: str | None, auc: float | None = 0.8) -> Entry:
    metrics = {"transactions": 100, "frauds": 2, "train_accuracy": 0.99}
    if auc is not None:
        metrics["prequential"] = {"auc_roc": auc, "average_precision": 0.4,
                                  "card_precision_at_100": 0.05}
    return Entry(date=day, checkpoint=f"output/model_cpt_{day}.skops", sha256=f"sha-{day}",
                 parent_sha256=parent, dataset_sha256="d", learner="sgd", metrics=metrics)


def chain_of(days: list[str]) -> Lineage:
    entries, parent = [], None
    for i, day in enumerate(days):
        entries.append(entry(day, parent, auc=None if i == 0 else 0.7 + i / 100))
        parent = entries[-1].sha256
    return Lineage(head=parent, entries=entries)


def test_metrics_rows_follow_the_chain_and_mark_this_runs_days() -> None:
    lineage = chain_of(["2018-04-01", "2018-04-02", "2018-04-03"])
    rows = metrics_rows(lineage.chain(), {"2018-04-03"})
    assert [r["date"] for r in rows] == ["2018-04-01", "2018-04-02", "2018-04-03"]
    assert rows[0]["auc_roc_before_training"] is None  # no model before the first day
    assert rows[2]["auc_roc_before_training"] == pytest.approx(0.72)
    assert [r["trained_in_this_run"] for r in rows] == [False, False, True]
    assert rows[1]["test_auc_roc"] is None
    # train accuracy (near 1 at a 0.6 % fraud rate) is neither in the table nor the plot
    assert "train_accuracy" not in rows[0]
    assert all("accuracy" not in label for label, _ in METRICS)


def test_markdown_report_names_trained_quarantined_and_dead_datasets() -> None:
    lineage = chain_of(["2018-04-01", "2018-04-02"])
    summary = RunSummary(flow="daily-pipeline")
    summary.trained.append(TrainedDay("2018-04-02", seconds=0.5, gap_days=0,
                                      metrics=lineage.entries[1].metrics))
    summary.quarantined.append(QuarantinedFile("/landing/2018-04-03.csv",
                                               "column TX_AMOUNT | not a number"))
    summary.dead.append(DeadLetter("2018-04-04", "DatasetValidationError: gone"))
    text = markdown_report(summary, lineage)
    assert "datasets trained: **1**" in text and "dead-lettered: **1**" in text
    assert "| 2018-04-03.csv | column TX_AMOUNT \\| not a number |" in text
    assert "| 2018-04-04 | DatasetValidationError: gone |" in text
    assert "| 2018-04-02 | 0.50 | 100 | 2 | 0.7100 |" in text
    assert "head 2018-04-02 (`sha-2018-04-`)" in text


def test_plot_is_a_png_under_output_plots(tmp_path: Path) -> None:
    share = Share.at(tmp_path)
    lineage = chain_of(["2018-04-01", "2018-04-02", "2018-04-03"])
    destination = plot_path(share, "daily-pipeline", dt.datetime(2024, 1, 2, 3, 4, 5))
    written = write_metrics_plot(share, lineage.chain(), destination)
    assert written == share.output_dir / "plots" / "daily-pipeline-20240102T030405000000Z.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_metrics_plot(share, [], destination.with_name("empty.png")) is None


@pytest.mark.parametrize("days", [["2018-04-01"], ["2018-04-01", "2018-04-02"],
                                  [f"2018-04-{d:02d}" for d in range(1, 31)]])
def test_plot_axis_spans_the_chains_days_with_a_few_ticks(days: list[str]) -> None:
    # Two days, the first without a score before training: each line has one point,
    # which matplotlib alone would centre on a 4-year axis with ~1,600 day ticks.
    from matplotlib import dates

    axes = metrics_figure(chain_of(days).chain()).axes[0]
    left, right = (dates.num2date(x).date() for x in axes.get_xlim())
    assert left == dt.date.fromisoformat(days[0]) - dt.timedelta(days=1)  # half a day before
    assert right == dt.date.fromisoformat(days[-1])  # half a day after: noon of the last
    assert 1 <= len(axes.get_xticks()) <= 16


def test_artifact_keys_are_valid_prefect_keys() -> None:
    assert artifact_key("daily-pipeline", "report") == "fraudpipe-daily-pipeline-report"
    assert artifact_key("Replay_Flow", "plot") == "fraudpipe-replay-flow-plot"


@pytest.mark.parametrize(("error", "retry"), [
    (DatasetValidationError("bad"), False),
    (LeaseLostError("gone"), False),
    (HeadMovedError("moved"), True),
    (LineageError("sha mismatch"), True),
    (OSError("nfs hiccup"), True),
])
def test_only_errors_a_retry_can_fix_are_retried(error: Exception, retry: bool) -> None:
    assert is_retryable(error) is retry


def test_backoff_doubles() -> None:
    assert backoff_delays(3, 2.0) == [2.0, 4.0, 8.0]
    assert backoff_delays(0, 2.0) == []


# ---------------------------------------------------------------- on a real trained share


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small simulated days: a first run trained 04-01..02, a second 04-03..04."""
    share = simulated_share(tmp_path_factory.mktemp("trained"), 4)
    for day in share.training_dates():
        run_step(share, day, learner="sgd")
    return share.root


@pytest.fixture
def share(trained: Path, tmp_path: Path) -> Share:
    """A copy of `trained` that a test may write plots into."""
    return Share.at(shutil.copytree(trained, tmp_path / "share"))


def summary_of(share: Share, days: list[str], **lists) -> RunSummary:
    """The summary of a run that trained `days` (as the flows record them)."""
    by_date = {e.date.isoformat(): e for e in Lineage.load(share).chain()}
    summary = RunSummary(flow="daily-pipeline", **lists)
    summary.trained = [TrainedDay(d, metrics=by_date[d].metrics, seconds=0.1,
                                  gap_days=by_date[d].gap_days) for d in days]
    return summary


def test_alerts_are_the_top_ranked_cards_with_their_day(share: Share) -> None:
    day = dt.date(2018, 4, 4)
    alerts = card_alerts(share, day)
    scores = pd.read_parquet(share.scores(day))
    ranked = scores.dropna(subset=["CARD_RANK"])
    # one row per ranked card, best rank first, as many as the scores file ranks
    assert [a["rank"] for a in alerts] == list(range(1, ranked["CUSTOMER_ID"].nunique() + 1))
    assert len(alerts) == min(100, scores["CUSTOMER_ID"].nunique())
    # each card's numbers are its transactions of the day in the scores file
    for alert in (alerts[0], alerts[-1]):
        card = scores[scores["CUSTOMER_ID"] == alert["card_id"]]
        assert (card["CARD_RANK"] == alert["rank"]).all()
        assert alert["transactions"] == len(card)
        assert alert["amount"] == pytest.approx(card["TX_AMOUNT"].sum(), abs=0.01)
        assert alert["highest_score"] == pytest.approx(card["FRAUD_SCORE"].max(), abs=1e-4)
        assert alert["scores_file"] == str(share.scores(day))
        assert alert["date"] == "2018-04-04"
    assert alerts[0]["highest_score"] >= alerts[-1]["highest_score"]
    assert len(card_alerts(share, day, limit=5)) == 5


def test_alerts_of_a_day_without_scores_name_the_file(share: Share) -> None:
    with pytest.raises(FraudpipeError, match=r"scores/2018-04-01\.parquet"):
        card_alerts(share, dt.date(2018, 4, 1))  # the chain's first day: no model before it


def test_headline_says_what_to_do_today_and_what_the_numbers_mean(share: Share) -> None:
    # GIVEN the second run, which trained 04-03 and 04-04 after a run that ended on 04-02
    summary = summary_of(share, ["2018-04-03", "2018-04-04"])
    # WHEN its artifacts are built
    built = build_artifacts(summary, share)
    head = Lineage.load(share).head_entry
    pre = head.metrics["prequential"]
    text = built.headline
    # THEN the headline names today's day, the cards to check and where they are
    assert text.startswith("# fraudpipe daily-pipeline: today is 2018-04-04\n")
    assert f"check the {len(built.alerts)} cards of the `{ALERTS_KEY}` table" in text
    assert f"card {built.alerts[0]['card_id']} (" in text
    # AND the run's days, the learner and the day's fraud rate
    assert "days trained in this run: **2** (2018-04-03, 2018-04-04)" in text
    assert "learner `sgd`" in text
    rate = 100 * head.metrics["frauds"] / head.metrics["transactions"]
    assert f"fraud rate on 2018-04-04: **{rate:.2f} %**" in text
    # AND today's metrics, scored before training on the day, one line of meaning each
    assert "**before** it trained on 2018-04-04 (prequential)" in text
    assert f"- **ROC AUC {pre['auc_roc']:.3f}**: the chance that a random fraudulent" in text
    assert f"- **Average precision {pre['average_precision']:.3f}**: precision" in text
    assert f"scoring at random gets the fraud rate, {rate:.2f} %" in text
    cards = round(100 * pre["card_precision_at_100"])
    assert f"about {cards} of 100 cards checked" in text
    # AND what changed since the previous run (whose head was 04-02)
    assert "head moved 2018-04-02 -> 2018-04-04 (+2 day(s) trained)" in text
    before = Lineage.load(share).chain()[1].metrics["prequential"]["auc_roc"]
    assert f"ROC AUC: {before:.3f} on 2018-04-02 -> {pre['auc_roc']:.3f} on 2018-04-04" in text
    # AND the serving head: the checkpoint a running `fraudpipe serve` loads
    assert (f"Serving head: `fraudpipe serve` scores with the checkpoint of **2018-04-04** "
            f"(`{head.checkpoint}`, sha256 `{head.sha256[:12]}`)") in text
    # AND the alerts table is today's, the plot is inline, the report has no accuracy
    assert {a["date"] for a in built.alerts} == {"2018-04-04"}
    assert "accuracy" not in built.report.lower()


def test_plot_is_inline_as_a_data_uri_and_written_to_the_share(share: Share) -> None:
    summary = summary_of(share, ["2018-04-04"])
    built = build_artifacts(summary, share, when=dt.datetime(2024, 1, 2, 3, 4, 5))
    written = share.output_dir / "plots" / "daily-pipeline-20240102T030405000000Z.png"
    assert summary.plot == str(written)
    match = re.search(r"!\[[^]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", built.plot)
    assert match, built.plot[:200]
    assert base64.b64decode(match.group(1)) == written.read_bytes()
    assert written.read_bytes()[:8] == PNG_MAGIC
    assert f"PNG on the share: `{written}`" in built.plot


def test_a_run_with_nothing_new_writes_no_plot_and_says_so(share: Share) -> None:
    # GIVEN a share whose earlier run left one plot
    first = build_artifacts(summary_of(share, ["2018-04-04"]), share)
    plots = sorted((share.output_dir / "plots").glob("*.png"))
    assert first.plot is not None and len(plots) == 1
    # WHEN a run finds no new files and trains nothing
    summary = RunSummary(flow="daily-pipeline")
    built = build_artifacts(summary, share)
    # THEN no new PNG is written and there is no plot or alerts artifact to publish
    assert sorted((share.output_dir / "plots").glob("*.png")) == plots
    assert (built.plot, built.alerts, summary.plot) == (None, [], None)
    # AND the headline and the report say so
    assert built.headline.startswith("# fraudpipe daily-pipeline: nothing trained\n")
    assert "**No new files: nothing was trained in this run.**" in built.headline
    assert "No new alerts, metrics or plot were written by this run." in built.headline
    assert "The head is still 2018-04-04 (learner `sgd`)" in built.headline
    assert "nothing trained in this run: no new checkpoint, scores or plot" in built.report


def test_a_run_whose_files_were_all_bad_says_why_nothing_was_trained(share: Share) -> None:
    summary = RunSummary(flow="daily-pipeline", quarantined=[
        QuarantinedFile("/landing/2018-04-05.csv", "not a number")])
    text = build_artifacts(summary, share).headline
    assert "**Nothing was trained in this run** (files ingested 0, quarantined 1" in text
    assert not (share.output_dir / "plots").exists()


def test_the_chains_first_day_has_no_alerts_and_the_headline_says_why(share: Share) -> None:
    lineage = Lineage.load(share)
    first = Lineage(head=lineage.chain()[0].sha256, entries=lineage.entries)
    summary = summary_of(share, ["2018-04-01"])
    text = headline_markdown(summary, first, [], alerts_key=ALERTS_KEY)
    assert "**No alerts for 2018-04-01**: it is the chain's first day" in text
    assert "first run of this chain: it starts at 2018-04-01" in text
    assert "How good today's ranking was" not in text  # no model scored it


def test_dead_lettered_days_are_a_warning_in_the_headline(share: Share) -> None:
    summary = summary_of(share, ["2018-04-04"],
                         dead=[DeadLetter("2018-04-05", "DatasetValidationError: x")])
    text = build_artifacts(summary, share).headline
    assert "**Warning: 1 day(s) dead-lettered, not trained: 2018-04-05**" in text


def test_argo_days_are_settled_from_the_lineage_and_this_runs_dead_letters() -> None:
    from flows.train import settle_submitted

    # GIVEN four days submitted to Argo: two on the chain after the workflow, one
    # dead-lettered by its pods, one the workflow never reached
    summary = RunSummary(flow="train")
    days = [dt.date(2018, 4, d) for d in (2, 3, 4, 5)]
    lineage = chain_of(["2018-04-01", "2018-04-02", "2018-04-03"])
    # WHEN they are settled
    settle_submitted(summary, days, lineage, [("2018-04-04", "DatasetValidationError: x", 3)])
    # THEN each is in its place, the trained ones with their lineage metrics
    assert [(t.date, t.checkpoint_sha256) for t in summary.trained] == [
        ("2018-04-02", "sha-2018-04-02"), ("2018-04-03", "sha-2018-04-03")]
    assert summary.trained[1].prequential["auc_roc"] == pytest.approx(0.72)
    assert summary.dead == [DeadLetter("2018-04-04", "DatasetValidationError: x (after 3 "
                                                     "attempt(s))")]
    assert summary.notes == ["argo: neither trained nor dead-lettered: 2018-04-05"]


def test_the_headlines_top_cards_show_their_reasons_and_transactions_of_the_day() -> None:
    from flows.today import HEADLINE_TRANSACTIONS, _why_lines

    transactions = [{"time": f"0{i}:15:00", "transaction_id": 100 + i, "terminal_id": 7,
                     "amount": 10.0 * (i + 1), "score": 0.1 * i} for i in range(9)]
    alert = {"rank": 1, "card_id": 42, "highest_score": 0.8, "score_from_booster": 0.6,
             "score_from_others": 0.2, "reasons": "amount 5.2x the card's 30-day mean",
             "transaction_list": transactions}
    lines = _why_lines([alert])
    card = lines.index("- **#1 card 42** (score 0.800; booster 0.600 + MLP 0.200): amount "
                       "5.2x the card's 30-day mean")
    # each transaction of the day under its card, up to the cap, then how many more
    assert lines[card + 1] == ("    - 00:15:00 transaction 100, terminal 7, amount 10.00, "
                               "score 0.000")
    assert lines[card + HEADLINE_TRANSACTIONS].startswith("    - 07:15:00 transaction 107")
    assert lines[card + HEADLINE_TRANSACTIONS + 1] == "    - ... 1 more in the alerts table"
