"""The feature-choice harness: configuration names and the stated selection rule."""

from __future__ import annotations

from bench.quality_features import (
    GROUPS,
    METRICS,
    VALIDATION_SEEDS,
    _config,
    best_on_validation,
    columns_of,
    markdown_section,
)
from trainer.features.compute import FEATURE_COLUMNS
from trainer.features.profiles import EXTRA_FEATURE_COLUMNS


def test_every_extra_candidate_is_in_exactly_one_group():
    # the profile inputs, then the candidates derived by bench.quality_derived
    from bench.quality_derived import DERIVED_COLUMNS

    grouped = [c for columns in GROUPS.values() for c in columns]
    assert sorted(grouped) == sorted(EXTRA_FEATURE_COLUMNS + DERIVED_COLUMNS)


def test_configuration_names_select_groups_and_member_settings():
    config = _config("all-gap+booster:fraud_window_days=84,n_trees=60+mlp:passes=5")
    assert "gap" not in config["groups"] and "amount_profile" in config["groups"]
    assert config["booster"] == {"fraud_window_days": 84, "n_trees": 60}
    assert config["mlp"] == {"passes": 5}
    assert columns_of(_config("base")) == FEATURE_COLUMNS


def _rows(config: str, weight: float, value: float, seeds=VALIDATION_SEEDS) -> list[dict]:
    split = {m: value for m in METRICS}
    return [{"seed": s, "config": config, "booster_weight": weight, "features": 15,
             "cpu_seconds_per_day": 0.1, "splits": {"2018-07-03/2018-07-11": split}}
            for s in seeds]


def test_best_is_the_largest_sum_of_means_among_complete_runs():
    rows = (_rows("base", 0.5, 0.5) + _rows("all", 0.7, 0.6)
            + _rows("core", 0.5, 0.9, seeds=[0, 1]))  # better, but not on every seed
    assert best_on_validation(rows) == ("all", 0.7)
    text = markdown_section({"validation": rows, "validation_commands": ["cmd"]})
    assert text.index("`all` | 0.7") < text.index("`base` | 0.5")
