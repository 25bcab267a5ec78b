"""The content of the flows' artifacts, built without a Prefect server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flows.artifacts import (
    RunSummary,
    artifact_key,
    markdown_report,
    metrics_rows,
    plot_path,
    write_metrics_plot,
)
from flows.tasks import backoff_delays, is_retryable
from trainer.errors import DatasetValidationError, HeadMovedError, LeaseLostError, LineageError
from trainer.lineage import Entry, Lineage
from trainer.storage import Share


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


def test_markdown_report_names_trained_quarantined_and_dead_datasets() -> None:
    lineage = chain_of(["2018-04-01", "2018-04-02"])
    summary = RunSummary(flow="daily-pipeline")
    summary.trained.append({"date": "2018-04-02", "seconds": 0.5, "gap_days": 0,
                            "metrics": lineage.entries[1].metrics})
    summary.quarantined.append({"source": "/landing/2018-04-03.csv",
                                "reason": "column TX_AMOUNT | not a number"})
    summary.dead.append({"date": "2018-04-04", "reason": "DatasetValidationError: gone"})
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
