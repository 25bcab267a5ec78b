"""The card learner on a share: its step's carried card inputs, and every path that scores it.

The step's features (`carried_features(..., cards=True)`) equal the raw-history path's
(`features_of_day(..., cards=True)`), across a gap and a state without the card sums (both
rebuilt); a chain of `lgbm_mlp_cards_bounded` trains on its 29 inputs, its checkpoints are
evaluated and arrived days scored on them (the card inputs from the prepared history, as
`fraudpipe serve` computes them: tests/unit/test_serve_cards.py), and its arrival scores
go stale when a day of their 50-day history changes.
"""

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from tests.arrivals import arrive
from tests.shares import simulated_share
from trainer.arrival import (
    arrived_features,
    day_transactions,
    inputs_signature,
    score_arrived_days,
    scored_by,
    scores_stale,
)
from trainer.backlog import train_all
from trainer.errors import IncompleteHistoryError
from trainer.evaluation.checkpoint import evaluate_checkpoint
from trainer.features.cards import CARD_FEATURE_COLUMNS
from trainer.features.carried import carried_features
from trainer.features.compute import INPUT_COLUMNS
from trainer.features.from_history import features_of_day, with_cards
from trainer.features.prepared import features_of_day_frame
from trainer.features.state_file import from_parquet
from trainer.labels import labelled_frame
from trainer.learners.registry import CARD_INPUTS
from trainer.share.checkpoints import load_checkpoint
from trainer.share.lineage import Lineage, verify
from trainer.share.manifest import manifest_key, read_manifest

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(60)]
LEARNER = "lgbm_mlp_cards_bounded"


def _walk(share, days, *, cards, head=(None, None)):
    """Carried features of `days` in turn, each state written as the step writes it."""
    head_day, head_sha = head
    for day in days:
        carried = carried_features(share, day, head_day, head_sha, profiles=True, cards=cards)
        share.feature_state_dir.mkdir(parents=True, exist_ok=True)
        share.feature_state(day).write_bytes(carried.state_bytes)
        head_day, head_sha = day, carried.state_sha256
        yield day, carried


def _assert_same(got: pd.DataFrame, raw: pd.DataFrame, day) -> None:
    assert list(got.columns) == list(raw.columns)
    assert (got["TRANSACTION_ID"].to_numpy() == raw["TRANSACTION_ID"].to_numpy()).all()
    for name in CARD_INPUTS[1:]:
        exact = "_NB_" in name or name.startswith("TX_DURING")
        np.testing.assert_allclose(got[name], raw[name], rtol=0 if exact else 1e-12, atol=0,
                                   err_msg=f"{day} {name}")


def test_step_card_inputs_equal_the_raw_path_through_a_gap_and_an_old_state(tmp_path, caplog):
    # GIVEN 58 simulated days (compromised cards spend x5) with day 30 never ingested
    share = simulated_share(tmp_path, 58, customers=60, terminals=40)
    share.training_dataset(D[30]).unlink()
    manifest = json.loads(share.ingest_manifest.read_text())
    del manifest[D[30].isoformat()]
    share.ingest_manifest.write_text(json.dumps(manifest))
    # AND a chain without the card inputs through day 40 (its state has no card sums)
    plain = dict(_walk(share, [d for d in D[:41] if d != D[30]], cards=False))
    # WHEN a card chain continues from that state, then skips day 50
    trained = [*D[41:50], *D[51:58]]
    with caplog.at_level("WARNING"):
        walked = dict(_walk(share, trained, cards=True,
                            head=(D[40], plain[D[40]].state_sha256)))
    # THEN the first step rebuilt (no card sums), and the one after the gap too
    assert "has no card inputs' sums" in walked[D[41]].rebuilt
    assert "never computed" in walked[D[51]].rebuilt
    # AND the steps in between rolled, reading only the boundary days
    assert walked[D[42]].rebuilt is None and len(walked[D[42]].days_read) <= 7
    high = 0
    for day, carried in walked.items():
        raw = features_of_day(share, day, profiles=True, cards=True, use_cache=False)
        _assert_same(carried.features, raw, day)
        high += int(carried.features[CARD_FEATURE_COLUMNS[0]].gt(0).sum())
    assert high > 0
    state = from_parquet(share.feature_state(D[57]).read_bytes(), "head")
    assert state.cards and len(state.high_rows.ids) > 0


@pytest.fixture(scope="module")
def cards_chain(tmp_path_factory):
    """A card chain of 12 days, day 12 arriving without labels."""
    root = tmp_path_factory.mktemp("cards")
    share = simulated_share(root, 13, customers=150, terminals=100)
    labelled = pd.read_parquet(share.training_dataset(D[12]))
    share.training_dataset(D[12]).unlink()
    manifest = json.loads(share.ingest_manifest.read_text())
    del manifest[D[12].isoformat()]
    share.ingest_manifest.write_text(json.dumps(manifest))
    share.testing_dir.mkdir(parents=True, exist_ok=True)  # scored by every checkpoint
    labelled.to_parquet(share.testing_dir / f"{D[12]}.parquet")
    train_all(share, learner=LEARNER)
    arrive(share, D[12], labelled)
    return share


