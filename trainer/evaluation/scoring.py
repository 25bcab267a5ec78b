"""Scoring a day with a model: the day's fraud scores, top cards, and their metrics."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainer.evaluation import reasons
from trainer.evaluation.metrics import ranking_metrics
from trainer.evaluation.testing_features import testing_features
from trainer.learners.registry import learner_inputs, uses_cards, uses_profiles
from trainer.model import fraud_scores
from trainer.outcomes import save_list
from trainer.share.files import atomic_path
from trainer.share.layout import Share

TOP_CARDS = 100
#: Rows the report's "Accuracy on training data" is measured on, at most: a second scoring
#: of a whole 100k-transaction day costs ~0.3 s for a figure known to +-0.0007 from 20,000
#: rows (binomial standard error at 99% accuracy). Days this size or smaller are exact.
TRAIN_ACCURACY_ROWS = 20_000


def model_inputs(frame: pd.DataFrame, learner: str) -> np.ndarray:
    """The X that learner `learner` reads from a features frame: its inputs, in order."""
    return frame[learner_inputs(learner)].to_numpy()


def score_day(model, frame: pd.DataFrame, learner: str) -> np.ndarray:
    """Fraud probability of each row of a features frame, by `model` of learner `learner`."""
    return fraud_scores(model, model_inputs(frame, learner))


def training_accuracy(model, X: np.ndarray, y: np.ndarray, day: dt.date,
                      max_rows: int = TRAIN_ACCURACY_ROWS) -> tuple[float, int]:
    """The trained model's accuracy on its training day, and the rows it was measured on.

    All rows up to `max_rows`; above it, a uniform sample seeded by the day, so a rerun of
    the step gives the same figure.
    """
    if len(y) > max_rows:
        rows = np.sort(np.random.default_rng(day.toordinal()).choice(
            len(y), size=max_rows, replace=False))
        X, y = X[rows], y[rows]
    return float((model.predict(X) == y).mean()), int(len(y))


def card_ranks(frame: pd.DataFrame, scores: np.ndarray, k: int = TOP_CARDS) -> pd.Series:
    """Each transaction's card rank (1 = the card with the highest score) if in the top k.

    Cards are ranked by their highest transaction score, ties broken by CUSTOMER_ID so
    the ranking is reproducible.
    """
    customers = frame["CUSTOMER_ID"].to_numpy()
    top = _top_cards(customers, np.asarray(scores, dtype=np.float64), k)
    # The top cards' rows (`isin` uses a table of the card numbers where they are small
    # integers), then each one's card looked up among the top ones; NA elsewhere.
    ranked = np.isin(customers, top)
    rows = np.flatnonzero(ranked)
    by_card = np.argsort(top, kind="stable")
    rank = np.zeros(len(customers), dtype=np.int64)
    rank[rows] = by_card[np.searchsorted(top[by_card], customers[rows])] + 1
    return pd.Series(pd.arrays.IntegerArray(rank, ~ranked), index=frame.index,
                     name="CUSTOMER_ID")


def _top_cards(customers: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The k cards of the highest best scores, best first, ties by card (`card_ranks`).

    Rows sorted by score (descending) then card: each card's first row holds its best
    score, so the cards in order of first appearance are the ranking. Only the rows
    scoring at least the m-th highest score are sorted: every card whose best score
    reaches that threshold has a row among them, so once they hold k cards these are the
    top k (a day's top 100 cards are among its few hundred highest rows; grouping and
    sorting every card of a 1M-row day cost 0.15 s). NaN scores rank last, as a missing
    maximum does.
    """
    rows = len(scores)
    m = 4 * k
    while True:
        if m >= rows:
            candidates = np.arange(rows)
        else:
            threshold = -np.partition(-scores, m - 1)[m - 1]
            candidates = np.flatnonzero(scores >= threshold)
        order = candidates[np.lexsort((customers[candidates], -scores[candidates]))]
        cards, first = np.unique(customers[order], return_index=True)
        if len(cards) >= k or m >= rows:
            return cards[np.argsort(first)][:k]
        m *= 4


