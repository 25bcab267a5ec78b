"""CPU time of `fraudpipe serve`'s scoring in process: `Scorer.score_one` and `score_batch`.

    .venv/bin/python -m bench.serve_inprocess [--what one|batch|both|day|features]
        [--requests 2000]
        [--learner NAME --days 58]

No HTTP, no service process: a `Scorer` on the cached shares of `python -m bench serve`
(in-memory windows, replay clock), timed with ``time.process_time`` so that other work on
a shared machine stretches the figures far less than wall time would.

- ``one``: the default-size share's first served day, replayed one transaction at a time
  in time order (200 warm-up requests first); CPU ms per request, with reasons (3) as
  the service answers by default, and without (``reasons=0``). ``--learner`` trains the
  share's chain with that learner (``lgbm_mlp_cards_bounded``: the card inputs, whose
  history is 50 days: ``--days 58`` gives every served day a full one).
- ``day``: the ``one`` share's first served day as one Parquet body: CPU seconds of the
  one ``score_batch`` call.
- ``features``: the card learner's share (``--days``), its first served day's first
  ``--requests`` transactions, each with its card's rows so far: CPU ms of their
  `day_features` without and with the card inputs, on the same history (medians of 5).
- ``batch``: the 100,000-transaction day (`bench.serve_sizes`) as one Parquet body:
  CPU seconds of ``Scorer.load`` (head and history read, history prepared) and of the
  one ``score_batch`` call.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def _scorer(share: Path, today):
    from trainer.serving.intraday import MemoryIntraday
    from trainer.serving.scorer import Scorer, ServeConfig
    from trainer.serving.share_mapping import serving_mapping
    from trainer.share.layout import Share

    opened = Share.at(share)
    config = ServeConfig(mapping=serving_mapping(opened), clock="replay", today=today,
                         lateness_seconds=86_400, reload_seconds=3600)
    scorer = Scorer(opened, config, MemoryIntraday())
    started = time.process_time()
    assert scorer.load(), scorer.not_ready
    return scorer, time.process_time() - started


def one(data_dir: Path, requests: int, days: int = 44, learner: str | None = None) -> dict:
    """CPU ms per `score_one` on the default-size share (with and without reasons)."""
    from bench.serve_load import bodies, share_with_head

    share, all_days, served = share_with_head(data_dir, days=days, customers=5000,
                                              terminals=10000, seed=0, served=7,
                                              learner=learner)
    items = bodies([all_days / f"{served[0]}.parquet"])
    warm = 200
    if len(items) < warm + 2 * requests:
        raise SystemExit(f"the day has {len(items)} transactions; ask for at most "
                         f"{(len(items) - warm) // 2} requests")
    scorer, load_s = _scorer(share, served[0])
    for body in items[:warm]:
        scorer.score_one(body)
    result = {"requests": requests, "load_cpu_s": round(load_s, 3)}
    for name, reasons, part in (("reasons_3", 3, items[warm:warm + requests]),
                                ("reasons_0", 0, items[warm + requests:warm + 2 * requests])):
        started = time.process_time()
        for body in part:
            scorer.score_one(body, reasons=reasons)
        result[f"cpu_ms_per_request_{name}"] = round(
            1000 * (time.process_time() - started) / requests, 3)
    return result


def day(data_dir: Path, days: int = 44, learner: str | None = None) -> dict:
    """CPU s of scoring the default-size share's first served day as one Parquet body."""
    from bench.serve_load import share_with_head
    from bench.serve_phases import parquet_body
    from trainer.serving.requests import PARQUET

    share, all_days, served = share_with_head(data_dir, days=days, customers=5000,
                                              terminals=10000, seed=0, served=7,
                                              learner=learner)
    body, rows = parquet_body(all_days / f"{served[0]}.parquet")
    scorer, _ = _scorer(share, served[0])
    started = time.process_time()
    answers = scorer.score_batch(body, PARQUET)
    assert len(answers) == rows
    return {"transactions": rows, "score_batch_cpu_s": round(time.process_time() - started, 3)}


def features(data_dir: Path, requests: int, days: int) -> dict:
    """CPU ms per transaction of the features alone, without and with the card inputs."""
    import numpy as np
    import pandas as pd

    from bench.serve_load import share_with_head
    from trainer.features.prepared import day_features, day_rows
    from trainer.serving.history import load_history, row_columns
    from trainer.serving.intraday import MemoryIntraday
    from trainer.share.layout import Share

    share, all_days, served = share_with_head(data_dir, days=days, customers=5000,
                                              terminals=10000, seed=0, served=7,
                                              learner="lgbm_mlp_cards_bounded")
    history = load_history(Share.at(share), served[0], MemoryIntraday(), cards=True).prepared
    frame = pd.read_parquet(all_days / f"{served[0]}.parquet").sort_values(
        ["TX_DATETIME", "TRANSACTION_ID"]).head(requests)
    cards: dict = {}
    card_rows = []
    for row in zip(frame["TRANSACTION_ID"].tolist(),
                   frame["TX_DATETIME"].to_numpy().view(np.int64).tolist(),
                   frame["CUSTOMER_ID"].tolist(), frame["TERMINAL_ID"].tolist(),
                   frame["TX_AMOUNT"].tolist(), strict=True):
        cards.setdefault(row[2], []).append(row)
        card_rows.append(list(cards[row[2]]))
    result = {}
    for name, with_cards in (("without_cards", False), ("with_cards", True)):
        runs = []
        for _ in range(5):
            started = time.process_time()
            for rows in card_rows:
                day_features(history, day_rows(row_columns(rows), one_card=True),
                             np.array([len(rows) - 1]), profiles=True, cards=with_cards)
            runs.append(1000 * (time.process_time() - started) / len(card_rows))
        result[f"cpu_ms_per_transaction_{name}"] = round(float(np.median(runs)), 3)
    return result


def batch(data_dir: Path) -> dict:
    """CPU s of loading the 100k-a-day share and of scoring its day as one Parquet body."""
    from bench.serve_phases import parquet_body
    from bench.serve_sizes import SIZES, big_day_share
    from trainer.serving.requests import PARQUET

    share, day_file, day = big_day_share(data_dir, SIZES["100k"])
    body, rows = parquet_body(day_file)
    scorer, load_s = _scorer(share, day)
    started, wall = time.process_time(), time.perf_counter()
    answers = scorer.score_batch(body, PARQUET)
    cpu, wall = time.process_time() - started, time.perf_counter() - wall
    assert len(answers) == rows
    return {"transactions": rows, "load_cpu_s": round(load_s, 3),
            "score_batch_cpu_s": round(cpu, 3), "score_batch_wall_s": round(wall, 3)}


def main(argv: list[str] | None = None) -> int:
    """Measure and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=("one", "batch", "both", "day", "features"),
                        default="both")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--days", type=int, default=44,
                        help="days of the `one` share (the last 7 served)")
    parser.add_argument("--learner", help="the `one` share's learner (default: train's)")
    parser.add_argument("--data-dir", default=os.environ.get("FRAUDPIPE_BENCH_DATA",
                                                             "/tmp/fraudpipe-bench"))
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    result: dict = {"loadavg_before": round(os.getloadavg()[0], 2)}
    if args.what in ("one", "both"):
        result["one"] = one(data_dir, args.requests, args.days, args.learner)
    if args.what == "features":
        result["features"] = features(data_dir, args.requests, args.days)
    if args.what == "day":
        result["day"] = day(data_dir, args.days, args.learner)
    if args.what in ("batch", "both"):
        result["batch"] = batch(data_dir)
    result["loadavg_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