def test_a_card_chain_trains_on_its_29_inputs(cards_chain):
    chain = verify(cards_chain)
    assert [e.date for e in chain] == D[:12] and {e.learner for e in chain} == {LEARNER}
    head = Lineage.load(cards_chain).head_entry
    model = load_checkpoint(cards_chain.root / head.checkpoint, head.sha256)
    assert model.n_features_in_ == len(CARD_INPUTS) == 29
    assert from_parquet(cards_chain.feature_state(head.date).read_bytes(), "head").cards
    # the testing dataset was scored by every checkpoint, on the card inputs too
    assert all(e.metrics["test"]["transactions"] > 0 for e in chain)


def test_a_card_checkpoint_is_evaluated_and_scores_arrived_days(cards_chain):
    result = evaluate_checkpoint(cards_chain, D[5], D[7], test_days=3, known_window_days=2)
    assert result["learner"] == LEARNER and result["transactions"] > 0
    score_arrived_days(cards_chain)
    assert scored_by(cards_chain, D[12])["trained_through"] == D[11].isoformat()


def test_arrived_card_inputs_are_the_raw_references(cards_chain):
    # the prepared path (one implementation with serve) against what arrival computed
    # before it: the 26 from the 37 days before, the cards from their raw reference
    day = D[12]
    history = [f for b in range(50, 0, -1)
               if (f := day_transactions(cards_chain, day - dt.timedelta(b))) is not None]
    own = labelled_frame(cards_chain, day)[0][INPUT_COLUMNS]
    transactions = pd.concat([*history, own], ignore_index=True)
    target = np.arange(len(transactions)) >= len(transactions) - len(own)
    expected = with_cards(features_of_day_frame(transactions, day, profiles=True),
                          transactions, target)
    got = arrived_features(cards_chain, day, profiles=True, cards=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got[CARD_FEATURE_COLUMNS[0]].gt(0).any()


def _old_signature(share, day, manifest) -> str:
    """The signature of the day and the 37 before it, as every scored-by record has it."""
    parts = []
    for back in range(37, -1, -1):
        other = day - dt.timedelta(days=back)
        entry = (manifest.get(manifest_key("arrived", other))
                 or manifest.get(manifest_key("training", other)) or {})
        parts.append(f"{other}:{entry.get('dataset_sha256')}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def test_a_card_chains_arrival_scores_go_stale_when_a_day_45_days_back_changes(cards_chain):
    # GIVEN the arrived day scored by the card chain's head
    score_arrived_days(cards_chain)
    day, manifest = D[12], read_manifest(cards_chain)
    assert scored_by(cards_chain, day)["inputs"] == inputs_signature(cards_chain, day,
                                                                     cards=True)
    assert not scores_stale(cards_chain, day, manifest)
    # WHEN a day 45 days back is replaced (a new dataset sha256 in the manifest)
    changed = {**manifest, manifest_key("training", day - dt.timedelta(45)): {
        "dataset_sha256": "0" * 64}}
    # THEN the card chain's scores are stale (its card inputs read 50 days back) ...
    assert scores_stale(cards_chain, day, changed)
    # ... while a profiles chain's signature, of the 37 days, is unchanged and the same
    # bytes as before the card chains had theirs
    assert (inputs_signature(cards_chain, day, changed)
            == inputs_signature(cards_chain, day, manifest)
            == _old_signature(cards_chain, day, manifest))


def test_a_card_step_stops_when_a_day_of_its_50_day_history_is_lost(tmp_path):
    # GIVEN a card chain and a plain one through day 49 of 51 ingested days
    share = simulated_share(tmp_path, 51, customers=30, terminals=20)
    heads = {}
    for cards in (False, True):
        *_, (day, carried) = _walk(share, D[:50], cards=cards)
        heads[cards] = (day, carried.state_sha256)
        # (the same day's state file, rewritten by the other chain: keep each head's bytes)
        heads[cards, "bytes"] = share.feature_state(day).read_bytes()
    # AND day 5 lost from the share (its manifest entry kept): 45 days before day 50,
    # outside the profiles' 37-day history, inside the cards' 50
    share.training_dataset(D[5]).unlink()
    # WHEN day 50 rolls on from each head (reading its boundary days only) ...
    share.feature_state(D[49]).write_bytes(heads[False, "bytes"])
    plain = carried_features(share, D[50], *heads[False], profiles=True, cards=False)
    assert plain.rebuilt is None
    share.feature_state(D[49]).write_bytes(heads[True, "bytes"])
    # THEN the card chain stops, naming the lost file; the plain one did not need it
    with pytest.raises(IncompleteHistoryError, match=f"{D[5]}.parquet is missing"):
        carried_features(share, D[50], *heads[True], profiles=True, cards=True)


def test_the_raw_card_features_stop_when_a_day_of_their_50_day_history_is_lost(tmp_path):
    # GIVEN 51 ingested days, day 5 lost (45 days before day 50; its manifest entry kept)
    share = simulated_share(tmp_path, 51, customers=30, terminals=20)
    share.training_dataset(D[5]).unlink()
    # WHEN day 50's features are computed from raw history, THEN the profiles alone do not
    # need day 5, and the cards stop, naming the lost file
    features_of_day(share, D[50], profiles=True, use_cache=False)
    with pytest.raises(IncompleteHistoryError, match=f"{D[5]}.parquet is missing"):
        features_of_day(share, D[50], profiles=True, cards=True, use_cache=False)
