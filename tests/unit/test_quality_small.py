"""The default learner beats the GKE sample's logic on the same small simulation.

The sample's logic (docs/facts.md#the-gke-sample; `bench.sample_logic`):
`SGDClassifier(warm_start=True)`
updated day by day with `partial_fit(..., classes=[0, 1, 2, 3])`, its label
TX_FRAUD_SCENARIO and its inputs every other raw column (TX_DATETIME as int64 ns, TX_FRAUD
left in, nothing scaled); pandas 3's `drop(columns=..., axis=1)` error fixed. It is given
the days in date order (the sample's own queue trains newest first, which can only hurt
it). Its fraud score is how strongly it rejects class 0 (`-decision_function[:, 0]`).

Both learners see the same days; both are scored with the handbook's protocol (7-day
known window, a week of test days starting 8 days after the checkpoint) on the same test
rows. The margin is not a number from a run: on every seed the default's advantage must
exceed the seed-to-seed spread (max - min) of the two learners' AUCs together, i.e. the
gap is larger than the noise of measuring either of them. (Seen when written: ours
0.77-0.86, the sample 0.50-0.51, noise 0.09.) About 12 s of CPU in all.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from bench.sample_logic import CLASSES, split
from trainer.data.simulator import simulate, to_sample_dtypes
from trainer.evaluation.split import evaluate_split
from trainer.features.compute import HISTORY_DAYS
from trainer.features.from_history import features_of_transactions
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.registry import learner_inputs, make_learner, uses_profiles
from trainer.model import fraud_scores

DAYS, CUSTOMERS, TERMINALS = 45, 600, 1_200
CHECKPOINT_INDEX = 30  # train on days 0..30, test on days 38..44
SEEDS = (0, 1, 2)


def _sample_scores(model, frame: pd.DataFrame) -> np.ndarray:
    X, _ = split(to_sample_dtypes(frame))
    return -model.decision_function(X.to_numpy(dtype="float64"))[:, 0]


def _aucs(seed: int) -> tuple[float, float]:
    sim = list(simulate(dt.date(2018, 4, 1), DAYS, CUSTOMERS, TERMINALS, seed=seed))
    frames = [frame for _, frame in sim]
    features = [features_of_transactions(pd.concat(frames[max(0, i - HISTORY_DAYS): i + 1],
                                                   ignore_index=True), day,
                                         profiles=uses_profiles(DEFAULT_LEARNER))
                for i, (day, _) in enumerate(sim)]
    inputs = learner_inputs(DEFAULT_LEARNER)
    ours = make_learner(DEFAULT_LEARNER)
    from sklearn.linear_model import SGDClassifier

    sample = SGDClassifier(warm_start=True)
    for i in range(CHECKPOINT_INDEX + 1):
        ours.partial_fit(features[i][inputs].to_numpy(), features[i]["TX_FRAUD"])
        X, y = split(to_sample_dtypes(frames[i]))
        sample.partial_fit(X.to_numpy(dtype="float64"), y.to_numpy(), classes=CLASSES)
    checkpoint, test_start = sim[CHECKPOINT_INDEX][0], sim[CHECKPOINT_INDEX + 8][0]
    test = pd.concat(features[CHECKPOINT_INDEX + 8: CHECKPOINT_INDEX + 15], ignore_index=True)
    raw_test = pd.concat(frames[CHECKPOINT_INDEX + 8: CHECKPOINT_INDEX + 15], ignore_index=True)
    # Features keep the raw rows' order, so both score lists line up with `test`.
    assert (test["TRANSACTION_ID"].to_numpy() == raw_test["TRANSACTION_ID"].to_numpy()).all()
    labelled = pd.concat(frames[CHECKPOINT_INDEX - 6: CHECKPOINT_INDEX + 8], ignore_index=True)
    result = {}
    for name, scores in (("ours", fraud_scores(ours, test[inputs].to_numpy())),
                         ("sample", _sample_scores(sample, raw_test))):
        metrics = evaluate_split(test.assign(score=scores), labelled, checkpoint, test_start)
        result[name] = metrics["auc_roc"]
    return result["ours"], result["sample"]


@pytest.fixture(scope="module")
def aucs() -> list[tuple[float, float]]:
    return [_aucs(seed) for seed in SEEDS]


def test_default_learner_auc_clearly_above_the_sample_logic(aucs):
    # GIVEN both learners trained on the same 31 days of three small simulations
    ours = np.array([a for a, _ in aucs])
    sample = np.array([b for _, b in aucs])
    # THEN on every seed the gap exceeds the spread of both learners' AUCs over the seeds
    noise = np.ptp(ours) + np.ptp(sample)
    assert (ours - sample > noise).all(), (ours, sample, noise)
