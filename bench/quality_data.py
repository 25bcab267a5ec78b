"""Data for the quality benchmark: one simulation per seed, its features, kept on disk.

Two views of the same data serve the two halves of `bench.quality`:

* `features_by_day` computes the handbook's features for every day of a simulation in
  memory (one `compute_features` pass per day over the 37 days before it), with the
  profile columns for a learner that reads them, cached as one Parquet file per seed.
  The tuner (`bench.quality_tune`) replays a learner over these arrays with plain
  `partial_fit` calls: exactly what the step does, minus the share.
* `prepared_share` ingests the same simulation onto a storage root once per seed and
  writes the step's features cache, so each candidate's run of the real `run_step` starts
  from a copy of it instead of recomputing features.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.data.simulator import simulate, write_day
from trainer.evaluation.scoring import model_inputs
from trainer.features.compute import HISTORY_DAYS
from trainer.features.from_history import features_of_transactions
from trainer.share.layout import Share

START = dt.date(2018, 4, 1)


def simulation(seed: int, days: int, customers: int = 5_000,
               terminals: int = 10_000) -> list[tuple[dt.date, pd.DataFrame]]:
    """The handbook simulation for `seed` as a list of (date, frame)."""
    return list(simulate(START, days, customers, terminals, seed=seed))


def features_by_day(cache: Path, seed: int, days: int, customers: int = 5_000,
                    terminals: int = 10_000, *,
                    profiles: bool = False) -> dict[dt.date, pd.DataFrame]:
    """Features frame of every simulated day, computed once per configuration.

    With `profiles` the frames hold the profile columns too (another cache file).
    """
    kind = "features_profiles" if profiles else "features"
    path = cache / f"{kind}_s{seed}_d{days}_c{customers}_t{terminals}.parquet"
    if path.is_file():
        frame = pd.read_parquet(path)
    else:
        sim = simulation(seed, days, customers, terminals)
        parts = []
        for i, (day, _) in enumerate(sim):
            history = pd.concat([f for _, f in sim[max(0, i - HISTORY_DAYS): i + 1]],
                                ignore_index=True)
            parts.append(features_of_transactions(history, day, profiles=profiles)
                         .assign(DAY=day.isoformat()))
        frame = pd.concat(parts, ignore_index=True)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(path)
    return {dt.date.fromisoformat(day): part.drop(columns="DAY").reset_index(drop=True)
            for day, part in frame.groupby("DAY", sort=True)}


def xy(frame: pd.DataFrame, learner: str) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs of `learner` and labels of a features frame, as the step passes them."""
    return model_inputs(frame, learner), frame["TX_FRAUD"].to_numpy()


def prepared_share(cache: Path, seed: int, days: int, customers: int = 5_000,
                   terminals: int = 10_000) -> Path:
    """A storage root with the simulation ingested and every day's features cached.

    Built once per configuration under `cache`; callers copy it (`copy_share`) because a
    run writes checkpoints and the lineage into it.
    """
    from trainer.data.ingest import ingest_path
    from trainer.features.store import write_features_cache

    root = cache / f"share_s{seed}_d{days}_c{customers}_t{terminals}"
    done = root / ".prepared"
    if done.is_file():
        return root
    if root.exists():
        shutil.rmtree(root)
    with tempfile.TemporaryDirectory(dir=cache) as landing:
        for day, frame in simulate(START, days, customers, terminals, seed=seed):
            write_day(frame, landing, day)
        result = ingest_path(landing, Share.at(root))
    share = Share.at(root)
    if len(share.training_dates()) != days:
        raise RuntimeError(f"ingest of seed {seed} kept {len(share.training_dates())} of "
                           f"{days} days: {result.summary()}")
    for day in share.training_dates():
        write_features_cache(share, day)
    done.write_text("ok\n")
    return root


def copy_share(prepared: Path, target: Path) -> Share:
    """A fresh copy of a prepared storage root, for one candidate's run."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(prepared, target)
    return Share.at(target)
