"""A warm-start learner whose daily update reads every fraud and a sample of the genuines.

Fraud data is ~99% genuine, and the MLP's update (a few passes of minibatch Adam over the
day) costs in proportion to the rows it reads: on a 100,000-transaction day it was most
of the step. Each pass here reads every fraud and a fresh share `genuine_rate` of the
genuines, the sampled genuines weighted ``1 / genuine_rate``, so a pass's weighted loss
equals the full day's in expectation and the model learned is the same one, more cheaply
(its scores keep their scale; the rate is chosen on validation weeks in bench/QUALITY.md).

The samples are drawn from a generator seeded by `random_state` and the number of days
the learner has seen, as the shuffles of `WarmStartClassifier` are: a replay of the chain
from the same datasets gives the same checkpoint bytes.
"""

from __future__ import annotations

import numpy as np

from trainer.model import CLASSES, WarmStartClassifier


class GenuineSampledClassifier(WarmStartClassifier):
    """`WarmStartClassifier` whose passes each read every fraud and a weighted genuine sample.

    The running standardisation still sees every row (it costs little and keeps the
    scaling exact). A class of its own, not a setting of `WarmStartClassifier`, so the
    checkpoints of learners that read every row keep their exact bytes.

    Args:
        classifier, fraud_weight, passes, random_state: as `WarmStartClassifier`'s.
        genuine_rate: share of the day's genuine transactions each pass reads, in (0, 1].
    """

    def __init__(self, classifier=None, fraud_weight: float = 10.0, passes: int = 1,
                 random_state: int = 0, genuine_rate: float = 0.1):
        super().__init__(classifier, fraud_weight=fraud_weight, passes=passes,
                         random_state=random_state)
        self.genuine_rate = genuine_rate

    def _passes(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        """Each pass: every fraud and a fresh genuine sample, shuffled, genuines reweighted."""
        if not 0 < self.genuine_rate <= 1:
            raise ValueError(f"genuine_rate must be in (0, 1], got {self.genuine_rate}")
        frauds = np.flatnonzero(y == 1)
        genuines = np.flatnonzero(y != 1)
        for _ in range(self.passes):
            kept = genuines[rng.random(len(genuines)) < self.genuine_rate]
            rows = rng.permutation(np.concatenate([frauds, kept]))
            weights = np.where(y[rows] == 1, self.fraud_weight, 1.0 / self.genuine_rate)
            # Only the pass' rows scaled: the values `_scaled(X)[rows]` holds.
            self.classifier_.partial_fit(self._scaled(X[rows]), y[rows], classes=CLASSES,
                                         sample_weight=weights)
