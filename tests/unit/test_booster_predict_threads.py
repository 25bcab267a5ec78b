"""The trainer's LightGBM predictions run on one thread, and give the same values on any.

LightGBM configures a prediction from the call's own keywords, not from the training
parameters (lightgbm/basic.py: ``Booster.predict`` hands only its ``**kwargs`` to
``_InnerPredictor.from_booster``), so the trainer passes ``num_threads=PREDICT_THREADS`` to
every one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainer.evaluation.reasons import booster_contributions, booster_member
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.boosting import PREDICT_THREADS, ContinuedBoostingClassifier
from trainer.learners.registry import learner_inputs
from trainer.share.checkpoints import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "golden"


def _default_model():
    record = json.loads((GOLDEN / "golden.json").read_text())
    model = load_checkpoint(GOLDEN / f"{DEFAULT_LEARNER}.skops", record[DEFAULT_LEARNER]["sha256"])
    X = pd.read_parquet(GOLDEN / "input.parquet")[learner_inputs(DEFAULT_LEARNER)].to_numpy()
    return model, X


def _day(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 5))
    return X, (X[:, 0] + rng.normal(size=600) > 1.2).astype(np.int64)


def test_predictions_and_contributions_are_the_same_on_one_thread_and_on_several():
    # GIVEN the default learner's golden checkpoint, its booster and 257 rows
    model, X = _default_model()
    found = booster_member(model)
    assert found is not None
    estimator = found[0]
    booster = estimator._booster()
    # WHEN the booster predicts them on 1, 2 and 4 threads
    by_threads = {t: (booster.predict(X, num_threads=t),
                      booster.predict(X, pred_contrib=True, num_threads=t)) for t in (1, 2, 4)}
    # THEN every row's probability and contributions are the same to the bit
    for threads in (2, 4):
        assert np.array_equal(by_threads[threads][0], by_threads[1][0])
        assert np.array_equal(by_threads[threads][1], by_threads[1][1])
    # ... and the trainer's own calls give those values
    assert PREDICT_THREADS == 1
    assert np.array_equal(booster_contributions(estimator, X), by_threads[1][1])
    assert len(np.unique(by_threads[1][0])) > 10


def test_refitted_leaves_are_the_same_whatever_the_prediction_threads():
    # GIVEN a continued booster that is full, so its next day refits the leaf values
    X, y = _day(0)
    full = ContinuedBoostingClassifier(trees_per_day=3, max_trees=3, min_data_in_leaf=5)
    booster = full.partial_fit(X, y)._booster()
    X2, y2 = _day(1)
    # WHEN the refit's leaf prediction runs on 1 and on 2 threads, and through the learner
    one = booster.refit(X2, y2, decay_rate=0.9, num_threads=1).model_to_string()
    two = booster.refit(X2, y2, decay_rate=0.9, num_threads=2).model_to_string()
    # THEN the refitted booster is the same text, and the leaves did change
    assert one == two
    assert full.partial_fit(X2, y2).model_text_ == one
    assert one != booster.model_to_string()


# Run in a fresh process with OpenMP's default at 4 threads (the test session pins it to 1):
# the step's three kinds of LightGBM prediction, then, as a control that the count can see
# OpenMP's workers, one prediction without the trainer's parameters. OpenMP starts its
# worker threads at the first parallel region that asks for more than one and keeps them.
_COUNT_THREADS = """
import json, os, sys
from pathlib import Path
import numpy as np, pandas as pd
from trainer.evaluation.reasons import booster_member, explain
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.boosting import ContinuedBoostingClassifier
from trainer.learners.registry import learner_inputs
from trainer.model import fraud_scores
from trainer.share.checkpoints import load_checkpoint

golden = Path(sys.argv[1])
record = json.loads((golden / "golden.json").read_text())
model = load_checkpoint(golden / f"{DEFAULT_LEARNER}.skops", record[DEFAULT_LEARNER]["sha256"])
inputs = learner_inputs(DEFAULT_LEARNER)
X = pd.read_parquet(golden / "input.parquet")[inputs].to_numpy()
rng = np.random.default_rng(0)
Xc = rng.normal(size=(600, 5))
yc = (Xc[:, 0] + rng.normal(size=600) > 1.2).astype(np.int64)
full = ContinuedBoostingClassifier(trees_per_day=3, max_trees=3, min_data_in_leaf=5)
full.partial_fit(Xc, yc)

def threads():
    return len(os.listdir("/proc/self/task"))

counts = {"before": threads()}
scores = fraud_scores(model, X)
counts["scores"] = threads()
explain(model, inputs, X, scores)
counts["reasons"] = threads()
full.partial_fit(Xc, yc)
counts["refit"] = threads()
booster_member(model)[0]._booster().predict(X)
counts["default threads"] = threads()
print(json.dumps(counts))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc (Linux)")
def test_step_predictions_start_no_openmp_threads_where_openmp_would_use_four():
    # GIVEN a process whose OpenMP default is 4 threads
    env = {**os.environ, "OMP_NUM_THREADS": "4"}
    # WHEN it scores rows with the default learner, explains them and refits a booster
    done = subprocess.run([sys.executable, "-c", _COUNT_THREADS, str(GOLDEN)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=True)
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    # THEN none of them started a thread
    assert counts["scores"] == counts["reasons"] == counts["refit"] == counts["before"], counts
    # ... while a prediction on OpenMP's default starts its three workers
    assert counts["default threads"] == counts["before"] + 3, counts
