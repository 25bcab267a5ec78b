"""What a flow run publishes: a markdown report, a metrics table, progress, and a plot.

The content is built by plain functions of a `RunSummary` and the lineage (unit-tested
without a Prefect server); `publish` turns it into Prefect artifacts of the current flow
run. The plot is a PNG written atomically to `output/plots/` on the share (matplotlib's
Agg backend: no display on a worker) and published as a link artifact, since a path on
the share is not a URL a browser can load an image from.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from uuid import UUID

from trainer.lineage import Entry, Lineage
from trainer.storage import Share, atomic_write_bytes

#: Metrics in the table and the plot: (label, path in an entry's metrics).
METRICS: list[tuple[str, tuple[str, ...]]] = [
    ("auc_roc_before_training", ("prequential", "auc_roc")),
    ("average_precision_before_training", ("prequential", "average_precision")),
    ("card_precision_at_100_before_training", ("prequential", "card_precision_at_100")),
    ("train_accuracy", ("train_accuracy",)),
    ("test_auc_roc", ("test", "auc_roc")),
]


@dataclass
class RunSummary:
    """What one flow run did, gathered as it goes; every field is JSON-ready."""

    flow: str
    """Flow name ("train", "daily-pipeline", ...)."""
    trained: list[dict] = field(default_factory=list)
    """`StepResult.to_json()` of each day trained in this run."""
    skipped: list[str] = field(default_factory=list)
    """Days handed out that were already on the chain."""
    ingested: list[dict] = field(default_factory=list)
    """Ingest entries (date, source, rows, frauds)."""
    quarantined: list[dict] = field(default_factory=list)
    """Bad files: source and reason."""
    refused: list[dict] = field(default_factory=list)
    """Changed files for days already trained: source, date, reason."""
    dead: list[dict] = field(default_factory=list)
    """Days dead-lettered in this run: date and reason."""
    queued: list[str] = field(default_factory=list)
    """Days pushed on the queue in this run."""
    notes: list[str] = field(default_factory=list)
    """Anything else the reader should know (superseded days of a replay, ...)."""
    plot: str | None = None
    """Path of the metrics plot on the share."""

    def merge(self, other: RunSummary) -> None:
        """Add another run's (a sub-flow's) lists to this one."""
        for name in ("trained", "skipped", "ingested", "quarantined", "refused", "dead",
                     "queued", "notes"):
            getattr(self, name).extend(getattr(other, name))
        self.plot = other.plot or self.plot

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RunSummary:
        return cls(**data)


def _metric(entry_metrics: dict, path: tuple[str, ...]) -> float | None:
    value: object = entry_metrics
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return round(float(value), 5) if isinstance(value, int | float) else None


def metrics_rows(chain: list[Entry], trained_now: set[str] | None = None) -> list[dict]:
    """One row per day of the active chain: date, counts, gap and the METRICS."""
    trained_now = trained_now or set()
    rows = []
    for entry in chain:
        row: dict = {"date": entry.date,
                     "transactions": entry.metrics.get("transactions"),
                     "frauds": entry.metrics.get("frauds"),
                     "gap_days": entry.gap_days}
        for label, path in METRICS:
            row[label] = _metric(entry.metrics, path)
        row["trained_in_this_run"] = entry.date in trained_now
        rows.append(row)
    return rows


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_report(summary: RunSummary, lineage: Lineage) -> str:
    """The run's report: what was trained, quarantined, refused, dead, and the metrics."""
    chain = lineage.chain()
    head = chain[-1] if chain else None
    lines = [f"# fraudpipe {summary.flow} run", ""]
    lines.append(f"- datasets ingested: **{len(summary.ingested)}**, quarantined: "
                 f"**{len(summary.quarantined)}**, refused: **{len(summary.refused)}**")
    lines.append(f"- datasets trained: **{len(summary.trained)}**, already trained: "
                 f"**{len(summary.skipped)}**, dead-lettered: **{len(summary.dead)}**")
    lines.append(f"- chain: {len(chain)} day(s), head "
                 + (f"{head.date} (`{head.sha256[:12]}`)" if head else "none"))
    if summary.plot:
        lines.append(f"- metrics plot: `{summary.plot}`")
    lines.append("")
    if summary.dead:
        lines += ["## Dead-lettered (not trained)", "", "| date | error |", "|---|---|"]
        lines += [f"| {d['date']} | {_fmt(d['reason'])} |" for d in summary.dead]
        lines.append("")
    if summary.quarantined:
        lines += ["## Quarantined files", "", "| file | reason |", "|---|---|"]
        lines += [f"| {Path(q['source']).name} | {_fmt(q['reason'])} |"
                  for q in summary.quarantined]
        lines.append("")
    if summary.refused:
        lines += ["## Refused files", "", "| file | reason |", "|---|---|"]
        lines += [f"| {Path(r['source']).name} | {_fmt(r['reason'])} |" for r in summary.refused]
        lines.append("")
    if summary.trained:
        lines += ["## Trained in this run", "",
                  "| date | seconds | transactions | frauds | AUC before training | "
                  "AP before training | CP@100 before training | gap days |",
                  "|---|---|---|---|---|---|---|---|"]
        for step in summary.trained:
            m = step.get("metrics") or {}
            pre = m.get("prequential") or {}
            lines.append(
                f"| {step['date']} | {step.get('seconds', 0):.2f} | {m.get('transactions')} "
                f"| {m.get('frauds')} | {_fmt(pre.get('auc_roc'))} "
                f"| {_fmt(pre.get('average_precision'))} "
                f"| {_fmt(pre.get('card_precision_at_100'))} | {step.get('gap_days', 0)} |")
        lines.append("")
    if summary.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in summary.notes] + [""]
    return "\n".join(lines)


