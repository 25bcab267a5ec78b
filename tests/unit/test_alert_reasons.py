"""The reasons behind each alert come from the model's own contributions, and say so.

Ten small simulated days are trained with the default learner (the LightGBM + MLP
ensemble on the profile inputs). For the head day's highest-scored transactions the
booster's TreeSHAP contributions must add up to its log-odds, the booster's and the MLP's
parts to the score in the scores file, and the inputs the reasons name must be the ones
whose change lowers the booster's score the most.
"""

import numpy as np
import pandas as pd
import pytest

from tests.shares import simulated_share
from trainer.backlog import train_all
from trainer.evaluation import reasons
from trainer.evaluation.scoring import score_day
from trainer.features.from_history import features_of_rows
from trainer.features.store import history_before
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.registry import learner_inputs
from trainer.report import card_alerts
from trainer.share.checkpoints import load_checkpoint
from trainer.share.lineage import Lineage

ROWS = 50  # the day's highest-scored transactions explained here


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The head day's features, the model that scored it, its scores and explanation."""
    share = simulated_share(tmp_path_factory.mktemp("reasons"), 10, customers=500,
                            terminals=1000, seed=2)
    train_all(share)
    lineage = Lineage.load(share)
    head = lineage.head_entry
    parent = next(e for e in lineage.entries if e.sha256 == head.parent_sha256)
    model = load_checkpoint(share.root / parent.checkpoint, parent.sha256)
    rows = pd.read_parquet(share.training_dataset(head.date))
    frame = features_of_rows(history_before(share, head.date), rows, profiles=True)
    scores = score_day(model, frame, head.learner)
    top = np.argsort(-scores, kind="stable")[:ROWS]
    inputs = learner_inputs(head.learner)
    X = frame[inputs].to_numpy(dtype=np.float64)
    return {"share": share, "day": head.date, "model": model, "frame": frame, "X": X,
            "scores": scores, "top": top, "inputs": inputs,
            "explanation": reasons.explain(model, inputs, X[top])}


def test_the_default_learner_is_explained_by_its_booster(trained):
    assert DEFAULT_LEARNER == "lgbm_mlp_profiles_bounded"
    explanation = trained["explanation"]
    assert explanation is not None and explanation.booster_weight == pytest.approx(0.7)


def test_contributions_add_up_to_the_booster_and_the_parts_to_the_score(trained):
    explanation, model, X, top = (trained[k] for k in ("explanation", "model", "X", "top"))
    booster, weight = reasons.booster_member(model)
    p_booster = booster.predict_proba(X[top])[:, 1]
    logit = np.log(p_booster / (1 - p_booster))
    np.testing.assert_allclose(explanation.contributions.sum(axis=1) + explanation.base,
                               logit, rtol=0, atol=1e-9)
    np.testing.assert_allclose(explanation.booster_part + explanation.other_part,
                               trained["scores"][top], rtol=0, atol=1e-12)
    np.testing.assert_allclose(explanation.booster_part, weight * p_booster, rtol=0, atol=1e-15)
    mlp = model.members_[1].predict_proba(X[top])[:, 1]
    np.testing.assert_allclose(explanation.other_part, (1 - weight) * mlp, rtol=0, atol=1e-12)


