"""The Prefect UI in a real browser: the schedule with its time zone, and what to do today.

Headless Chromium from Debian's `chromium` package, driven by Playwright (the pip
package only; its own browser download is never used), after a run of the demo as
`make run` runs it (tests/prefect_server.py: days arrive without labels, labels a week
later). Screenshots go to `test-output/ui/` at the repository root (git-ignored); look at
them to see what the assertions saw: the deployment with its schedule, the run's
artifacts, its headline, its alerts table and its inline metrics plot. The analyst's
views (headline, today's list with reasons and transactions, last lists, arrived days)
are saved to `docs/screenshots/`, which the README links.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api
from prefect_server import (
    DAYS,
    REPOSITORY,
    TODAY,
    TRAINED,
    DeployedPipeline,
    deployed_pipeline,
)

# One deployed pipeline (tests/prefect_server.py) for both modules: the same xdist worker.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("deployed_pipeline")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPOSITORY / "test-output" / "ui"
#: Milliseconds for the single-page app to render what it fetched.
RENDER_TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def pipeline(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> DeployedPipeline:
    return deployed_pipeline(request, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM}: no Chromium; install Debian's: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    # The team's time zone: the UI shows times in the browser's, so 06:00 reads as 06:00.
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  timezone_id="Europe/Paris")
    page = context.new_page()
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def _rows(data: object) -> list[dict]:
    """A table artifact's rows (the API returns them as a JSON string)."""
    return json.loads(data) if isinstance(data, str) else data


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _artifacts(pipeline: DeployedPipeline) -> dict[str, dict]:
    """The completed daily-pipeline run's artifacts by key, and the run as "flow_run"."""
    deployment = pipeline.api("GET", "/deployments/name/daily-pipeline/local")
    # Completed only: with the scheduler on, the deployment also has future (Scheduled) runs.
    [flow_run] = pipeline.api("POST", "/flow_runs/filter", json={"flow_runs": {
        "deployment_id": {"any_": [deployment["id"]]},
        "state": {"type": {"any_": ["COMPLETED"]}}}})
    artifacts = pipeline.api("POST", "/artifacts/filter",
                             json={"artifacts": {"flow_run_id": {"any_": [flow_run["id"]]}}})
    return {"flow_run": flow_run} | {artifact["key"]: artifact for artifact in artifacts}


@pytest.mark.timeout(900)
def test_deployment_page_shows_the_daily_schedule_with_its_time_zone(
        pipeline: DeployedPipeline, page) -> None:
    assert pipeline.returncode == 0, pipeline.output
    deployment = pipeline.api("GET", "/deployments/name/daily-pipeline/local")
    # GIVEN the deployment page of daily-pipeline/local
    page.goto(f"{pipeline.server.url}/deployments/deployment/{deployment['id']}")
    page.get_by_text("daily-pipeline", exact=False).first.wait_for()
    # THEN its schedule card names the time zone, not only on hover
    card = page.locator(".deployment-schedule-card").first
    card.get_by_text("daily 06:00 Europe/Paris", exact=True).wait_for()
    # AND the schedules section and the work pool are shown (each fetched on its own:
    # waited for, not read from the page at the moment the card appeared)
    page.get_by_text("Schedules", exact=False).first.wait_for()
    page.get_by_text("fraudpipe-process", exact=False).first.wait_for()
    assert "Europe/Paris" in page.inner_text("body")
    # AND hovering shows the cron in words with the same time zone (Prefect's own reading)
    card.get_by_text("daily 06:00 Europe/Paris", exact=True).hover()
    page.get_by_text("At 06:00 AM every day (Europe/Paris)", exact=False).first.wait_for()
    shot = _screenshot(page, "deployment-daily-pipeline")
    assert shot.stat().st_size > 10_000
    # AND the Upcoming tab lists the next runs the scheduler created, at 06:00 Paris time
    page.get_by_text("Upcoming", exact=True).first.click()
    page.get_by_text("06:00:00 AM", exact=False).first.wait_for()
    _screenshot(page, "deployment-upcoming-runs")
    # AND the schedule behind the words is prefect.yaml's: 06:00 in Paris, active
    [schedule] = deployment["schedules"]
    assert schedule["schedule"]["cron"] == "0 6 * * *"
    assert schedule["schedule"]["timezone"] == "Europe/Paris"
    assert schedule["active"] is True