def write_scores(share: Share, day: dt.date, frame: pd.DataFrame, scores: np.ndarray,
                 metadata: dict[bytes, bytes] | None = None, *, model=None,
                 learner: str | None = None) -> pd.Series:
    """`output/scores/<day>.parquet`: every transaction's score and the top cards' ranks.

    `metadata` goes into the file's Parquet key-value metadata (who scored the day). With
    the `model` that scored the day and its `learner`, the top cards' transactions also
    get their reasons (`reason_columns`).

    Returns:
        The card ranks written (`card_ranks`), for `day_metrics` to reuse.
    """
    out = pd.DataFrame({
        "TRANSACTION_ID": frame["TRANSACTION_ID"].to_numpy(),
        "TX_DATETIME": frame["TX_DATETIME"].to_numpy(),
        "CUSTOMER_ID": frame["CUSTOMER_ID"].to_numpy(),
        "TERMINAL_ID": frame["TERMINAL_ID"].to_numpy(),
        "TX_AMOUNT": frame["TX_AMOUNT"].to_numpy(),
        "FRAUD_SCORE": scores,
    })
    ranks = card_ranks(frame, scores)
    out["CARD_RANK"] = ranks.to_numpy()
    if model is not None and learner is not None:
        for name, values in reason_columns(model, learner, frame, out["CARD_RANK"],
                                           scores).items():
            out[name] = values
    # The list the team is handed: the first ranking of the day, kept for its outcome.
    save_list(share, day, out["CUSTOMER_ID"].to_numpy(), out["CARD_RANK"],
              "on arrival, before its labels" if metadata else "by the step, labels known")
    with atomic_path(share.scores(day)) as tmp:
        if metadata is None:
            out.to_parquet(tmp, index=False)
        else:
            table = pa.Table.from_pandas(out, preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
            pq.write_table(table, tmp)
    return ranks


def reason_columns(model, learner: str, frame: pd.DataFrame, ranks: pd.Series,
                   scores: np.ndarray | None = None) -> dict[str, pd.Series]:
    """The scores file's reason columns, filled on the ranked cards' transactions only.

    REASONS: the inputs that raised the booster's score most, in words, "; "-separated
    (`trainer.evaluation.reasons`); REASON_INPUTS: their input names, ", "-separated;
    SCORE_FROM_BOOSTER and SCORE_FROM_OTHERS: the two parts FRAUD_SCORE is the sum of (the
    booster's weighted probability, the rest: the MLP's in the default ensemble). Empty
    (no columns) when the model has no booster.
    """
    ranked = np.flatnonzero(ranks.notna().to_numpy())
    inputs = learner_inputs(learner)
    rows = frame.iloc[ranked]
    # The ranked rows' scores are known: explaining them need not score them again.
    explanation = reasons.explain(model, inputs, rows[inputs].to_numpy(),
                                  None if scores is None else scores[ranked])
    if explanation is None:
        return {}
    n = len(frame)
    words: list[str | None] = [None] * n
    names: list[str | None] = [None] * n
    booster = np.full(n, np.nan)
    others = np.full(n, np.nan)
    for position, row_words, row_names in zip(ranked.tolist(),
                                              *reasons.reason_texts(explanation, rows),
                                              strict=True):
        words[position], names[position] = row_words, row_names
    booster[ranked], others[ranked] = explanation.booster_part, explanation.other_part
    return {"REASONS": _strings(words), "REASON_INPUTS": _strings(names),
            "SCORE_FROM_BOOSTER": pd.Series(booster), "SCORE_FROM_OTHERS": pd.Series(others)}


def _strings(values: list[str | None]) -> pd.Series:
    """``pd.Series(values, dtype="string")``, built by Arrow: 10x cheaper on a day's rows.

    The same dtype and Arrow type (large_string), so the scores file's bytes are the same.
    """
    return pd.Series(pd.array(pa.array(values, pa.large_string()), dtype="string"))


def _cp_at_k(frame: pd.DataFrame, scores: np.ndarray, ranks: pd.Series | None = None) -> float:
    """Card Precision@100 of one day: `metrics.card_precision_at_k` on a single day.

    The top cards are `card_ranks`' (highest score, ties by CUSTOMER_ID, as there; pass
    `ranks` when already computed from these scores); a card counts when it has a fraud
    that day. Equal to the general function, which a test checks, at a third of its cost
    on a 100k-transaction day.
    """
    customers = frame["CUSTOMER_ID"].to_numpy()
    ranks = card_ranks(frame, scores) if ranks is None else ranks
    top = np.unique(customers[ranks.notna().to_numpy()])
    compromised = np.unique(customers[frame["TX_FRAUD"].to_numpy() == 1])
    return float(np.isin(top, compromised).sum() / TOP_CARDS)


def day_metrics(frame: pd.DataFrame, scores: np.ndarray, ranks: pd.Series | None = None) -> dict:
    """ROC AUC, average precision and Card Precision@100 of one day's scores.

    `ranks`: the day's `card_ranks` of these scores, when already computed (the step's
    `write_scores` returns them).
    """
    y = frame["TX_FRAUD"].to_numpy()
    ranking = ranking_metrics(y, scores)  # one sort of the day's scores for both
    return {
        "auc_roc": _clean(ranking.auc_roc),
        "average_precision": _clean(ranking.average_precision),
        "card_precision_at_100": _clean(_cp_at_k(frame, scores, ranks)),
        "accuracy": float(((scores >= 0.5).astype(int) == y).mean()),
    }


def _clean(value: float) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 6)


def latest_testing_dataset(share: Share):
    """The newest ingested testing dataset on the share, or None."""
    if not share.testing_dir.is_dir():
        return None
    files = sorted(share.testing_dir.glob("*.parquet"))
    return files[-1] if files else None


def evaluate_testing_dataset(share: Share, model, learner: str) -> dict | None:
    """Metrics of `model` on the latest testing dataset, as the sample reports them.

    Its features need the training days before it, so they are computed from the
    share's training history plus the testing rows, with the inputs of `learner`, the
    model's learner, once: later steps read them back (`testing_features`).
    """
    path = latest_testing_dataset(share)
    if path is None:
        return None
    rows = pd.read_parquet(path)
    # The rows' features do not change with the model: computed once, then read back.
    frame = testing_features(share, path, rows, profiles=uses_profiles(learner),
                             cards=uses_cards(learner))
    scores = score_day(model, frame, learner)
    result = day_metrics(frame, scores)
    result["dataset"] = f"datasets/testing/{path.name}"
    result["transactions"] = int(len(frame))
    result["frauds"] = int(frame["TX_FRAUD"].sum())
    return result
