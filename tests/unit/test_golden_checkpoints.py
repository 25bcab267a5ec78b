"""Checkpoints written by an earlier version load and score the same with this one.

The files in tests/fixtures/golden/ were written by the product's own step over a tiny
simulated chain, one per learner (`regenerate.py` there says how, and when to run it).
A checkpoint records each object's module and class: moving or renaming a class, or a
learner whose scores change, breaks every user's chain at its next load. These tests
catch it first.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.golden.regenerate import skops_types

from trainer.learners import DEFAULT_LEARNER, LEARNER_NAMES
from trainer.learners.registry import TRUSTED_TYPES, learner_inputs
from trainer.model import fraud_scores
from trainer.share.checkpoints import dump_model, load_checkpoint

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
RECORD = json.loads((GOLDEN / "golden.json").read_text())


def test_every_learner_has_a_golden_checkpoint():
    # A new learner needs its golden file (run regenerate.py); the default is among them.
    assert sorted(RECORD) == sorted(LEARNER_NAMES)
    assert DEFAULT_LEARNER in RECORD
    for name in LEARNER_NAMES:
        assert (GOLDEN / f"{name}.skops").stat().st_size < 200_000


@pytest.mark.parametrize("name", LEARNER_NAMES)
def test_golden_checkpoint_gives_the_same_scores(name):
    # GIVEN a checkpoint an earlier version wrote, and the fixed input
    features = pd.read_parquet(GOLDEN / "input.parquet")
    expected = pd.read_parquet(GOLDEN / "scores.parquet")[name].to_numpy()
    # WHEN this version loads it (sha256 checked, trusted types only) and scores the input
    model = load_checkpoint(GOLDEN / f"{name}.skops", RECORD[name]["sha256"])
    scores = fraud_scores(model, features[learner_inputs(name)].to_numpy())
    # THEN the scores are the same up to the last bits, and they are not a constant.
    # Not bit for bit across machines: numpy runs exp and tanh in kernels chosen by the CPU
    # (AVX-512 or AVX2), which differ by an ulp or two (seen: 2.6e-16 relative on the
    # profile learners, 1.1e-13 on sgd's scores near 1e-215). A learner that changed moves
    # its scores by far more than 1e-11.
    np.testing.assert_allclose(scores, expected, rtol=1e-11, atol=0)
    assert len(np.unique(scores)) > 10


@pytest.mark.parametrize("name", LEARNER_NAMES)
def test_golden_checkpoint_classes_are_where_it_says(name):
    recorded = skops_types(GOLDEN / f"{name}.skops")
    assert recorded == RECORD[name]["types"]
    ours = [path for path in recorded if path.startswith("trainer.")]
    assert ours, "every learner holds at least one class of ours"
    for path in ours:
        module, _, cls = path.rpartition(".")
        # the class still lives in that module (not merely importable from it) ...
        found = getattr(importlib.import_module(module), cls, None)
        assert found is not None and found.__module__ == module, (
            f"{name}: the checkpoint holds {path}, which is no longer defined there; "
            "moving a class breaks every existing chain")
        # ... and skops may load it
        assert path in TRUSTED_TYPES


@pytest.mark.parametrize("name", LEARNER_NAMES)
def test_golden_checkpoint_dumps_back_to_its_own_bytes(name):
    # GIVEN a checkpoint an earlier version wrote (through skops' own `dumps`)
    data = (GOLDEN / f"{name}.skops").read_bytes()
    model = load_checkpoint(GOLDEN / f"{name}.skops", RECORD[name]["sha256"])
    # WHEN this version dumps the loaded model THEN the bytes are the file's: a chain's
    # checkpoints keep their sha256 whichever version wrote them
    assert dump_model(model) == data
