"""What a flow run publishes: a headline, alerts, a report, a metrics table, a plot, progress.

The content is built by plain functions of a `RunSummary` and the share
(`build_artifacts`, unit-tested without a Prefect server); `publish` turns it into
Prefect artifacts of the current flow run. The headline and the alerts (what the fraud
team does today) are built in `flows/today.py`. The plot is drawn with matplotlib's Agg
backend (no display on a worker), written atomically to `output/plots/` on the share and
shown inline in the UI as markdown with a `data:` URI: a path on the share is not a URL a
browser can load. A run that trained nothing writes no plot and publishes no alerts; its
headline says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flows.summary import RunSummary
from flows.today import (
    alerts_table,
    headline_markdown,
    outcomes_markdown,
    outcomes_table,
    todays_alerts,
)
from trainer.days import day_states
from trainer.errors import FraudpipeError
from trainer.outcomes import record_outcomes
from trainer.share.files import atomic_write_bytes
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn, not with the flows
    from matplotlib.figure import Figure

#: Metrics in the table and the plot: (label, path in an entry's metrics). Not the train
#: accuracy: near 1 at a 0.6 % fraud rate whatever the model does, it says nothing and
#: squashes the plot's scale.
METRICS: list[tuple[str, tuple[str, ...]]] = [
    ("auc_roc_before_training", ("prequential", "auc_roc")),
    ("average_precision_before_training", ("prequential", "average_precision")),
    ("card_precision_at_100_before_training", ("prequential", "card_precision_at_100")),
    ("test_auc_roc", ("test", "auc_roc")),
]


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
        row: dict = {"date": entry.date.isoformat(),
                     "transactions": entry.metrics.get("transactions"),
                     "frauds": entry.metrics.get("frauds"),
                     "gap_days": entry.gap_days}
        for label, path in METRICS:
            row[label] = _metric(entry.metrics, path)
        row["trained_in_this_run"] = entry.date.isoformat() in trained_now
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
    if not summary.trained:
        lines.append("- nothing trained in this run: no new checkpoint, scores or plot")
    lines.append("")
    if summary.dead:
        lines += ["## Dead-lettered (not trained)", "", "| date | error |", "|---|---|"]
        lines += [f"| {d.date} | {_fmt(d.reason)} |" for d in summary.dead]
        lines.append("")
    if summary.quarantined:
        lines += ["## Quarantined files", "", "| file | reason |", "|---|---|"]
        lines += [f"| {Path(q.source).name} | {_fmt(q.reason)} |"
                  for q in summary.quarantined]
        lines.append("")
    if summary.refused:
        lines += ["## Refused files", "", "| file | reason |", "|---|---|"]
        lines += [f"| {Path(r.source).name} | {_fmt(r.reason)} |" for r in summary.refused]
        lines.append("")
    if summary.trained:
        lines += ["## Trained in this run", "",
                  "| date | seconds | transactions | frauds | AUC before training | "
                  "AP before training | CP@100 before training | gap days |",
                  "|---|---|---|---|---|---|---|---|"]
        for step in summary.trained:
            m, pre = step.metrics, step.prequential
            lines.append(
                f"| {step.date} | {step.seconds:.2f} | {m.get('transactions')} "
                f"| {m.get('frauds')} | {_fmt(pre.get('auc_roc'))} "
                f"| {_fmt(pre.get('average_precision'))} "
                f"| {_fmt(pre.get('card_precision_at_100'))} | {step.gap_days} |")
        lines.append("")
    if summary.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in summary.notes] + [""]
    return "\n".join(lines)


def plot_path(share: Share, flow: str, when: dt.datetime | None = None) -> Path:
    """`output/plots/<flow>-<UTC timestamp>.png` on the share."""
    when = when or dt.datetime.now(dt.UTC)
    slug = re.sub(r"[^a-z0-9-]+", "-", flow.lower())
    return share.output_dir / "plots" / f"{slug}-{when.strftime('%Y%m%dT%H%M%S%fZ')}.png"


def metrics_png(chain: list[Entry]) -> bytes | None:
    """A PNG of the METRICS of the chain over time; None if the chain is empty."""
    if not chain:
        return None
    buffer = io.BytesIO()
    metrics_figure(chain).savefig(buffer, format="png")
    return buffer.getvalue()


def metrics_figure(chain: list[Entry]) -> Figure:
    """The figure `metrics_png` renders: the METRICS of a non-empty chain, one line each."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers and in tests
    from matplotlib import dates
    from matplotlib.figure import Figure

    # A Figure, not pyplot: no global state shared between flow runs in one process.
    figure = Figure(figsize=(9, 4.5), dpi=100, layout="constrained")
    axes = figure.subplots()
    days = [entry.date for entry in chain]
    for label, path in METRICS:
        values = [_metric(entry.metrics, path) for entry in chain]
        if any(v is not None for v in values):
            points = [float("nan") if v is None else v for v in values]
            # matplotlib converts dates at run time; its stubs only name numbers and strings
            axes.plot(days, points, marker="o", markersize=3,  # type: ignore[arg-type]
                      label=label.replace("_", " "))
    axes.set_ylim(-0.02, 1.02)
    # The chain's days, half a day either side: where a line has one point, matplotlib's
    # autoscale would widen the axis to +-2 years (DateLocator.nonsingular), drawing
    # ~1,600 day ticks (~12 s of CPU) on an axis that hides the points.
    half_day = dt.timedelta(hours=12)
    first, last = (dt.datetime.combine(day, dt.time()) for day in (days[0], days[-1]))
    axes.set_xlim(first - half_day, last + half_day)  # type: ignore[arg-type]
    # One tick a day (at most about ten): the default locator puts hours between two days.
    axes.xaxis.set_major_locator(dates.DayLocator(interval=max(1, len(chain) // 10)))
    axes.xaxis.set_major_formatter(dates.DateFormatter("%Y-%m-%d"))
    axes.set_xlabel("dataset date")
    axes.set_ylabel("metric value (0 to 1, higher is better)")
    axes.set_title(f"fraudpipe metrics per day ({len(chain)} days, head {chain[-1].date})")
    axes.grid(alpha=0.3)
    # Beside the plot, not over it: low lines (CP@100) would hide behind a legend inside.
    figure.legend(loc="outside right upper", fontsize="small")
    figure.autofmt_xdate()
    return figure


def write_metrics_plot(share: Share, chain: list[Entry], destination: Path) -> Path | None:
    """Write `metrics_png` of the chain atomically to `destination`; None if the chain is empty."""
    png = metrics_png(chain)
    if png is None:
        return None
    atomic_write_bytes(destination, png)
    return destination


def plot_markdown(png: bytes, path: Path, chain: list[Entry]) -> str:
    """The plot inline: markdown with the PNG as a `data:` URI, and where it is on the share."""
    encoded = base64.b64encode(png).decode("ascii")
    test = any(_metric(entry.metrics, ("test", "auc_roc")) is not None for entry in chain)
    caption = ("Per day: ROC AUC, average precision and Card Precision@100 of the day scored "
               "before training on it" + (", and the testing set's ROC AUC after it" if test
                                          else " (no testing set ingested: no test line)"))
    return (f"![fraudpipe metrics per day, head {chain[-1].date}]"
            f"(data:image/png;base64,{encoded})\n\n{caption}.\n\n"
            f"PNG on the share: `{path}`\n")


@dataclass
class RunArtifacts:
    """The content of a run's artifacts, ready for Prefect."""

    headline: str
    """What to do today, how good today's ranking was, what changed (`flows/today.py`)."""
    report: str
    """Everything the run did (`markdown_report`)."""
    metrics: list[dict]
    """`metrics_rows` of the active chain."""
    alerts: list[dict]
    """Today's top cards: of the latest day scored on arrival in this run, else of the
    head day if this run trained it; else empty (no artifact)."""
    plot: str | None
    """`plot_markdown`, if this run trained anything; else None (no artifact, no PNG)."""
    outcomes: list[dict] = field(default_factory=list)
    """The outcome of every past list whose day is labelled (`trainer.outcomes`)."""
    days: list[dict] = field(default_factory=list)
    """Each day on the share, newest first: arrived, labels, scored by, trained
    (`trainer.days.day_states`); published when some day arrived without labels."""


def build_artifacts(summary: RunSummary, share: Share, when: dt.datetime | None = None, *,
                    lineage: Lineage | None = None,
                    manifest: dict | None = None) -> RunArtifacts:
    """Build the run's artifacts; write the plot PNG if (and only if) the run trained a day.

    Sets `summary.plot` to the PNG's path, or None when nothing was written. `lineage` and
    `manifest`: the record after the run, if the caller read it (default: read here).
    """
    lineage = Lineage.load(share) if lineage is None else lineage
    chain = lineage.chain()
    png = metrics_png(chain) if summary.trained else None
    plot = None
    summary.plot = None
    if png is not None:
        destination = plot_path(share, summary.flow, when)
        atomic_write_bytes(destination, png)
        summary.plot = str(destination)
        plot = plot_markdown(png, destination, chain)
    alerts, alerts_error = [], None
    try:
        alerts = todays_alerts(share, summary, lineage)[:summary.review_capacity]
    except FraudpipeError as exc:  # training is done; say why instead of failing the run
        alerts_error = str(exc)
    outcomes = record_outcomes(share, summary.review_capacity)
    headline = headline_markdown(summary, lineage, alerts, alerts_key=artifact_key(
        summary.flow, "alerts"), alerts_error=alerts_error)
    headline += outcomes_markdown(outcomes, artifact_key(summary.flow, "outcomes"))
    return RunArtifacts(headline=headline, report=markdown_report(summary, lineage),
                        metrics=metrics_rows(chain, {s.date for s in summary.trained}),
                        alerts=alerts, plot=plot, outcomes=outcomes,
                        days=days_table(share, lineage, manifest))


def days_table(share: Share, lineage: Lineage | None = None,
               manifest: dict | None = None) -> list[dict]:
    """`trainer.days.day_states` as a table, newest first, checkpoints by file name."""
    rows = []
    for day in reversed(day_states(share, lineage, manifest)):
        rows.append({"date": day["date"], "state": day["state"],
                     "arrived": "without labels" if day["arrived"] else "labelled",
                     "labels_received": day["labels"], "labelled_by": day["labelled_by"],
                     "scored_by": Path(day["scored_by"]).name if day["scored_by"] else None,
                     "trained": day["trained"][:12] if day["trained"] else None})
    return rows


def artifact_key(flow: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes): `fraudpipe-<flow>-<what>`."""
    return re.sub(r"[^a-z0-9-]+", "-", f"fraudpipe-{flow}-{what}".lower()).strip("-")


def publish(summary: RunSummary, share: Share, lineage: Lineage | None = None,
            manifest: dict | None = None) -> dict[str, UUID]:
    """Build the run's artifacts (`build_artifacts`) and create them on the flow run.

    Must be called inside a flow run. Returns the artifact ids by kind; "alerts" and
    "plot" only when the run trained a day. `lineage` and `manifest`: the record after
    the run, if the caller read it.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    built = build_artifacts(summary, share, lineage=lineage, manifest=manifest)
    ids: dict[str, UUID | Coroutine[Any, Any, UUID]] = {
        "headline": create_markdown_artifact(
            markdown=built.headline, key=artifact_key(summary.flow, "headline"),
            description=f"fraudpipe {summary.flow}: what to do today, how good today's "
                        f"ranking was, what changed since the previous run"),
        "report": create_markdown_artifact(
            markdown=built.report, key=artifact_key(summary.flow, "report"),
            description=f"fraudpipe {summary.flow}: datasets trained, quarantined, metrics"),
        "table": create_table_artifact(
            table=built.metrics, key=artifact_key(summary.flow, "metrics"),
            description="per-day metrics of the active chain (scores before training on "
                        "the day, testing set AUC)"),
    }
    if built.alerts:
        how = ("scored on arrival by the model trained through "
               f"{summary.scored[-1].scored_by.trained_through}, before the day's labels"
               if summary.scored else "as the model ranked them before training on the day")
        ids["alerts"] = create_table_artifact(
            table=alerts_table(built.alerts), key=artifact_key(summary.flow, "alerts"),
            description=f"cards to check on {built.alerts[0]['date']}, best rank first, "
                        f"{how}; all scores: {built.alerts[0]['scores_file']}")
    if built.outcomes:
        ids["outcomes"] = create_table_artifact(
            table=outcomes_table(built.outcomes), key=artifact_key(summary.flow, "outcomes"),
            description=f"last lists: of the first {summary.review_capacity} cards of each "
                        f"day's list, how many had a fraud once the day's labels came, and "
                        f"the fraudulent cards the list missed; newest first")
    if any(day["arrived"] == "without labels" for day in built.days):
        ids["days"] = create_table_artifact(
            table=built.days, key=artifact_key(summary.flow, "days"),
            description="the days on the share, newest first: arrived (with or without "
                        "labels), labels received, how the day was labelled, which "
                        "checkpoint scored it, trained or still waiting")
    if built.plot is not None:
        ids["plot"] = create_markdown_artifact(
            markdown=built.plot, key=artifact_key(summary.flow, "plot"),
            description="per-day metrics of the active chain, inline (PNG also on the share)")
    return {kind: _artifact_id(value) for kind, value in ids.items()}


def _artifact_id(value: UUID | Coroutine[Any, Any, UUID]) -> UUID:
    """Prefect's artifact calls return a coroutine only when awaited from async code."""
    if not isinstance(value, UUID):
        raise TypeError(f"expected an artifact id from a sync flow run, got {value!r}")
    return value


class Progress:
    """A progress artifact of the current flow run, updated after each step."""

    def __init__(self, flow: str, total: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self.total, self.done = max(total, 0), 0
        self.artifact_id = _artifact_id(create_progress_artifact(
            progress=0.0 if self.total else 100.0, key=artifact_key(flow, "progress"),
            description=f"{flow}: 0 of {self.total} dataset(s) done"))

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
