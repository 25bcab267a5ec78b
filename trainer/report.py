"""The run's reports, rewritten from the lineage after every commit.

`output/report.txt` keeps the GKE sample's entry format line for line
(docs/facts.md#the-gke-sample),
so existing readers still work, and adds ROC AUC, average precision and Card
Precision@100 after the sample's lines. `output/report.json` holds the same, per step.
Both are derived from the lineage and written atomically, so a step killed between its
commit and the report leaves nothing inconsistent: the next step rewrites them.
`card_alerts` reads a day's alerts (its top-ranked cards) back from its scores file.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from trainer.errors import FraudpipeError
from trainer.evaluation.scoring import TOP_CARDS
from trainer.share.files import atomic_write_text, records_json
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.5f}" if isinstance(value, float) else str(value)


def entry_text(entry: Entry) -> str:
    """One report.txt entry: the sample's six lines, then fraudpipe's additions."""
    m = entry.metrics
    test = m.get("test") or {}
    pre = m.get("prequential") or {}
    lines = [
        f"Report generated on: {entry.committed_at}",
        f"Training dataset: datasets/training/{entry.date}.parquet",
        f"Model checkpoint: {entry.checkpoint.removeprefix('output/')}",
        "---",
        f"Accuracy on training data: {_fmt(m.get('train_accuracy'))}",
        f"Accuracy on testing data: {_fmt(test.get('accuracy'))}",
        f"ROC AUC on testing data: {_fmt(test.get('auc_roc'))}",
        f"Average precision on testing data: {_fmt(test.get('average_precision'))}",
        f"Card Precision@100 on testing data: {_fmt(test.get('card_precision_at_100'))}",
        f"Testing dataset: {test.get('dataset', 'none ingested')}",
        f"ROC AUC on this day before training on it: {_fmt(pre.get('auc_roc'))}",
        f"Average precision on this day before training on it: "
        f"{_fmt(pre.get('average_precision'))}",
        f"Card Precision@100 on this day before training on it: "
        f"{_fmt(pre.get('card_precision_at_100'))}",
        f"Transactions: {m.get('transactions')}, frauds: {m.get('frauds')}",
    ]
    rows = m.get("train_accuracy_rows")
    if rows is not None and rows < m.get("transactions", rows):
        lines.append(f"Accuracy on training data measured on {rows} sampled rows")
    if entry.gap_days:
        lines.append(f"Gap: {entry.gap_days} day(s) missing before this dataset")
    return "\n".join(lines) + "\n"


def report_steps(lineage: Lineage) -> list[dict]:
    """The report's steps: one per day of the chain with its metrics, in date order."""
    return [
        {"date": e.date.isoformat(), "checkpoint": e.checkpoint, "sha256": e.sha256,
         "dataset": f"datasets/training/{e.date}.parquet", "learner": e.learner,
         "gap_days": e.gap_days, "committed_at": e.committed_at, "metrics": e.metrics}
        for e in lineage.chain()
    ]


def report_json(lineage: Lineage) -> dict:
    """The report as JSON: the head and `report_steps`."""
    return {"head": lineage.head, "steps": report_steps(lineage)}


def write_reports(share: Share, lineage: Lineage | None = None) -> None:
    """Rewrite report.txt and report.json from the active chain."""
    lineage = lineage or Lineage.load(share)
    text = "\n".join(entry_text(e) for e in lineage.chain())
    atomic_write_text(share.report_txt, text)
    atomic_write_text(share.report_json,
                      records_json({"head": lineage.head}, "steps", report_steps(lineage)))


#: The scores file's reason columns (`trainer.evaluation.scoring.reason_columns`).
_REASON_COLUMNS = ("REASONS", "REASON_INPUTS", "SCORE_FROM_BOOSTER", "SCORE_FROM_OTHERS")


def _card_id(value) -> int | str:
    """A card id as the user's data has it: an integer, or text (JSON-ready either way)."""
    return int(value) if isinstance(value, int | np.integer) else str(value)


