"""The learners: their names here, their classes in the modules beside this one.

The names and the default are all the command line needs to offer `--learner`, so this
module imports nothing: building the parser must not load scikit-learn or LightGBM. The
learners themselves, their inputs and the classes a checkpoint may hold are in
`trainer.learners.registry`, which checks at import that it registers exactly these names.
"""

from __future__ import annotations

#: Every learner a chain may use, in the order `--help` lists them.
LEARNER_NAMES: tuple[str, ...] = (
    "sgd",
    "sgd_tuned",
    "mlp",
    "lgbm_window",
    "lgbm_continued",
    "lgbm_mlp",
    "lgbm_mlp_profiles",
    "lgbm_mlp_profiles_sampled",
    "lgbm_mlp_profiles_binned",
    "lgbm_mlp_profiles_bounded",
    "lgbm_mlp_cards_bounded",
)

#: The learner of a new chain (an existing chain keeps the one in its lineage):
#: `lgbm_mlp_profiles`, best on the validation weeks 07-11/07-18 (bench/QUALITY.md:
#: average precision 0.748 against 0.716 for `lgbm_mlp`, the default before it), with its
#: daily reading bounded so a larger day does not cost more (`trainer.learners.bounded`;
#: on default-size days the two are the same model to the bit). Needs lightgbm; "mlp" is
#: the best scikit-learn-only learner.
DEFAULT_LEARNER = "lgbm_mlp_profiles_bounded"
