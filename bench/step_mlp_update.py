"""The default learner's MLP update alone: scikit-learn's minibatch loop against ours.

    .venv/bin/python -m bench.step_mlp_update [--rows 100000] [--repeats 3] \\
        [--previous REV]

The MLP member of `lgbm_mlp_profiles` (a `WarmStartClassifier` over `DailyMLPClassifier`:
3 passes, minibatches of 256, frauds weighted 5) learns a synthetic day of 26 inputs (2%
frauds, column-major as the step's features frame) after a small first day, from the same
state, once with each loop: scikit-learn's own `_fit_stochastic`, `DailyMLPClassifier`'s,
and with `--previous REV` the whole update of that git revision (its `WarmStartClassifier`
and `DailyMLPClassifier`: `trainer/model.py`, `trainer/learners/mlp.py` and `mlp_pass.py`
as they were there, e.g. the code before a change). The loops take
turns within each repeat, so that a shared machine's drift hits them alike; each figure is
the best CPU seconds of the repeats, on one BLAS thread as the step runs
(`trainer.step.run_step`). Prints each loop's ratio to ours, and whether every weight, Adam
moment and loss came out equal (they must).
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]


def _previous_classes(rev: str) -> tuple[type, type]:
    """`WarmStartClassifier` and `DailyMLPClassifier` as git revision `rev` defined them.

    Its `trainer/model.py`, `trainer/learners/mlp.py` and, where that revision has it, the
    `mlp_pass.py` this imports, loaded as modules of their own.
    """
    def source(path: str) -> str | None:
        shown = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"],
                               capture_output=True, text=True)
        return shown.stdout if shown.returncode == 0 else None

    def load(path: str, text: str) -> types.ModuleType:
        module = types.ModuleType(f"{Path(path).stem}_at_{rev}")
        sys.modules[module.__name__] = module
        exec(compile(text, f"{rev}:{path}", "exec"), module.__dict__)
        return module

    mlp, model = source("trainer/learners/mlp.py"), source("trainer/model.py")
    if mlp is None or model is None:
        raise SystemExit(f"{rev} has no trainer/learners/mlp.py or trainer/model.py")
    helper = source("trainer/learners/mlp_pass.py")
    if helper is not None:
        name = load("trainer/learners/mlp_pass.py", helper).__name__
        mlp = mlp.replace("from trainer.learners.mlp_pass import", f"from {name} import")
    return (load("trainer/model.py", model).WarmStartClassifier,
            load("trainer/learners/mlp.py", mlp).DailyMLPClassifier)


def main(argv: list[str] | None = None) -> int:
    """Time the loops and check they agree."""
    from trainer.learners.mlp import DailyMLPClassifier
    from trainer.learners.registry import make_learner
    from trainer.model import WarmStartClassifier

    class SklearnLoop(DailyMLPClassifier):
        def _lean_update_applies(self, X, sample_weight, incremental) -> bool:
            return False

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--previous", metavar="REV",
                        help="also time the MLP update as of this git revision")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)

    def day(rows: int) -> tuple[np.ndarray, np.ndarray]:
        X = np.asfortranarray(rng.normal(size=(rows, 26)))
        y = (rng.random(rows) < 0.02).astype(int)
        X[y == 1, :3] += 1.5
        return X, y

    loops: dict[str, tuple[type, type]] = {
        "scikit-learn loop": (WarmStartClassifier, SklearnLoop)}
    if args.previous:
        loops[f"previous ({args.previous})"] = _previous_classes(args.previous)
    loops["DailyMLPClassifier"] = (WarmStartClassifier, DailyMLPClassifier)
    start = make_learner("lgbm_mlp_profiles").members[1]
    start.partial_fit(*day(3_000))
    X, y = day(args.rows)
    seconds = dict.fromkeys(loops, float("inf"))
    states = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(args.repeats):
            for name, (model_class, network_class) in loops.items():
                model = copy.deepcopy(start)
                model.__class__, model.classifier_.__class__ = model_class, network_class
                began = time.process_time()
                model.partial_fit(X, y)
                seconds[name] = min(seconds[name], time.process_time() - began)
                network = model.classifier_
                states[name] = [*network.coefs_, *network.intercepts_, *network._optimizer.ms,
                                *network._optimizer.vs, np.array(network.loss_curve_),
                                np.array([network._optimizer.t, network._optimizer.learning_rate])]
    ours = states["DailyMLPClassifier"]
    # Bytes, not ==: -0.0 == 0.0, and a checkpoint holds the bits.
    same = all(a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
               for state in states.values() for a, b in zip(state, ours, strict=True))
    for name, value in seconds.items():
        ratio = value / seconds["DailyMLPClassifier"]
        print(f"{args.rows} rows, {name:24s} CPU s {value:.3f} (best of {args.repeats}), "
              f"{ratio:.2f}x ours")
    print("identical weights, moments and losses" if same else "DIFFERENT results")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
