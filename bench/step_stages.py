"""Where one step's CPU goes: each stage of `trainer.step.run_step` timed on its own.

    .venv/bin/python -m bench.step_stages --size 100k --repeats 3 [--learner NAME] \\
        [--code <checkout of other code>]

The day and its history are `bench step`'s prepared share for that size
(`bench.step_throughput.prepared`); the day before is trained first as the chain's head
(kept in `<work>/stages-head-<learner>` and reused), and each measured run starts from a
copy of it, in a fresh single-threaded process, like `bench.step_compare`. In the child,
the functions the step calls are wrapped with `time.process_time` (no profiler: its
overhead inflates Python-heavy stages several times); a stage's figure includes the
stages nested in it, which are printed indented below it. "other" is the step's CPU not
inside any top-level stage. Medians over the repeats; the checkpoint's sha256 of every
run is printed too (the same inputs must give the same bytes). With `--code`, the step
(and the head) run from that checkout's `trainer`, e.g. the code before a change, timed by
this script: a stage that code does not have is listed as "(absent)" with 0 s.

`--history-day N` times day N (0-based from 2018-04-01) of the handbook's default 183-day
simulation (`bench.backfill`'s landing) instead, after a chain trained through day N-1 by
`fraudpipe train` from the timed checkout (kept in
`<data-dir>/stages-chain-d<N>-s<seed>-<learner>-<checkout name>` and reused): the step as
the backfill meets it late in the chain. `--size` is then ignored.

`--long-chain` (with `--size`) times the step after a chain trained by `fraudpipe train`
on every prepared day before it (38 days of that size; kept in
`<work>/stages-chain-<learner>-<checkout name>`), where a learner's memory of recent days
is as full as a chain of that day size keeps it, instead of after one day.

`--library-threads inherit` runs the measured steps with the thread pools this script's
environment sets (none: OpenMP's, OpenBLAS's and Arrow's defaults, one thread a core), as
`fraudpipe` and `bench backfill` run, instead of one thread each; `time.process_time`
counts every thread's CPU, so the whole step's wall time is printed beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.step_throughput import LEARNER_ENV, ONE_THREAD_ENV, QUICK_SIZES, SIZES, prepared

REPO = Path(__file__).resolve().parents[1]

#: (stage name, module, attribute): the callables timed, outermost first. A class
#: attribute is "Class.method". Nesting follows the call stack at run time. A name listed
#: twice (a subclass overriding the method) adds up under that name.
STAGES = (
    ("load checkpoint", "trainer.step", "load_checkpoint"),
    ("features", "trainer.step", "carried_features"),
    ("read state", "trainer.features.carried", "load_state"),
    ("read days", "trainer.features.carried", "_day_columns"),
    ("advance", "trainer.features.carried", "advance"),
    ("window totals", "trainer.features.state_advance", "window_totals"),
    ("profiles", "trainer.features.state_profiles", "PROFILES_OF"),
    ("card inputs", "trainer.features.state_advance", "card_inputs"),
    ("features frame", "trainer.features.state_advance", "features_frame"),
    ("write state", "trainer.features.carried", "to_parquet"),
    ("model inputs", "trainer.evaluation.scoring", "model_inputs"),
    ("score the day", "trainer.step", "fraud_scores"),
    ("booster predict", "trainer.learners.boosting", "booster_predict"),
    ("MLP predict", "trainer.model", "WarmStartClassifier.predict_proba"),
    ("scores file", "trainer.evaluation.scoring", "write_scores"),
    ("card ranks", "trainer.evaluation.scoring", "card_ranks"),
    ("reasons", "trainer.evaluation.scoring", "reason_columns"),
    ("saved list", "trainer.evaluation.scoring", "save_list"),
    ("explain", "trainer.evaluation.reasons", "explain"),
    ("booster contributions", "trainer.evaluation.reasons", "booster_contributions"),
    ("reasons of a row", "trainer.evaluation.reasons", "reasons"),
    ("day metrics", "trainer.evaluation.scoring", "day_metrics"),
    ("booster update", "trainer.learners.boosting", "WindowBoostingClassifier.partial_fit"),
    ("booster update", "trainer.learners.bounded", "BoundedWindowBoostingClassifier.partial_fit"),
    ("MLP update", "trainer.model", "WarmStartClassifier.partial_fit"),
    ("training accuracy", "trainer.evaluation.scoring", "training_accuracy"),
    ("testing dataset", "trainer.evaluation.scoring", "evaluate_testing_dataset"),
    ("checkpoint bytes", "trainer.step", "dump_model"),
    ("commit", "trainer.step", "commit"),
    ("reports", "trainer.step", "write_reports"),
)


def _instrument() -> dict[str, float]:
    """Wrap every stage's callable; returns the dict the CPU seconds accumulate in."""
    import importlib

    totals: dict[str, float] = {}
    stack: list[str] = []
    absent: list[str] = []
    found: set[str] = set()

    def timed(path: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            stack.append(path)
            key = " / ".join(stack)
            totals.setdefault(key, 0.0)  # listed in the order stages start
            started = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[key] += time.process_time() - started
                stack.pop()
        return wrapper

    for name, module_name, attribute in STAGES:
        owner_name, _, method = attribute.rpartition(".")
        try:
            module = importlib.import_module(module_name)
            owner = getattr(module, owner_name) if owner_name else module
            target = getattr(owner, method)
        except (ImportError, AttributeError):  # older code: the stage is not there
            absent.append(name)
            continue
        found.add(name)
        if isinstance(target, dict):  # a table of callables (the profiles per kind)
            for key, fn in list(target.items()):
                target[key] = timed(name, fn)
        else:
            setattr(owner, method, timed(name, target))
    totals.update({f"(absent) {name}": 0.0 for name in absent if name not in found})
    return totals


def child(work: Path, day: dt.date) -> dict:
    """One instrumented step in this process; its stage CPU seconds."""
    try:
        from trainer.share.layout import create_share
    except ImportError:  # code from before the share package (e.g. 581fcaa)
        from trainer.storage import create_share  # type: ignore[no-redef]

    totals = _instrument()
    import trainer.step as step_module

    share = create_share(work / "share", "fraudpipe bench")[0]
    learner = os.environ.get(LEARNER_ENV) or None
    started, wall_started = time.process_time(), time.perf_counter()
    result = step_module.run_step(share, day, learner=learner)
    total = time.process_time() - started
    wall = time.perf_counter() - wall_started
    top = sum(v for k, v in totals.items() if " / " not in k and not k.startswith("(absent)"))
    return {"total": total, "wall": wall, "other": total - top, "stages": totals,
            "checkpoint_sha256": result.checkpoint_sha256,
            "transactions": result.metrics["transactions"]}


def _run_child(code: Path, work: Path, day: dt.date, learner: str,
               library_threads: str = "one") -> dict:
    pools = ONE_THREAD_ENV if library_threads == "one" else {}
    env = {**os.environ, **pools, LEARNER_ENV: learner, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                           "--work", str(work), "--day", day.isoformat()],
                          env=env, cwd=code, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"step child failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _chain(data_dir: Path, seed: int, day_index: int, learner: str,
           code: Path) -> tuple[Path, dt.date, Path]:
    """The 183-day landing's share, its day `day_index`, and the chain through the day before.

    The chain (its `output/`) is trained once by `code`'s `fraudpipe train` and kept.
    """
    from bench.backfill import START, landing
    from trainer.share.layout import create_share

    day = START + dt.timedelta(days=day_index)
    work = data_dir / f"stages-chain-d{day_index}-s{seed}-{learner}-{code.name}"
    head = work / "head"
    if not head.is_dir():
        source = landing(data_dir, 183, seed)
        shutil.rmtree(work, ignore_errors=True)
        share = create_share(work / "share", "fraudpipe bench")[0]
        share.training_dir.mkdir(parents=True)
        for path in source.glob("*.parquet"):
            shutil.copyfile(path, share.training_dir / path.name)
        _train_chain(code, share.root, day - dt.timedelta(days=1), learner)
        shutil.copytree(share.output_dir, head)
    return work, day, head


