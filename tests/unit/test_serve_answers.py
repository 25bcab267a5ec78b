"""A batch's answers without reasons are serialised in bulk, byte for byte as one by one."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import orjson
import pytest

from trainer.serving import scorer


@pytest.mark.parametrize("ids", [[1, 22, 333, 4, 5, 6, 7, 8],
                                 ["a,b", 'q"x', "tx-1", "é", "5", "6", "7", "8"]])
def test_bulk_answers_are_the_answers_dictionaries_serialised(monkeypatch, ids):
    head = SimpleNamespace(described={"day": "2018-04-03", "sha256": "ab" * 32,
                                      "path": "output/model_cpt_2018-04-03.skops",
                                      "learner": "lgbm_mlp_profiles"})
    serving = SimpleNamespace(head=head, day=dt.date(2018, 4, 5))
    scores = np.array([0.1, 1e-7, 0.99999999999, 5e-324, 0.0, 1.0, 1 / 3, 2.5e-05])
    monkeypatch.setattr(scorer, "model_scores", lambda head, X: X[:, 0])
    got = scorer._plain_answers(serving, ids, scores[:, None])
    assert got == [orjson.dumps({"transaction_id": i, "score": float(s),
                                 "checkpoint": head.described, "serving_day": "2018-04-05",
                                 "reasons": []}) for i, s in zip(ids, scores, strict=True)]
