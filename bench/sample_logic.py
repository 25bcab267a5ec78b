"""The GKE sample's per-dataset training logic, re-implemented to measure it side by side.

Written from the description in docs/facts.md#the-gke-sample
(GoogleCloudPlatform/kubernetes-engine-samples,
`batch/aiml-workloads`); no code is copied. For one dataset the sample's worker:

1. loads the day's pickled DataFrame;
2. keeps every column but the label as the inputs (TX_FRAUD stays among them, TX_DATETIME
   stays as int64 nanoseconds, nothing is scaled) and uses TX_FRAUD_SCENARIO as the label,
   hence ``classes=[0, 1, 2, 3]``;
3. loads the previous checkpoint (a pickle) if there is one, else makes
   ``SGDClassifier(warm_start=True)``, and calls ``partial_fit(..., classes=[0, 1, 2, 3])``;
4. pickles the model to ``output/model_cpt_<date>.pkl`` (not atomically);
5. scores accuracy on the training day and on the testing dataset and appends the
   six-line entry to ``output/report.txt``.

The one change: the sample's ``DataFrame.drop(columns=..., axis=1)`` raises on pandas 3, so
``drop(columns=...)`` is used. This module exists only for benchmarks: it reads the pickles
it wrote itself into a private temporary directory, never anything from a share.
"""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import pandas as pd
from sklearn.linear_model import SGDClassifier

LABEL = "TX_FRAUD_SCENARIO"
CLASSES = [0, 1, 2, 3]


def load_dataset(path: Path) -> pd.DataFrame:
    """One dataset in the sample's own format: a pickled DataFrame."""
    return pd.read_pickle(path)  # allow_pickle: benchmark of the GKE sample's own logic


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Inputs and label as the sample takes them (pandas 3 fix: no `axis` with `columns`)."""
    return frame.drop(columns=[LABEL]), frame[LABEL].astype("int64")


def train_dataset(dataset: Path, testing: Path, output: Path,
                  previous_checkpoint: Path | None) -> dict:
    """Run the sample's logic for one dataset; returns what it reported.

    Args:
        dataset: the day's pickle (`to_sample_dtypes` layout).
        testing: the pickle of the testing dataset the report's second accuracy uses.
        output: directory for the checkpoint and report.txt (a private temp directory).
        previous_checkpoint: the pickle written for the previous dataset, or None.

    Returns:
        Dataset name, checkpoint path, rows and both accuracies.
    """
    frame = load_dataset(dataset)
    X, y = split(frame)
    if previous_checkpoint is not None:
        with open(previous_checkpoint, "rb") as handle:
            model = pickle.load(handle)  # allow_pickle: benchmark of the GKE sample's own logic
    else:
        model = SGDClassifier(warm_start=True)
    model.partial_fit(X.to_numpy(dtype="float64"), y.to_numpy(), classes=CLASSES)

    checkpoint = output / f"model_cpt_{dataset.stem}.pkl"
    with open(checkpoint, "wb") as handle:  # the sample writes in place, not atomically
        pickle.dump(model, handle)

    train_accuracy = float((model.predict(X.to_numpy(dtype="float64")) == y.to_numpy()).mean())
    X_test, y_test = split(load_dataset(testing))
    test_accuracy = float(
        (model.predict(X_test.to_numpy(dtype="float64")) == y_test.to_numpy()).mean()
    )
    with open(output / "report.txt", "a") as report:
        report.write(
            f"Report generated on: {dt.datetime.now()}\n"
            f"Training dataset: {dataset.name}\n"
            f"Model checkpoint: {checkpoint.name}\n"
            "---\n"
            f"Accuracy on training data: {train_accuracy}\n"
            f"Accuracy on testing data: {test_accuracy}\n\n"
        )
    return {"dataset": dataset.name, "checkpoint": str(checkpoint), "rows": len(frame),
            "train_accuracy": train_accuracy, "test_accuracy": test_accuracy}
