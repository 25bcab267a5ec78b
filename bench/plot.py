"""Time per step against day size (beside the GKE sample and the Parquet floor) and against
the chain's length (`bench history`)."""

from __future__ import annotations

import json
from pathlib import Path

CASES = {"fraudpipe": ("fraudpipe step (features from the carried state)", "o-"),
         "fraudpipe_raw_history": ("fraudpipe step (features from 37 days of raw history)",
                                   "s--"),
         "sample": ("GKE sample's logic (pickle, no features)", "^-"),
         "floor": ("floor: read the day, score it, partial_fit", "v:"),
         "read_history": ("reading 38 days' input columns", "x:")}


def _two_panels():
    """A figure with two plots side by side, drawn without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)


def _save(figure, axes, out: Path) -> Path:
    import matplotlib.pyplot as plt

    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
    return out


def draw(step_json: Path, out: Path, compare_json: Path | None = None) -> Path:
    """Write the log-log plot of `step_json` (results of `python -m bench step`) to `out`.

    With `compare_json` (results of `python -m bench.step_compare`), each of its cases
    (a code version and learner) is drawn too, as its own line.
    """
    sizes = json.loads(step_json.read_text())["sizes"]
    learner = json.loads(step_json.read_text())["sizes"][0].get("learner")
    compared = json.loads(compare_json.read_text()) if compare_json else None
    figure, axes = _two_panels()
    x = [s["transactions"] for s in sizes]
    # Wall time is what a user waits for; CPU time is steadier on a loaded, shared machine.
    for axis, key, what in ((axes[0], "median_seconds", "wall"),
                            (axes[1], "median_cpu_seconds", "CPU")):
        for case, (label, style) in CASES.items():
            if all(case in s for s in sizes):  # results of older runs lack the new cases
                named = f"{label}, {learner}" if case.startswith("fraudpipe") and learner \
                    else label
                axis.plot(x, [s[case][key] for s in sizes], style, label=named)
        for name, style in zip(compared["cases"] if compared else [], ("D-.", "P-.", "*-."),
                               strict=False):
            points = compared["sizes"]
            axis.plot([p["transactions"] for p in points], [p[name][key] for p in points],
                      style, label=f"step, {name}: {points[0][name]['learner']} "
                                   "(bench.step_compare)")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("transactions in the day (37 days of history at the same scale)")
        axis.set_ylabel(f"{what} seconds per step (median, single-threaded)")
        axis.set_title(f"One warm-start step against day size: {what} time")
        axis.grid(True, which="both", alpha=0.3)
    return _save(figure, axes, out)


def draw_history(runs: list[tuple[str, Path]], out: Path) -> Path:
    """Write the plot of step time against the day's index in the chain to `out`.

    `runs`: (label, results of `python -m bench history`) pairs, e.g. the carried-state
    step and the raw-history step measured in the same session.
    """
    figure, axes = _two_panels()
    for axis, key, what, title in (
            (axes[0], "median_cpu_seconds", "CPU seconds per step", "CPU time"),
            (axes[1], "median_peak_rss_mib", "peak RSS MiB", "peak memory")):
        for (label, path), style in zip(runs, ("o-", "s--", "^:"), strict=False):
            result = json.loads(path.read_text())
            days = result["days"]
            learner = result.get("learner")
            cpu = result.get("context", {}).get("machine", {}).get("cpu_model", "")
            # Runs from other sessions may come from another CPU model: say which.
            where = f" ({' '.join(cpu.split()[:2])}, {result['context']['measured_at'][:10]})" \
                if cpu else ""
            axis.plot([d["day_index"] for d in days], [d[key] for d in days], style,
                      label=(f"{label}, {learner}" if learner else label) + where)
        axis.set_xlabel("day trained (chain length before the step)")
        axis.set_ylabel(f"{what} (median, single-threaded)")
        axis.set_ylim(bottom=0)
        axis.set_title(f"One default-size step against chain length: {title}")
        axis.grid(True, alpha=0.3)
    return _save(figure, axes, out)