def _train_chain(code: Path, root: Path, through: dt.date, learner: str) -> None:
    """`code`'s `fraudpipe train` of the share at `root` through `through`, one thread."""
    train = ("import sys\nfrom trainer.cli import main\nsys.exit(main(sys.argv[1:]))")
    env = {**os.environ, **ONE_THREAD_ENV, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-c", train, "train", "--storage", str(root),
                           "--through", through.isoformat(), "--learner", learner],
                          env=env, cwd=code, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"training the chain in {code} failed: {done.stderr[-3000:]}")


def measure(size: str, learner: str, repeats: int, data_dir: Path, seed: int,
            code: Path = REPO, library_threads: str = "one",
            history_day: int | None = None, long_chain: bool = False) -> dict:
    """The stage split of one size's step (or of `history_day`); see the module docstring."""
    from bench.step_compare import _child as train_head
    from bench.step_compare import _reset
    from trainer.features.compute import HISTORY_DAYS

    if history_day is not None:
        work, day, head = _chain(data_dir, seed, history_day, learner, code)
        size = f"day {history_day} of 183"
    else:
        work, info = prepared(data_dir, {**SIZES, **QUICK_SIZES}[size], HISTORY_DAYS, seed)
        day = dt.date.fromisoformat(info["days"][-1]["date"])
        head = work / f"stages-{'chain' if long_chain else 'head'}-{learner}-{code.name}"
        if long_chain:
            size = f"{size} after a chain of {len(info['days']) - 1} days"
    share = work / "share"
    if not head.is_dir():
        _reset(share)
        if long_chain:
            _train_chain(code, share, day - dt.timedelta(days=1), learner)
        else:
            train_head(code, learner, work, day - dt.timedelta(days=1))
        shutil.copytree(share / "output", head)
    runs = []
    for _ in range(repeats):
        _reset(share, head)
        runs.append(_run_child(code, work, day, learner, library_threads))
    keys = list(dict.fromkeys(k for r in runs for k in r["stages"]))
    return {"size": size, "learner": learner, "code": str(code),
            "library_threads": library_threads,
            "thread_env": {name: os.environ.get(name) for name in ONE_THREAD_ENV},
            "transactions": runs[0]["transactions"],
            "repeats": repeats, "loadavg": [round(x, 2) for x in os.getloadavg()],
            "total": statistics.median(r["total"] for r in runs),
            "wall": statistics.median(r["wall"] for r in runs),
            "other": statistics.median(r["other"] for r in runs),
            "stages": {k: statistics.median(r["stages"].get(k, 0.0) for r in runs)
                       for k in keys},
            "checkpoint_sha256": sorted({r["checkpoint_sha256"] for r in runs})}