def plot_path(share: Share, flow: str, when: dt.datetime | None = None) -> Path:
    """`output/plots/<flow>-<UTC timestamp>.png` on the share."""
    when = when or dt.datetime.now(dt.timezone.utc)
    slug = re.sub(r"[^a-z0-9-]+", "-", flow.lower())
    return share.output_dir / "plots" / f"{slug}-{when.strftime('%Y%m%dT%H%M%S%fZ')}.png"


def write_metrics_plot(share: Share, chain: list[Entry], destination: Path) -> Path | None:
    """Plot the METRICS of the chain over time into a PNG; None if the chain is empty."""
    if not chain:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on workers and in tests
    from matplotlib.figure import Figure

    # A Figure, not pyplot: no global state shared between flow runs in one process.
    figure = Figure(figsize=(9, 4.5), dpi=100)
    axes = figure.subplots()
    days = [entry.day for entry in chain]
    for label, path in METRICS:
        values = [_metric(entry.metrics, path) for entry in chain]
        if any(v is not None for v in values):
            points = [float("nan") if v is None else v for v in values]
            axes.plot(days, points, marker="o", markersize=3, label=label)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("dataset date")
    axes.set_title(f"fraudpipe metrics per day ({len(chain)} days, head {chain[-1].date})")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="lower left")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(destination, buffer.getvalue())
    return destination


def artifact_key(flow: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes): `fraudpipe-<flow>-<what>`."""
    return re.sub(r"[^a-z0-9-]+", "-", f"fraudpipe-{flow}-{what}".lower()).strip("-")


def publish(summary: RunSummary, share: Share) -> dict[str, UUID]:
    """Write the plot and create the report, table and plot-link artifacts of this run.

    Must be called inside a flow run. Returns the artifact ids by kind.
    """
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    lineage = Lineage.load(share)
    chain = lineage.chain()
    plot = write_metrics_plot(share, chain, plot_path(share, summary.flow))
    summary.plot = str(plot) if plot else None
    ids = {
        "report": create_markdown_artifact(
            markdown=markdown_report(summary, lineage), key=artifact_key(summary.flow, "report"),
            description=f"fraudpipe {summary.flow}: datasets trained, quarantined, metrics"),
        "table": create_table_artifact(
            table=metrics_rows(chain, {s["date"] for s in summary.trained}),
            key=artifact_key(summary.flow, "metrics"),
            description="per-day metrics of the active chain (scores before training on "
                        "the day, train accuracy, testing set AUC)"),
    }
    if plot is not None:
        ids["plot"] = create_link_artifact(
            link=plot.as_uri(), link_text=f"metrics plot ({plot.name})",
            key=artifact_key(summary.flow, "plot"),
            description=f"PNG of the per-day metrics on the share: {plot}")
    return ids


class Progress:
    """A progress artifact of the current flow run, updated after each step."""

    def __init__(self, flow: str, total: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self.total, self.done = max(total, 0), 0
        self.artifact_id = create_progress_artifact(
            progress=0.0 if self.total else 100.0, key=artifact_key(flow, "progress"),
            description=f"{flow}: 0 of {self.total} dataset(s) done")

    def step(self, what: str) -> float:
        """Count one dataset done (trained, skipped or dead); returns the percentage."""
        from prefect.artifacts import update_progress_artifact

        self.done += 1
        self.total = max(self.total, self.done)
        percent = round(100.0 * self.done / self.total, 1)
        update_progress_artifact(self.artifact_id, percent,
                                 description=f"{self.done} of {self.total} done; last: {what}")
        return percent

    def finish(self) -> None:
        """Mark 100 % (the queue may have had fewer items than expected)."""
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(self.artifact_id, 100.0,
                                 description=f"{self.done} of {self.total} done")
