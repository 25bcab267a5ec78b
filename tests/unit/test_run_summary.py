"""A run's summary: typed entries, the same JSON as before, and older results read back."""

from __future__ import annotations

import dataclasses
import datetime as dt

from flows.summary import (
    CompletedDay,
    DeadLetter,
    IngestedDay,
    RunSummary,
    ScoredBy,
    ScoredDay,
    TrainedDay,
)
from trainer.step import StepResult, StepStatus

#: A daily pipeline's result as the flows returned it when the entries were dicts (keys
#: they no longer keep, such as "extra", must not stop it from being read).
OLD_RESULT = {
    "flow": "daily-pipeline",
    "trained": [{"date": "2018-04-02", "status": "trained", "checkpoint_sha256": "ab",
                 "metrics": {"frauds": 3, "prequential": {"auc_roc": 0.8}},
                 "seconds": 1.5, "gap_days": 0}],
    "skipped": [], "queued": ["2018-04-02"], "notes": [], "plot": None,
    "ingested": [{"source": "/landing/2018-04-02.parquet", "kind": "training",
                  "date": "2018-04-02", "output": "/share/x.parquet", "sha256": "cd",
                  "rows": 10, "frauds": 1, "replaced": False, "parts": [],
                  "dropped_columns": [], "labels_for_missing_ids": [], "extra": 1}],
    "quarantined": [{"source": "/landing/bad.csv", "reason": "no TX_AMOUNT"}],
    "refused": [], "dead": [{"date": "2018-04-03", "reason": "gone"}],
    "labels": [{"date": "2018-04-01", "new": 4, "known": 0, "frauds": 1, "path": "/l"}],
    "labels_unknown": [], "unscored": [], "awaiting": ["2018-04-04"],
    "completed": [{"date": "2018-04-01", "how": "7-day rule", "rows": 10, "labels": 4,
                   "frauds": 1, "dataset_sha256": "ef", "labels_for_missing_ids": []}],
    "scored": [{"date": "2018-04-04", "scores_file": "/share/scores/2018-04-04.parquet",
                "scored_by": {"checkpoint": "output/model_cpt_2018-04-02.skops",
                              "sha256": "ab", "trained_through": "2018-04-02",
                              "when": "on arrival, before its labels",
                              "scored_at": "2018-04-05T06:00:00+00:00", "inputs": "01"}}],
    "label_problems": [], "late_labels": "", "review_capacity": 100,
}


def test_an_older_result_reads_back_as_typed_entries():
    summary = RunSummary.from_json(OLD_RESULT)
    assert summary.trained == [TrainedDay("2018-04-02", checkpoint_sha256="ab",
                                          metrics=OLD_RESULT["trained"][0]["metrics"],
                                          seconds=1.5)]
    assert summary.trained[0].prequential == {"auc_roc": 0.8}
    assert summary.dead == [DeadLetter("2018-04-03", "gone")]
    assert isinstance(summary.ingested[0], IngestedDay) and summary.ingested[0].rows == 10
    assert summary.quarantined[0].quarantined_to is None  # missing keys take defaults
    assert summary.completed[0] == CompletedDay("2018-04-01", "7-day rule", 10, 4, 1, "ef")
    assert summary.scored[0].scored_by.trained_through == "2018-04-02"
    assert summary.labels[0].new == 4 and summary.awaiting == ["2018-04-04"]


def test_the_json_keeps_the_keys_the_dicts_had():
    summary = RunSummary.from_json(OLD_RESULT)
    data = summary.to_json()
    assert set(data) == set(OLD_RESULT)
    for name in ("trained", "dead", "labels", "completed", "scored"):
        assert data[name] == OLD_RESULT[name], name
    old_ingested = {k: v for k, v in OLD_RESULT["ingested"][0].items() if k != "extra"}
    assert data["ingested"] == [old_ingested]
    assert RunSummary.from_json(data) == summary


def test_entries_are_built_from_the_domains_results():
    result = StepResult(dt.date(2018, 4, 2), StepStatus.TRAINED, "ab",
                        {"frauds": 3}, 1.23456, 2)
    assert TrainedDay.of_step(result) == TrainedDay("2018-04-02", "trained", "ab",
                                                    {"frauds": 3}, 1.235, 2)
    scored = ScoredDay.of_json({"date": "2018-04-04", "scores_file": "s",
                                "scored_by": {"checkpoint": "c", "sha256": "h",
                                              "trained_through": "2018-04-02"}})
    assert scored.scored_by == ScoredBy("c", "h", "2018-04-02")
    assert all(dataclasses.is_dataclass(entry) for entry in (scored, scored.scored_by))