def _log_odds(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def _drops(booster, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """How much the booster's log-odds fall, on average, when each input alone takes the
    values of the day's other transactions (`background`)."""
    before = _log_odds(booster.predict_proba(x[None])[0, 1])
    drops = np.empty(len(x))
    for j in range(len(x)):
        changed = np.repeat(x[None], len(background), axis=0)
        changed[:, j] = background[:, j]
        drops[j] = before - _log_odds(booster.predict_proba(changed)[:, 1]).mean()
    return drops


def test_the_reasons_name_the_inputs_whose_change_lowers_the_score_most(trained):
    # GIVEN the day's highest-scored transactions whose score comes mostly from the
    # booster (the part the reasons explain), and 200 other transactions of the day
    explanation, model, X, top = (trained[k] for k in ("explanation", "model", "X", "top"))
    booster, _ = reasons.booster_member(model)
    background = X[np.random.default_rng(0).choice(len(X), 200, replace=False)]
    driven = [i for i in range(len(top))
              if explanation.booster_part[i] >= explanation.other_part[i]]
    assert len(driven) >= 20  # 27 of the 50 here: after 9 small days the MLP weighs in
    largest_named, first_is_largest = 0, 0
    for i in driven:
        named = reasons.top_inputs(explanation, i)
        # WHEN each input alone takes the other transactions' values
        drops = _drops(booster, X[top[i]], background)
        # THEN the first reason lowers the score, and the largest drop is mostly named
        assert named and drops[named[0]] > 0, (top[i], named, drops[named])
        largest = int(np.argmax(drops))
        largest_named += largest in named
        first_is_largest += largest == named[0]
    # Where the largest drop is not named, the inputs are correlated (amount, amount ratio,
    # 1-day mean amount) and TreeSHAP shares the credit among them. Naming 3 inputs of 26
    # at random would include it on about one row in nine.
    print(f"rows {len(driven)}: largest drop named on {largest_named}, "
          f"first reason on {first_is_largest}")
    assert largest_named >= 0.9 * len(driven), largest_named
    assert first_is_largest >= 0.6 * len(driven), first_is_largest


def test_alerts_carry_reasons_transactions_and_the_score_split(trained):
    alerts = card_alerts(trained["share"], trained["day"], limit=10)
    assert [a["rank"] for a in alerts] == list(range(1, 11))
    for alert in alerts:
        assert alert["reasons"] and alert["reason_inputs"].split(", ")[0] in trained["inputs"]
        assert alert["score_from_booster"] + alert["score_from_others"] == pytest.approx(
            alert["highest_score"], abs=2e-4)
        listed = alert["transaction_list"]
        assert len(listed) == alert["transactions"]
        assert max(t["score"] for t in listed) == alert["highest_score"]
        assert sum(t["amount"] for t in listed) == pytest.approx(alert["amount"], abs=0.01)


def test_the_score_command_prints_each_cards_reasons_and_transactions(trained):
    from trainer.commands.score import alert_text

    [alert] = card_alerts(trained["share"], trained["day"], limit=1)
    lines = alert_text(alert).splitlines()
    assert lines[0].startswith(f"{trained['day']}  #1   card {alert['card_id']}  score ")
    assert lines[1] == f"      why: {alert['reasons']}"
    assert lines[2].startswith("      score = booster part ")
    assert len(lines) == 3 + alert["transactions"]


@pytest.mark.parametrize(("name", "values", "words"), [
    ("CUSTOMER_ID_AMOUNT_RATIO_30DAY_WINDOW", {"CUSTOMER_ID_AMOUNT_RATIO_30DAY_WINDOW": 5.2},
     "amount 5.2x the card's 30-day mean"),
    ("TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD", {"TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD": 9.0},
     "terminal had a known fraud 9 days ago"),
    ("TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD", {"TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD": 37.0},
     "terminal: no known fraud in the 30 days up to a week ago"),
    ("CUSTOMER_ID_NB_TX_1DAY_WINDOW",
     {"CUSTOMER_ID_NB_TX_1DAY_WINDOW": 14, "CUSTOMER_ID_NB_TX_30DAY_WINDOW": 60},
     "14 transactions on the card in the last 24 h, usually 2.0"),
    ("TX_AMOUNT", {"TX_AMOUNT": 300.0, "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW": 60.0},
     "amount 300.00, 5.0x the card's 30-day mean (60.00)"),
    ("CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS",
     {"CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS": 4.0},
     "4 of the card's transactions since 13 days ago were at least 3x its known-genuine mean"),
    ("CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS",
     {"CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS": 2.54},
     "the card's mean amount since 13 days ago is 2.5x its known-genuine mean"),
])
def test_reasons_read_as_an_analyst_words_them(name, values, words):
    assert reasons.describe(name, values) == words


def test_the_scores_files_reason_texts_are_the_reasons_of_each_row(trained):
    # GIVEN the explanation of the day's top rows and the rows themselves
    explanation, frame, top = (trained[k] for k in ("explanation", "frame", "top"))
    rows = frame.iloc[top]
    # WHEN all rows' reasons are put in words at once (as the scores file keeps them)
    words, names = reasons.reason_texts(explanation, rows)
    # THEN each row reads as its own `reasons`, joined
    records = rows.to_dict("records")
    expected = [reasons.reasons(explanation, records[i], i) for i in range(len(top))]
    assert words == ["; ".join(r["words"] for r in found) for found in expected]
    assert names == [", ".join(r["input"] for r in found) for found in expected]
    assert all(words) and len(set(words)) > len(words) // 2


def test_each_alert_is_its_cards_rows_of_the_scores_file(trained):
    # GIVEN the day's scores file
    share, day = trained["share"], trained["day"]
    scores = pd.read_parquet(share.scores(day))
    # WHEN the alerts are read back, all of them
    alerts = card_alerts(share, day, limit=-1)
    # THEN one per ranked card, best first, each with its own rows in time order
    ranked = scores[scores["CARD_RANK"].notna()]
    assert [a["rank"] for a in alerts] == sorted(ranked["CARD_RANK"].astype(int).unique())
    for alert in alerts:
        rows = ranked[ranked["CARD_RANK"] == alert["rank"]]
        assert {alert["card_id"]} == set(rows["CUSTOMER_ID"])
        best = rows.sort_values(["FRAUD_SCORE", "TX_DATETIME"], ascending=[False, True]).iloc[0]
        assert alert["reasons"] == best["REASONS"]
        assert alert["highest_score"] == round(float(best["FRAUD_SCORE"]), 4)
        assert [t["transaction_id"] for t in alert["transaction_list"]] == list(
            rows.sort_values(["TX_DATETIME", "TRANSACTION_ID"])["TRANSACTION_ID"])
    assert len(card_alerts(share, day, limit=3)) == 3 and card_alerts(share, day, limit=0) == []
