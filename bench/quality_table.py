"""The quality table: our candidates beside the handbook's published rows."""

from __future__ import annotations

#: docs/facts.md#features-and-evaluation (Le Borgne et al., chapters 3-5): AUC, AP, CP@100 on the
#: headline split,
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
          "prequential CP@100", "step wall s (mean/max)", "step CPU s",
          "checkpoint"]


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
                    f"{row['step_cpu_seconds_mean']:.2f}",
                    _size(row["checkpoint_bytes"])])
    for name, *values in HANDBOOK_ROWS:
        out.append([name, *(f"{v:.3f}" for v in values), "", "", "", "", "", ""])
    out.append(["first target", *(f">= {v:.2f}" for v in TARGETS), "", "", "", "< 2 s", "", ""])
    return out


def print_table(summary: dict, meta: dict) -> None:
    """Plain-text table on stdout."""
    table = [HEADER, *rows(summary, meta)]
    widths = [max(len(r[i].replace("**", "")) for r in table) for i in range(len(HEADER))]
    for r in table:
        print("  ".join(c.replace("**", "").ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"seeds {meta['seeds']}, {meta['days']} days, {meta['customers']} customers, "
          f"{meta['terminals']} terminals; wall {meta['wall_seconds']:.0f} s")


ENGINE_TEXT = {
    "memory": "All candidates, engine `memory`: the step's `partial_fit` sequence replayed "
              "in memory on the same features (a checkpoint round trip between days changes "
              "nothing: `tests/unit/test_model_learners.py`). Step time here is `partial_fit` "
              "alone, and its max is the largest of the per-seed means.",
    "step": "Engine `step`: the pipeline's own `trainer.step.run_step` day by day on a "
            "storage root (checkpoint load and sha256 check, features from the carried "
            "feature state (the seed-0 run below predates it: features from the cache), "
            "scoring, partial_fit, skops checkpoint, CAS commit, reports), evaluated with "
            "`trainer.evaluation.checkpoint`. Step time is the whole step.",
}


def markdown(sections: list[tuple[dict, dict]], notes: list[str] | None = None) -> str:
    """bench/QUALITY.md from one or more runs: (summary, meta) per engine."""
    lines = [
        "# Model quality",
        "",
        "Written by `python -m bench.quality` (do not edit by hand). Every learner is "
        "updated one day at a time from 2018-04-01, each day continuing from the previous "
        "day's state.",
        "",
        "Headline split: checkpoint 2018-07-31, test 2018-08-08..08-14, 7-day known window "
        "(docs/facts.md#features-and-evaluation). Prequential: mean of the four test weeks "
        "starting 08-08, 08-15, "
        "08-22, 08-29, each scored by the checkpoint 8 days before. Mean ± sd over seeds. "
        "Times: mean over the last 30 days trained (every bounded state full), measured with "
        "two runs in parallel on a 2-core machine that other jobs were also using, so wall "
        "time is inflated by them; CPU time is the fairer figure. Checkpoint: size of the "
        "2018-07-31 skops file. Hyper-parameters were chosen on the validation weeks "
        "07-11 and 07-18 only (`python -m bench.quality_tune`).",
        "",
    ]
    for summary, meta in sections:
        lines += [
            f"## {meta['engine']} engine: seeds {meta['seeds']}",
            "",
            ENGINE_TEXT[meta["engine"]] + f" {meta['days']} days, {meta['customers']:,} "
            f"customers, {meta['terminals']:,} terminals; whole run "
            f"{meta['wall_seconds'] / 60:.1f} min wall.",
            "",
            "| " + " | ".join(HEADER) + " |",
            "|" + "---|" * len(HEADER),
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows(summary, meta)]
        lines.append("")
    lines += [f"- {note}" for note in notes or []]
    return "\n".join(lines) + ("\n" if notes else "")
