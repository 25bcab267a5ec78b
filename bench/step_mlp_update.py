"""The default learner's MLP update alone: scikit-learn's minibatch loop against ours.

    .venv/bin/python -m bench.step_mlp_update [--rows 100000] [--repeats 3]

The MLP member of `lgbm_mlp_profiles` (a `WarmStartClassifier` over `DailyMLPClassifier`:
3 passes, minibatches of 256, frauds weighted 5) learns a synthetic day of 26 inputs (2%
frauds, column-major as the step's features frame) after a small first day, once with
scikit-learn's own `_fit_stochastic` and once with `DailyMLPClassifier`'s, from the same
state; best CPU seconds of the repeats each, and whether every weight, Adam moment and
loss came out equal (they must).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Time both loops and check they agree."""
    from trainer.learners.mlp import DailyMLPClassifier
    from trainer.learners.registry import make_learner

    class SklearnLoop(DailyMLPClassifier):
        def _lean_update_applies(self, X, sample_weight, incremental) -> bool:
            return False

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)

    def day(rows: int) -> tuple[np.ndarray, np.ndarray]:
        X = np.asfortranarray(rng.normal(size=(rows, 26)))
        y = (rng.random(rows) < 0.02).astype(int)
        X[y == 1, :3] += 1.5
        return X, y

    start = make_learner("lgbm_mlp_profiles").members[1]
    start.partial_fit(*day(3_000))
    X, y = day(args.rows)
    seconds, states = {}, {}
    for name, network_class in (("scikit-learn loop", SklearnLoop),
                                ("DailyMLPClassifier", DailyMLPClassifier)):
        best = float("inf")
        for _ in range(args.repeats):
            model = copy.deepcopy(start)
            model.classifier_.__class__ = network_class
            began = time.process_time()
            model.partial_fit(X, y)
            best = min(best, time.process_time() - began)
        seconds[name] = best
        network = model.classifier_
        states[name] = [*network.coefs_, *network.intercepts_, *network._optimizer.ms,
                        *network._optimizer.vs, np.array(network.loss_curve_)]
    same = all(np.array_equal(a, b) for a, b in zip(*states.values(), strict=True))
    for name, value in seconds.items():
        print(f"{args.rows} rows, {name:20s} CPU s {value:.3f} (best of {args.repeats})")
    print("identical weights, moments and losses" if same else "DIFFERENT results")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