def card_alerts(share: Share, day: dt.date, limit: int = TOP_CARDS) -> list[dict]:
    """The day's alerts: its top-ranked cards from `output/scores/<day>.parquet`.

    The ranks were set by the model as it was before it trained on `day` (the step scores
    a day first), so they are the list the team would have been handed that day.

    Args:
        share: the storage root.
        day: a trained day other than the chain's first (which has no model before it).
        limit: at most this many cards, best rank first.

    Returns:
        One dict per card: rank, card_id, highest_score, transactions (the card's that
        day), amount (their total), date and scores_file (the file read); when the file
        has them (`trainer.evaluation.scoring.reason_columns`), also reasons (of the
        card's highest-scored transaction, in words), reason_inputs, score_from_booster
        and score_from_others (the two parts of the highest score), and
        transaction_list (each transaction: id, time, terminal, amount, score).

    Raises:
        FraudpipeError: the day has no scores file.
    """
    path = share.scores(day)
    if not path.is_file():
        raise FraudpipeError(f"{path}: no scores for {day} (only a day trained after the "
                             f"chain's first has them)")
    scores = pd.read_parquet(path)
    # Best first within a card: its top row is the card's highest score (then earliest).
    ranked = (scores[scores["CARD_RANK"].notna()]
              .sort_values(["CARD_RANK", "FRAUD_SCORE", "TX_DATETIME"],
                           ascending=[True, False, True]))
    # Each card's transactions in time order, all cards in one sort (the ids break ties).
    listed = ranked.sort_values(["CARD_RANK", "TX_DATETIME", "TRANSACTION_ID"])
    cards, starts = np.unique(ranked["CARD_RANK"].to_numpy(), return_index=True)
    ends = np.append(starts[1:], len(ranked))
    kept = len(cards) if limit < 0 else limit  # as many cards as asked (all when negative)
    cards, starts, ends = cards[:kept], starts[:kept], ends[:kept]
    amounts = ranked["TX_AMOUNT"].to_numpy()
    top = {name: ranked[name].iloc[starts].tolist() for name in ranked.columns
           if name in ("CUSTOMER_ID", "FRAUD_SCORE", *_REASON_COLUMNS)}
    rows = {name: listed[name].tolist() for name in
            ("TRANSACTION_ID", "TX_DATETIME", "TERMINAL_ID", "TX_AMOUNT", "FRAUD_SCORE")}
    alerts: list[dict] = []
    for i, (card, start, end) in enumerate(zip(cards.tolist(), starts.tolist(), ends.tolist(),
                                               strict=True)):
        alert: dict = {"rank": int(card), "card_id": _card_id(top["CUSTOMER_ID"][i]),
                 "highest_score": round(float(top["FRAUD_SCORE"][i]), 4),
                 "transactions": end - start,
                 # nansum: pandas' Series.sum, the same rows in the same order
                 "amount": round(float(np.nansum(amounts[start:end])), 2),
                 "date": day.isoformat(), "scores_file": str(path)}
        if "REASONS" in ranked.columns:
            alert.update({
                "reasons": str(top["REASONS"][i]), "reason_inputs": str(top["REASON_INPUTS"][i]),
                "score_from_booster": round(float(top["SCORE_FROM_BOOSTER"][i]), 4),
                "score_from_others": round(float(top["SCORE_FROM_OTHERS"][i]), 4)})
        alert["transaction_list"] = [
            {"transaction_id": _card_id(rows["TRANSACTION_ID"][j]),
             "time": pd.Timestamp(rows["TX_DATETIME"][j]).strftime("%H:%M:%S"),
             "terminal_id": _card_id(rows["TERMINAL_ID"][j]),
             "amount": round(float(rows["TX_AMOUNT"][j]), 2),
             "score": round(float(rows["FRAUD_SCORE"][j]), 4)}
            for j in range(start, end)]
        alerts.append(alert)
    return alerts
