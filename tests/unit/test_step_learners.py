"""The chain's learner fixes the model's inputs, in the step and wherever its models score.

New chains get the default, `lgbm_mlp_profiles_bounded`, and its 26 inputs; a chain of the former
default `lgbm_mlp` keeps its 15 after the default changed, trained exactly as before. The
step's scores, a testing dataset, a checkpoint's evaluation and the scoring of an arrived
day all give each model its own learner's inputs.
"""

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.arrivals import arrive
from tests.shares import simulate_days
from trainer.arrival import score_arrived_days, scored_by
from trainer.backlog import train_all
from trainer.data.ingest import ingest_path
from trainer.errors import PermanentError
from trainer.evaluation import scoring
from trainer.evaluation.checkpoint import evaluate_checkpoint
from trainer.features.carried import carried_features
from trainer.features.compute import FEATURE_COLUMNS
from trainer.features.from_history import features_of_day, features_of_transactions
from trainer.features.profiles import EXTRA_FEATURE_COLUMNS
from trainer.features.store import read_transactions
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.registry import learner_inputs, make_learner
from trainer.share.checkpoints import dump_model, load_checkpoint
from trainer.share.layout import Share
from trainer.share.lineage import Lineage, verify
from trainer.step import run_step

DAYS = 6
D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(DAYS + 1)]


def _share(root, days: int = DAYS, *, testing: bool = True) -> Share:
    """`days` simulated days ingested, and the day after them as the testing dataset."""
    landing = root / "landing"
    simulate_days(landing, days + 1)
    after = landing / f"{D[days]}.parquet"
    kept = root / after.name
    shutil.move(after, kept)
    share = Share.at(root / "share")
    ingest_path(landing, share)
    if testing:
        share.testing_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(kept, share.testing_dir / kept.name)
    return share


def _head_model(share: Share):
    head = Lineage.load(share).head_entry
    return head, load_checkpoint(share.root / head.checkpoint, head.sha256)


@pytest.fixture(scope="module")
def profiles_chain(tmp_path_factory):
    """A new chain, no learner asked: the default's."""
    share = _share(tmp_path_factory.mktemp("profiles"))
    train_all(share)
    return share


def test_a_new_chain_gets_the_profiles_learner_and_its_26_inputs(profiles_chain):
    chain = verify(profiles_chain)
    assert [e.date for e in chain] == D[:DAYS]
    assert {e.learner for e in chain} == {DEFAULT_LEARNER} == {"lgbm_mlp_profiles_bounded"}
    _, model = _head_model(profiles_chain)
    assert model.n_features_in_ == 26
    # the testing dataset was scored by every checkpoint (the step's metrics["test"])
    assert all(e.metrics["test"]["transactions"] > 0 for e in chain)


def test_the_step_scores_each_day_on_the_26_inputs_before_training(profiles_chain):
    chain = verify(profiles_chain)
    for before, entry in zip(chain, chain[1:], strict=False):
        model = load_checkpoint(profiles_chain.root / before.checkpoint, before.sha256)
        frame = features_of_day(profiles_chain, entry.date, profiles=True)
        written = pd.read_parquet(profiles_chain.scores(entry.date))
        assert written["TRANSACTION_ID"].tolist() == frame["TRANSACTION_ID"].tolist()
        np.testing.assert_allclose(written["FRAUD_SCORE"].to_numpy(),
                                   scoring.score_day(model, frame, entry.learner), rtol=1e-12)


def test_evaluating_a_profiles_checkpoint_scores_its_26_inputs(profiles_chain,
                                                                 scored_widths):
    result = evaluate_checkpoint(profiles_chain, D[1], D[3], test_days=3, known_window_days=2)
    assert scored_widths == [26]
    assert result["learner"] == DEFAULT_LEARNER and result["transactions"] > 0


def test_a_chain_of_the_former_default_keeps_its_15_inputs_and_trains_as_before(tmp_path):
    # GIVEN a chain trained on `lgbm_mlp` when it was the default (its lineage names it)
    share = _share(tmp_path, testing=False)
    train_all(share, through=D[2], learner="lgbm_mlp")
    # WHEN asked for the new default, THEN the chain refuses to switch
    with pytest.raises(PermanentError, match="uses learner 'lgbm_mlp'"):
        run_step(share, D[3], learner=DEFAULT_LEARNER)
    # WHEN the following days are trained without naming a learner, as the flows do
    train_all(share)
    # THEN the chain kept its learner and its 15 inputs
    chain = verify(share)
    assert [e.date for e in chain] == D[:DAYS]
    assert {e.learner for e in chain} == {"lgbm_mlp"}
    assert learner_inputs("lgbm_mlp") == FEATURE_COLUMNS
    # AND every checkpoint is, byte for byte, lgbm_mlp trained on the handbook's 15 inputs
    # in their order, from the carried features without profiles: what the step did before
    model, previous = make_learner("lgbm_mlp"), None
    for entry in chain:
        frame = carried_features(share, entry.date, previous and previous.date,
                                 previous and previous.feature_state_sha256).features
        assert not set(EXTRA_FEATURE_COLUMNS) & set(frame.columns)
        model.partial_fit(frame[FEATURE_COLUMNS].to_numpy(), frame["TX_FRAUD"].to_numpy())
        assert dump_model(model) == (share.root / entry.checkpoint).read_bytes(), entry.date
        previous = entry
    assert load_checkpoint(share.root / chain[-1].checkpoint,
                           chain[-1].sha256).n_features_in_ == 15
    # AND its checkpoints are evaluated on the 15
    assert evaluate_checkpoint(share, D[1], D[3], test_days=3,
                               known_window_days=2)["learner"] == "lgbm_mlp"


def test_an_arrived_day_is_scored_on_the_heads_26_inputs(tmp_path):
    # GIVEN a profiles chain through D[4], and D[5] arriving without its labels
    share = _share(tmp_path, 5, testing=False)
    train_all(share)
    labelled = pd.read_parquet(tmp_path / f"{D[5]}.parquet")
    arrive(share, D[5], labelled)
    # WHEN arrived days are scored
    score_arrived_days(share)
    # THEN D[5] was scored by the head on its 26 inputs, those of the labelled day (a
    # day's own labels are not among its inputs: the risk windows end a week before)
    head, model = _head_model(share)
    assert head.date == D[4] and model.n_features_in_ == 26
    assert scored_by(share, D[5])["sha256"] == head.sha256
    history = [read_transactions(share.training_dataset(d)) for d in D[:5]]
    frame = features_of_transactions(
        pd.concat([*history, labelled[history[0].columns]], ignore_index=True), D[5],
        profiles=True)
    written = pd.read_parquet(share.scores(D[5]))
    assert written["TRANSACTION_ID"].tolist() == frame["TRANSACTION_ID"].tolist()
    np.testing.assert_array_equal(written["FRAUD_SCORE"].to_numpy(),
                                  scoring.score_day(model, frame, head.learner))
