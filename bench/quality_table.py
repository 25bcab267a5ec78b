"""The quality table: our candidates beside the handbook's published rows."""

from __future__ import annotations

#: FACTS section 3 (Le Borgne et al., chapters 3-5): AUC, AP, CP@100 on the headline split,
#: batch models trained on the week 2018-07-25..07-31.
HANDBOOK_ROWS = [
    ("handbook: logistic regression", 0.871, 0.606, 0.291),
    ("handbook: random forest", 0.867, 0.658, 0.287),
    ("handbook: XGBoost", 0.862, 0.639, 0.273),
    ("handbook: depth-2 tree", 0.763, 0.496, 0.241),
    ("handbook: random", 0.5, 0.007, 0.017),
    ("handbook best anywhere (prequential, tuned)", 0.879, 0.687, 0.305),
]
TARGETS = (0.88, 0.70, 0.31)
METRICS = ("auc_roc", "average_precision", "card_precision_at_100")
HEADER = ["learner", "ROC AUC", "AP", "CP@100", "prequential AUC", "prequential AP",
          "prequential CP@100", "step s/day (mean/max)", "checkpoint"]


def _pm(pair) -> str:
    mean, sd = pair
    return f"{mean:.3f} ± {sd:.3f}"


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def rows(summary: dict, meta: dict) -> list[list[str]]:
    """Table rows: candidates (best headline AP first), then the handbook's."""
    out = []
    order = sorted(summary, key=lambda n: -summary[n]["average_precision"][0])
    for name in order:
        row = summary[name]
        label = f"**{name}** (default)" if name == meta.get("default_learner") else name
        out.append([label, *(_pm(row[m]) for m in METRICS),
                    *(_pm(row[f"prequential_{m}"]) for m in METRICS),
                    f"{row['step_seconds_mean']:.2f} / {row['step_seconds_max']:.2f}",
                    _size(row["checkpoint_bytes"])])
    for name, *values in HANDBOOK_ROWS:
        out.append([name, *(f"{v:.3f}" for v in values), "", "", "", "", ""])
    out.append(["target (issue 8)", *(f">= {v:.2f}" for v in TARGETS), "", "", "", "< 2 s", ""])
    return out


def print_table(summary: dict, meta: dict) -> None:
    """Plain-text table on stdout."""
    table = [HEADER, *rows(summary, meta)]
    widths = [max(len(r[i].replace("**", "")) for r in table) for i in range(len(HEADER))]
    for r in table:
        print("  ".join(c.replace("**", "").ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"seeds {meta['seeds']}, {meta['days']} days, {meta['customers']} customers, "
          f"{meta['terminals']} terminals; wall {meta['wall_seconds']:.0f} s")


def markdown(summary: dict, meta: dict) -> str:
    """bench/QUALITY.md."""
    lines = [
        "# Model quality (issue 8)",
        "",
        "Written by `python -m bench.quality` (do not edit by hand). Each learner is trained "
        "by the pipeline's own step (`trainer.step.run_step`), one day at a time from "
        "2018-04-01, each day continuing from the previous checkpoint.",
        "",
        f"Seeds {meta['seeds']} of the handbook simulation ({meta['days']} days, "
        f"{meta['customers']:,} customers, {meta['terminals']:,} terminals). Mean ± sd over "
        "seeds. Headline split: checkpoint 2018-07-31, test 2018-08-08..08-14, 7-day known "
        "window (FACTS section 3). Prequential: mean of the four test weeks starting 08-08, "
        "08-15, 08-22, 08-29, each scored by the checkpoint 8 days before. Step time: wall "
        "time of `run_step` (checkpoint load, features from cache, scoring, partial_fit, "
        f"checkpoint write, commit, reports) over the last 30 days, on 2 shared cores with "
        f"{2} runs in parallel. Checkpoint: size of the 2018-07-31 skops file. Wall time of "
        f"the whole run: {meta['wall_seconds'] / 60:.1f} min.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(summary, meta)]
    lines.append("")
    return "\n".join(lines)