@pytest.mark.timeout(900)
def test_flow_run_page_lists_the_artifacts(pipeline: DeployedPipeline, page) -> None:
    assert pipeline.returncode == 0, pipeline.output
    flow_run = _artifacts(pipeline)["flow_run"]
    # GIVEN the flow run's page (it opens on Logs), then its Artifacts tab
    page.goto(f"{pipeline.server.url}/runs/flow-run/{flow_run['id']}")
    page.get_by_text(flow_run["name"], exact=False).first.wait_for()
    page.get_by_text("Artifacts", exact=True).first.click()
    # THEN the run is Completed and its artifacts are listed, the headline among them
    page.get_by_text("Completed", exact=False).first.wait_for()
    page.get_by_text("fraudpipe-daily-pipeline-headline", exact=False).first.wait_for()
    page.get_by_text(f"{TRAINED} of {TRAINED} done", exact=False).first.wait_for()
    shot = _screenshot(page, "flow-run-artifacts")
    text = page.inner_text("body")
    for what in ("headline", "alerts", "outcomes", "days", "plot", "report", "metrics"):
        assert f"fraudpipe-daily-pipeline-{what}" in text, what
    assert shot.stat().st_size > 10_000
    # AND the headline opens from there: today's day, scored on arrival, and what to do
    page.get_by_text("fraudpipe-daily-pipeline-headline", exact=False).first.click()
    page.get_by_text(f"today is {TODAY} (scored on arrival)", exact=False).first.wait_for()
    page.get_by_text("What to do today", exact=False).first.wait_for()
    _screenshot(page, "headline-artifact")
    text = page.inner_text("body")
    assert f"Scored on arrival by the model trained through 2018-04-{TRAINED:02d}" in text
    assert "the day's labels are not known yet" in text


@pytest.mark.timeout(900)
def test_alerts_table_shows_todays_cards(pipeline: DeployedPipeline, page) -> None:
    assert pipeline.returncode == 0, pipeline.output
    alerts = _artifacts(pipeline)["fraudpipe-daily-pipeline-alerts"]
    rows = _rows(alerts["data"])
    assert rows and rows[0]["rank"] == 1 and rows[0]["date"] == TODAY
    # GIVEN the alerts artifact's page
    page.goto(f"{pipeline.server.url}/artifacts/artifact/{alerts['id']}")
    # THEN it is a table whose header names the columns and whose cells are the cards
    table = page.locator("table").first
    table.wait_for()
    header = table.locator("th").all_inner_texts()
    for column in ("rank", "card_id", "highest_score", "why", "score_split",
                   "transactions_of_the_day", "transactions", "total_amount"):
        assert column in header, header
    first_cells = table.locator("tbody tr").first.locator("td").all_inner_texts()
    assert str(rows[0]["card_id"]) in first_cells, first_cells
    assert rows[0]["why"] and rows[0]["why"] in first_cells, first_cells
    assert f"output/scores/{TODAY}.parquet" in alerts["description"]
    shot = _screenshot(page, "alerts-artifact")
    assert shot.stat().st_size > 10_000


@pytest.mark.timeout(900)
def test_metrics_plot_is_rendered_inline(pipeline: DeployedPipeline, page) -> None:
    assert pipeline.returncode == 0, pipeline.output
    plot = _artifacts(pipeline)["fraudpipe-daily-pipeline-plot"]
    # GIVEN the plot artifact's page
    page.goto(f"{pipeline.server.url}/artifacts/artifact/{plot['id']}")
    # THEN the image is a data: URI the browser decoded (a broken image has width 0)
    image = page.locator("img[src^='data:image/png;base64,']").first
    image.wait_for()
    image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=image.element_handle())
    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert (width, height) == (900, 450)  # metrics_png's 9 x 4.5 in at 100 dpi
    assert image.bounding_box()["width"] > 100  # laid out on the page, not hidden
    shot = _screenshot(page, "plot-artifact")
    assert shot.stat().st_size > 10_000


#: Screenshots kept with the docs: what the fraud analyst sees in the UI.
DOC_SCREENSHOTS = REPOSITORY / "docs" / "screenshots"


def _scroll_table_to(page, column: str) -> None:
    """Scroll the table artifact sideways (as a user does) until `column` is at its left."""
    page.locator("table").first.evaluate(
        """(table, column) => {
            const th = [...table.querySelectorAll("th")].find(h => h.innerText.trim() === column);
            table.parentElement.scrollLeft = th.offsetLeft;
        }""", column)


