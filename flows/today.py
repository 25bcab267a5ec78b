"""What the fraud team does today: the headline of a run and the day's alerts.

"Today" is the head day of the chain after the run. Its scores and metrics come from the
model as it was before it trained on that day (the step scores a day, then trains on
it), so they are what the team would have been handed that morning: the alerts table
is that ranking, and the metrics say how good it was once the day's labels were known.
When days arrive without labels, "today" is the latest day the run scored on arrival
(`arrival_headline`): its alerts come from the head model before any label is known,
and the headline says which days still wait for their labels.
Plain functions of a `RunSummary` and the lineage, unit-tested without a Prefect server.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.evaluation.scoring import TOP_CARDS
from trainer.report import card_alerts
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage

if TYPE_CHECKING:  # flows.artifacts builds the headline with these functions
    from flows.summary import RunSummary

#: Cards named in the headline itself; the alerts table has all ranked cards.
HEADLINE_CARDS = 5
#: Transactions of the day shown under each of those cards (the alerts table has them all).
HEADLINE_TRANSACTIONS = 8

#: (label, key in `metrics["prequential"]`, what it means; {value} and {rate} filled in).
MEANINGS: list[tuple[str, str, str]] = [
    ("ROC AUC", "auc_roc",
     "the chance that a random fraudulent transaction of the day scored above a random "
     "genuine one (0.5 is guessing, 1 is perfect)"),
    ("Average precision", "average_precision",
     "precision averaged down the day's ranking of transactions; scoring at random "
     "gets the fraud rate, {rate}"),
    ("Card Precision@100", "card_precision_at_100",
     "the share of the 100 highest-ranked cards that really had a fraud that day: "
     "about {cards} of 100 cards checked"),
]


def head_alerts(share: Share, lineage: Lineage, limit: int = TOP_CARDS) -> list[dict]:
    """The head day's alerts (`trainer.report.card_alerts`); [] on the chain's first day."""
    head = lineage.head_entry
    if head is None or "prequential" not in head.metrics:
        return []
    return card_alerts(share, head.date, limit)


def todays_alerts(share: Share, summary: RunSummary, lineage: Lineage) -> list[dict]:
    """Today's alerts: the latest day scored on arrival in this run, else the head's.

    The head day's alerts only when this run trained it; otherwise none.
    """
    if summary.scored:
        return card_alerts(share, dt.date.fromisoformat(summary.scored[-1].date))
    return head_alerts(share, lineage) if summary.trained else []


def alerts_table(alerts: list[dict]) -> list[dict]:
    """The alerts as the table artifact shows them: one row per card, best rank first.

    Each row: rank, card, highest score, why (the reasons of the card's top score), how
    the score splits between the booster (what the reasons explain) and the MLP, the
    card's transactions of the day (time, id, terminal, amount, score), their count and
    total amount, and the day. The scores file is named once, in the table's description.
    """
    rows = []
    for alert in alerts:
        row = {"rank": alert["rank"], "card_id": alert["card_id"],
               "highest_score": alert["highest_score"], "why": alert.get("reasons", "")}
        if "score_from_booster" in alert:
            row["score_split"] = (f"{alert['score_from_booster']:.3f} booster + "
                                  f"{alert['score_from_others']:.3f} MLP")
        row["transactions_of_the_day"] = "; ".join(
            f"{t['time']} tx {t['transaction_id']} terminal {t['terminal_id']} "
            f"{t['amount']:.2f} ({t['score']:.3f})" for t in alert.get("transaction_list", []))
        row.update({"transactions": alert["transactions"], "total_amount": alert["amount"],
                    "date": alert["date"]})
        rows.append(row)
    return rows


#: Lists shown in the headline's "last lists" section; the outcomes table has them all.
LAST_LISTS = 7


def outcomes_table(outcomes: list[dict]) -> list[dict]:
    """The outcomes table artifact: one row per labelled day's list, newest first."""
    return [{"date": o["date"], "checked": o["checked"], "confirmed_fraud": o["confirmed"],
             "hit_rate": o["hit_rate"], "fraudulent_cards": o["fraud_cards"],
             "missed_by_the_list": o["missed"], "scored": o["scored_by"]}
            for o in reversed(outcomes)]


def outcomes_markdown(outcomes: list[dict], outcomes_key: str) -> str:
    """The headline's "last lists" section: the latest lists' outcomes and the trend."""
    if not outcomes:
        return ("\n## Last lists\n\nNo list has its labels yet: a day's outcome (cards "
                "confirmed among those checked, frauds missed) comes once its labels do.\n")
    recent = outcomes[-LAST_LISTS:]
    lines = ["", "## Last lists", "",
             f"Once a day's labels came: of the cards checked, how many had a fraud; and how "
             f"many fraudulent cards the list missed (all of them: `{outcomes_key}` table).",
             "", "| day | checked | confirmed fraud | hit rate | fraudulent cards | missed |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {o['date']} | {o['checked']} | {o['confirmed']} | "
              f"{_percent(o['hit_rate'])} | {o['fraud_cards']} | {o['missed']} |"
              for o in reversed(recent)]
    rates = [o["hit_rate"] for o in outcomes if o["hit_rate"] is not None]
    if len(rates) >= 2:
        week = rates[-7:]
        before = rates[-14:-7]
        trend = (f"; the 7 lists before: {_percent(sum(before) / len(before))}"
                 if before else "")
        spark = " ".join(f"{100 * r:.0f}" for r in rates[-14:])
        lines += ["", f"Hit-rate trend (%, oldest first): {spark}. Mean of the last "
                      f"{len(week)} list(s): {_percent(sum(week) / len(week))}{trend}."]
    return "\n".join(lines) + "\n"


def _capacity_line(summary: RunSummary, alerts: list[dict]) -> str:
    """What the review capacity means for today's list."""
    line = (f"The team checks **{summary.review_capacity} cards a day** (the run's "
            f"`review_capacity`): the list is the {summary.review_capacity} cards with the "
            f"highest scores")
    if len(alerts) < summary.review_capacity:
        line += f"; only {len(alerts)} card(s) transacted today, all listed"
    return line + "."


def _why_lines(alerts: list[dict]) -> list[str]:
    """The headline's top cards, each with the reasons of its top score and its transactions."""
    if not any(a.get("reasons") for a in alerts):
        return []
    lines = ["## Why the top cards are on the list", ""]
    for a in alerts[:HEADLINE_CARDS]:
        split = (f"; booster {a['score_from_booster']:.3f} + MLP {a['score_from_others']:.3f}"
                 if "score_from_booster" in a else "")
        mostly_mlp = ("; mostly the MLP's score, which the reasons do not explain"
                      if a.get("score_from_others", 0) > a.get("score_from_booster", 1) else "")
        lines.append(f"- **#{a['rank']} card {a['card_id']}** (score {a['highest_score']:.3f}"
                     f"{split}{mostly_mlp}): "
                     f"{a.get('reasons') or 'no reason above the booster baseline'}")
        listed = a.get("transaction_list", [])
        lines += [f"    - {t['time']} transaction {t['transaction_id']}, terminal "
                  f"{t['terminal_id']}, amount {t['amount']:.2f}, score {t['score']:.3f}"
                  for t in listed[:HEADLINE_TRANSACTIONS]]
        if len(listed) > HEADLINE_TRANSACTIONS:
            lines.append(f"    - ... {len(listed) - HEADLINE_TRANSACTIONS} more in the alerts "
                         f"table")
    lines += ["", "Under each card, its transactions of the day. The reasons are the inputs "
              "that raised the booster's part of the score most (its own contributions, "
              "LightGBM TreeSHAP); the MLP's part is not split by input.", ""]
    return lines


def _num(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def _rate(entry: Entry) -> float | None:
    transactions, frauds = entry.metrics.get("transactions"), entry.metrics.get("frauds")
    return frauds / transactions if transactions and frauds is not None else None


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.2f} %"


def _days(dates: list[str]) -> str:
    if len(dates) <= 4:
        return ", ".join(dates)
    return f"{dates[0]} .. {dates[-1]}"


def _previous_head(chain: list[Entry], trained: set[str]) -> Entry | None:
    """The head before this run: the chain entry just before the first day trained now."""
    for index, entry in enumerate(chain):
        if entry.date.isoformat() in trained:
            return chain[index - 1] if index else None
    return None


def _what_arrived(summary: RunSummary) -> str:
    return (f"files ingested {len(summary.ingested)}, quarantined {len(summary.quarantined)}, "
            f"refused {len(summary.refused)}; days dead-lettered {len(summary.dead)}")


def _changes(summary: RunSummary, chain: list[Entry], head: Entry) -> list[str]:
    trained = [s.date for s in summary.trained]
    previous = _previous_head(chain, set(trained))
    lines = []
    if previous is None:
        lines.append(f"- first run of this chain: it starts at {chain[0].date}")
    else:
        lines.append(f"- head moved {previous.date} -> {head.date} "
                     f"(+{len(trained)} day(s) trained)")
        before = previous.metrics.get("prequential") or {}
        now = head.metrics.get("prequential") or {}
        for label, key, _ in MEANINGS:
            old, new = before.get(key), now.get(key)
            delta = f" ({new - old:+.3f})" if old is not None and new is not None else ""
            lines.append(f"- {label}: {_num(old)} on {previous.date} -> {_num(new)} on "
                         f"{head.date}{delta}")
        lines.append(f"- fraud rate: {_percent(_rate(previous))} -> {_percent(_rate(head))}")
    gaps = [e for e in chain if e.date.isoformat() in trained and e.gap_days]
    lines += [f"- {e.gap_days} day(s) missing before {e.date} (a gap in the chain)" for e in gaps]
    lines.append(f"- {_what_arrived(summary)}")
    return lines


def _nothing_trained(summary: RunSummary, head: Entry | None, alerts_key: str) -> list[str]:
    arrived = summary.ingested or summary.quarantined or summary.refused or summary.dead
    lines = ["**No new files: nothing was trained in this run.**" if not arrived else
             f"**Nothing was trained in this run** ({_what_arrived(summary)}; see the report).",
             "", "No new alerts, metrics or plot were written by this run."]
    if head is None:
        return lines
    if "prequential" in head.metrics:
        where = f"; its alerts are still in the `{alerts_key}` artifact of the run that trained it"
    else:
        where = " (the chain's first day: no alerts)"
    lines.append(f"The head is still {head.date} (learner `{head.learner}`){where}.")
    return lines


def headline_markdown(summary: RunSummary, lineage: Lineage, alerts: list[dict], *,
                      alerts_key: str, alerts_error: str | None = None) -> str:
    """The run's headline: what to do today, how good today's ranking was, what changed.

    Args:
        summary: what the run did.
        lineage: the lineage after the run.
        alerts: the head day's alerts (`head_alerts`), best rank first.
        alerts_key: the key of the run's alerts table artifact, to point at.
        alerts_error: why the alerts could not be read, if they could not.
    """
    if summary.scored or summary.unscored:
        text = arrival_headline(summary, lineage, alerts, alerts_key=alerts_key,
                                alerts_error=alerts_error)
    else:
        text = _training_headline(summary, lineage, alerts, alerts_key=alerts_key,
                                  alerts_error=alerts_error)
    return _with_label_notice(text.rstrip("\n") + "\n\n" + serving_head_line(lineage) + "\n",
                              summary)


def serving_head_line(lineage: Lineage) -> str:
    """Which checkpoint `fraudpipe serve` loads now: the lineage's head, as it verifies it."""
    head = lineage.head_entry
    if head is None:
        return "Serving head: none yet (`fraudpipe serve` stays unready until a day is trained)."
    return (f"Serving head: `fraudpipe serve` scores with the checkpoint of **{head.date}** "
            f"(`{head.checkpoint}`, sha256 `{head.sha256[:12]}`); a running service loads it "
            f"within its reload interval.")


def _with_label_notice(text: str, summary: RunSummary) -> str:
    """`text` with the unresolved label problems and late labels right under its title."""
    notice = []
    if summary.label_problems:
        notice += [f"**{len(summary.label_problems)} unresolved label problem(s): the days "
                   f"they name wait until each is resolved** (withdraw the wrong file with "
                   f"`fraudpipe labels --withdraw NAME`, or deliver it again corrected):", ""]
        notice += [f"- {p}" for p in summary.label_problems[:10]]
        if len(summary.label_problems) > 10:
            notice.append(f"- ... and {len(summary.label_problems) - 10} more")
        notice.append("")
    if summary.late_labels:
        notice += [f"**{summary.late_labels}**: the model was trained without them; "
                   f"`fraudpipe relabel` (or the parameter `apply_late_labels`) applies them "
                   f"and retrains from the first.", ""]
    for entry in summary.ingested:
        gone = entry.labels_for_missing_ids
        if gone:
            notice += [f"**{len(gone)} label(s) name transaction(s) no longer in "
                       f"{entry.date}** (replaced from {Path(entry.source).name}): "
                       f"{', '.join(gone[:5])}{' ...' if len(gone) > 5 else ''}; kept, "
                       f"listed by `fraudpipe days`.", ""]
    if not notice:
        return text
    title, _, rest = text.partition("\n\n")
    return "\n\n".join([title, "\n".join(notice).rstrip("\n"), rest])


def _training_headline(summary: RunSummary, lineage: Lineage, alerts: list[dict], *,
                       alerts_key: str, alerts_error: str | None = None) -> str:
    chain = lineage.chain()
    head = chain[-1] if chain else None
    if not summary.trained or head is None:
        title = f"# fraudpipe {summary.flow}: nothing trained"
        return "\n".join([title, "", *_nothing_trained(summary, head, alerts_key)]) + "\n"
    trained = [s.date for s in summary.trained]
    rate = _rate(head)
    lines = [f"# fraudpipe {summary.flow}: today is {head.date}", ""]
    if alerts:
        top = ", ".join(f"card {a['card_id']} ({a['highest_score']:.3f})"
                        for a in alerts[:HEADLINE_CARDS])
        lines += [f"**What to do today: check the {len(alerts)} cards of the `{alerts_key}` "
                  f"table, highest score first.** Top {min(HEADLINE_CARDS, len(alerts))}: "
                  f"{top}.", "", _capacity_line(summary, alerts), "", *_why_lines(alerts)]
    elif alerts_error:
        lines += [f"**No alerts table: {alerts_error}**", ""]
    else:
        lines += [f"**No alerts for {head.date}**: it is the chain's first day, and there was "
                  f"no model before it to score it.", ""]
    if summary.dead:
        lines += [f"**Warning: {len(summary.dead)} day(s) dead-lettered, not trained: "
                  f"{', '.join(d.date for d in summary.dead)}** (see the report).", ""]
    lines += [f"- days trained in this run: **{len(trained)}** ({_days(trained)})",
              f"- head day: **{head.date}**, learner `{head.learner}`, chain of {len(chain)} "
              f"day(s)",
              f"- fraud rate on {head.date}: **{_percent(rate)}** ({head.metrics.get('frauds')} "
              f"fraudulent of {head.metrics.get('transactions')} transactions)", ""]
    prequential = head.metrics.get("prequential")
    if prequential:
        lines += [f"## How good today's ranking was ({head.date})", "",
                  f"Scored by the model **before** it trained on {head.date} (prequential): the "
                  f"ranking of the alerts, on transactions it had not seen, checked against "
                  f"the day's labels:", ""]
        for label, key, meaning in MEANINGS:
            value = prequential.get(key)
            cards = round(100 * value) if isinstance(value, int | float) else "n/a"
            lines.append(f"- **{label} {_num(value)}**: "
                         f"{meaning.format(rate=_percent(rate), cards=cards)}")
        lines.append("")
    lines += ["## Since the previous run", "", *_changes(summary, chain, head), ""]
    return "\n".join(lines)


def arrival_headline(summary: RunSummary, lineage: Lineage, alerts: list[dict], *,
                     alerts_key: str, alerts_error: str | None = None) -> str:
    """The headline of a run that scored days on arrival, or found no model to score them.

    Args:
        summary: what the run did (its `scored` or `unscored` days are not empty).
        lineage: the lineage after the run.
        alerts: the latest scored day's alerts (`todays_alerts`).
        alerts_key: the key of the run's alerts table artifact.
        alerts_error: why the alerts could not be read, if they could not.
    """
    chain = lineage.chain()
    if summary.scored:
        latest = summary.scored[-1]
        by = latest.scored_by
        lines = [f"# fraudpipe {summary.flow}: today is {latest.date} (scored on arrival)",
                 ""]
        if alerts:
            top = ", ".join(f"card {a['card_id']} ({a['highest_score']:.3f})"
                            for a in alerts[:HEADLINE_CARDS])
            lines.append(f"**What to do today: check the {len(alerts)} cards of the "
                         f"`{alerts_key}` table, highest score first.** Top "
                         f"{min(HEADLINE_CARDS, len(alerts))}: {top}.")
            lines += ["", _capacity_line(summary, alerts)]
        else:
            lines.append(f"**No alerts table: {alerts_error or 'no card ranked'}**")
        lines += ["", f"Scored on arrival by the model trained through {by.trained_through} "
                      f"(`{by.checkpoint}`, sha256 `{by.sha256[:12]}`): the day's labels "
                      f"are not known yet, so there are no metrics for it.", ""]
        lines += _why_lines(alerts)
    else:
        lines = [f"# fraudpipe {summary.flow}: no model yet to score today's transactions", "",
                 f"**No alerts: nothing is trained yet.** {len(summary.unscored)} arrived "
                 f"day(s) ({_days(summary.unscored)}) will be scored once the first day is "
                 f"trained, which needs its labels (or the N-day rule).", ""]
    lines.append(f"- scored on arrival in this run: "
                 f"{_days([s.date for s in summary.scored]) or 'none'}")
    lines.append(f"- waiting for labels: {_days(summary.awaiting) or 'none'}")
    received = sum(d.new for d in summary.labels)
    lines.append(f"- labels received in this run: {received} new for "
                 f"{len(summary.labels)} day(s); not applied: {len(summary.labels_unknown)}")
    lines += [f"- labels complete for {d.date} ({d.how}): {d.labels} label(s), "
              f"{d.frauds} fraud(s)" for d in summary.completed]
    trained = [s.date for s in summary.trained]
    lines.append(f"- days trained in this run: **{len(trained)}**"
                 + (f" ({_days(trained)})" if trained else ""))
    if chain:
        lines.append(f"- head day: **{chain[-1].date}**, learner `{chain[-1].learner}`, "
                     f"chain of {len(chain)} day(s)")
    if summary.dead:
        lines.append(f"- **dead-lettered: {', '.join(d.date for d in summary.dead)}** "
                     f"(see the report)")
    lines.append(f"- {_what_arrived(summary)}")
    return "\n".join(lines) + "\n"