def table(result: dict) -> str:
    """The stage split as text: stage, median CPU s, share of the step."""
    total = result["total"]
    lines = [f"{result['size']} ({result['transactions']:,} transactions), "
             f"{result['learner']}, code {result['code']}, median of {result['repeats']}, "
             f"library threads {result.get('library_threads', 'one')}, "
             f"load {result['loadavg']}",
             f"{'step':40s} {total:7.3f} s  100%  (wall {result.get('wall', 0.0):.3f} s)"]
    for key, value in [*result["stages"].items(), ("other", result["other"])]:
        depth = key.count(" / ")
        name = "  " * (depth + 1) + key.rpartition(" / ")[2]
        lines.append(f"{name:40s} {value:7.3f} s  {100 * value / total:3.0f}%")
    lines.append(f"checkpoint sha256: {', '.join(result['checkpoint_sha256'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure (or, with --child, run one instrumented step)."""
    from trainer.learners import DEFAULT_LEARNER

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", help="10k, 100k, 1M (2k: a smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--learner", default=DEFAULT_LEARNER)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=Path(
        os.environ.get("FRAUDPIPE_BENCH_DATA", "/tmp/fraudpipe-bench")))
    parser.add_argument("--code", type=Path, default=REPO,
                        help="the checkout whose step is timed (default: this one)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--history-day", type=int, metavar="N",
                        help="time day N (0-based) of the 183-day simulation after a chain "
                             "through day N-1, instead of a --size day")
    parser.add_argument("--long-chain", action="store_true",
                        help="with --size: the head is a chain trained on every prepared "
                             "day before the timed one (38 days), not on the day before only")
    parser.add_argument("--library-threads", choices=("one", "inherit"), default="one",
                        help="one: the steps run with OMP/OpenBLAS/MKL/Arrow at one thread "
                             "(default); inherit: with this environment's settings, as "
                             "fraudpipe and bench backfill run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.work, dt.date.fromisoformat(args.day))))
        return 0
    result = measure(args.size, args.learner, args.repeats, args.data_dir, args.seed,
                     args.code.resolve(), args.library_threads, args.history_day,
                     args.long_chain)
    print(table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