@pytest.mark.timeout(900)
def test_the_analysts_morning_headline_todays_list_last_lists_and_arrived_days(
        pipeline: DeployedPipeline, page) -> None:
    assert pipeline.returncode == 0, pipeline.output
    artifacts = _artifacts(pipeline)
    alerts = artifacts["fraudpipe-daily-pipeline-alerts"]
    first = _rows(alerts["data"])[0]
    DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # GIVEN the headline, in a window tall enough to hold all of it: today (scored on
    # arrival), the review capacity, why the top cards are listed with their transactions
    # of the day, and the last lists with the hit-rate trend
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.goto(f"{pipeline.server.url}/artifacts/artifact/"
              f"{artifacts['fraudpipe-daily-pipeline-headline']['id']}")
    page.get_by_text("Why the top cards are on the list", exact=False).first.wait_for()
    page.get_by_text("Hit-rate trend", exact=False).first.wait_for()
    text = page.inner_text("body")
    assert f"today is {TODAY} (scored on arrival)" in text
    assert "100 cards a day" in text and "booster" in text and "Last lists" in text
    assert first["why"].split(";")[0] in text
    top_transaction = first["transactions_of_the_day"].split(";")[0].split(" ")
    assert f"{top_transaction[0]} transaction {top_transaction[2]}, terminal" in text
    page.screenshot(path=str(DOC_SCREENSHOTS / "headline.png"), full_page=True)
    # AND today's list: the alerts table, each card with its reasons ...
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.goto(f"{pipeline.server.url}/artifacts/artifact/{alerts['id']}")
    page.locator("table").first.wait_for()
    page.get_by_text(first["why"].split(";")[0], exact=False).first.wait_for()
    assert f"{TODAY}, best rank first, scored on arrival" in page.inner_text("body")
    page.screenshot(path=str(DOC_SCREENSHOTS / "alerts-with-reasons.png"), full_page=True)
    # ... and, scrolled sideways, its transactions of the day
    _scroll_table_to(page, "transactions_of_the_day")
    cell = page.get_by_text(first["transactions_of_the_day"][:40], exact=False).first
    cell.wait_for()
    assert 0 <= cell.bounding_box()["x"] < 1600  # in the window, not scrolled out of it
    page.screenshot(path=str(DOC_SCREENSHOTS / "alerts-transactions.png"), full_page=True)
    # AND the outcomes of the last lists, a row per labelled day with a list, newest first
    outcomes = artifacts["fraudpipe-daily-pipeline-outcomes"]
    rows = _rows(outcomes["data"])
    assert [row["date"] for row in rows] == [f"2018-04-{d:02d}" for d in range(TRAINED, 1, -1)]
    page.goto(f"{pipeline.server.url}/artifacts/artifact/{outcomes['id']}")
    page.locator("table").first.wait_for()
    header = page.locator("table").first.locator("th").all_inner_texts()
    assert {"confirmed_fraud", "hit_rate", "missed_by_the_list"} <= set(header), header
    page.screenshot(path=str(DOC_SCREENSHOTS / "outcomes.png"), full_page=True)
    # AND the arrived days: every day, newest first; today and the days after the labelled
    # ones arrived without labels, wait for them and were scored by the head on arrival
    days = artifacts["fraudpipe-daily-pipeline-days"]
    rows = _rows(days["data"])
    assert [row["date"] for row in rows] == [f"2018-04-{d:02d}" for d in range(DAYS, 0, -1)]
    head = f"model_cpt_2018-04-{TRAINED:02d}.skops"
    for row in rows[:DAYS - TRAINED]:
        assert (row["state"], row["arrived"], row["scored_by"]) == (
            "awaiting labels", "without labels", head), row
    assert all(row["state"] == "trained" for row in rows[DAYS - TRAINED:]), rows
    page.goto(f"{pipeline.server.url}/artifacts/artifact/{days['id']}")
    page.locator("table").first.wait_for()
    page.get_by_text(TODAY, exact=True).first.wait_for()
    assert page.get_by_text("awaiting labels", exact=True).count() == DAYS - TRAINED
    page.screenshot(path=str(DOC_SCREENSHOTS / "arrived-days.png"), full_page=True)
