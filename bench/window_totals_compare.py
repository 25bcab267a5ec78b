"""`window_totals` of two versions on the same inputs, interleaved, with their bits compared.

    .venv/bin/python -m bench.window_totals_compare --share <prepared share> --day 2018-05-09 \\
        --old /work/main/trainer/features/state_windows.py [--repeats 5] [--profile]

The share is `bench step`'s prepared one (`<data dir>/tx<rows>-h37-s0/share`, read only).
The day before `--day` is built from the raw history as the head's state, then `--day` is
advanced from it as a step does, with the profiles; the three `window_totals` calls of that
advance are recorded and replayed with this tree's `state_windows` and with the `--old`
file's (loaded as a module of its own; the rest of `trainer` is this tree's), alternating
which goes first. Each repeat prints both versions' CPU seconds (`time.process_time`) and
whether every total and kept span is the same to the bit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from trainer.features import state_advance
from trainer.features import state_windows as this_version
from trainer.features.carried import _day_columns, carried_features
from trainer.features.state import columns_to_read
from trainer.share.layout import Share
from trainer.share.manifest import read_manifest


def _module_from(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("old_state_windows", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _recorded_calls(share: Share, day: dt.date) -> list[tuple]:
    head = carried_features(share, day - dt.timedelta(days=1), None, None,
                            profiles=True).state
    manifest = read_manifest(share)
    days = {d: _day_columns(share, manifest, d, day, names)[0]
            for d, names in columns_to_read(head, day).items()}
    calls = []
    real = state_advance.window_totals

    def record(*args):
        calls.append(args)
        return real(*args)

    state_advance.window_totals = record
    try:
        state_advance.advance(head, day, days, profiles=True)
    finally:
        state_advance.window_totals = real
    return calls


def _arrays(windows) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for _, totals in sorted(windows.totals.items()):
        out += [totals.count, *(totals.ints[k] for k in sorted(totals.ints))]
        out += [a for k in sorted(totals.floats) for a in totals.floats[k]]
    for _, (_, span) in sorted(windows.spans.items()):
        out += list(span)
    return out


def _run(module: ModuleType, calls: list[tuple]) -> tuple[float, list[list[np.ndarray]]]:
    spent, results = 0.0, []
    for args in calls:
        started = time.process_time()
        windows = module.window_totals(*args)
        spent += time.process_time() - started
        results.append(_arrays(windows))
        del windows  # each holds its boundary days' indexes
    return spent, results


def _same(a: list[list[np.ndarray]], b: list[list[np.ndarray]]) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y) and all(u.dtype == v.dtype and u.tobytes() == v.tobytes()
                                 for u, v in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=Path, required=True)
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--old", type=Path, required=True,
                        help="another version's trainer/features/state_windows.py")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile (CPU timer) of one pass of each")
    args = parser.parse_args(argv)
    versions = {"old": _module_from(args.old), "new": this_version}
    calls = _recorded_calls(Share(args.share), args.day)
    print(f"{len(calls[0][7])} rows, {len(calls)} window_totals calls", flush=True)
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    all_same = True
    for repeat in range(args.repeats):
        names = ["old", "new"] if repeat % 2 == 0 else ["new", "old"]
        results = {}
        for name in names:
            spent, results[name] = _run(versions[name], calls)
            cpu[name].append(spent)
        same = _same(results["old"], results["new"])
        all_same &= same
        print(f"repeat {repeat}: old {cpu['old'][-1]:.3f} s, new {cpu['new'][-1]:.3f} s "
              f"CPU, same bits: {same}", flush=True)
    print(f"median old {statistics.median(cpu['old']):.3f} s, "
          f"new {statistics.median(cpu['new']):.3f} s CPU")
    if args.profile:
        import cProfile
        import pstats

        for name, module in versions.items():
            profile = cProfile.Profile(time.process_time)
            profile.runcall(_run, module, calls)
            print(f"--- {name}")
            pstats.Stats(profile).sort_stats("tottime").print_stats(14)
    return 0 if all_same else 1


if __name__ == "__main__":
    raise SystemExit(main())
