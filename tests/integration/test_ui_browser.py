"""The Prefect UI in a real browser: the schedule on the deployment page, the report on the run.

Headless Chromium from Debian's `chromium` package, driven by Playwright (the pip
package only; its own browser download is never used). Screenshots go to
`test-output/ui/` at the repository root (git-ignored); look at them to see what the
assertions saw.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect_server import REPOSITORY, DeployedPipeline, deployed_pipeline

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPOSITORY / "test-output" / "ui"
#: Milliseconds for the single-page app to render what it fetched.
RENDER_TIMEOUT_MS = 60_000

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install playwright")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed: apt-get install -y chromium",
                allow_module_level=True)


@pytest.fixture(scope="session")
def pipeline(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> DeployedPipeline:
    return deployed_pipeline(request, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.timeout(900)
def test_deployment_page_shows_the_daily_schedule(pipeline: DeployedPipeline, page) -> None:
    assert pipeline.returncode == 0, pipeline.output
    deployment = pipeline.api("GET", "/deployments/name/daily-pipeline/local")
    # GIVEN the deployment page of daily-pipeline/local
    page.goto(f"{pipeline.server.url}/deployments/deployment/{deployment['id']}")
    # THEN it names the flow and shows the cron schedule in words
    page.get_by_text("daily-pipeline", exact=False).first.wait_for()
    page.get_by_text("At 06:00 AM every day", exact=False).first.wait_for()
    shot = _screenshot(page, "deployment-daily-pipeline")
    text = page.inner_text("body")
    assert "Schedules" in text and "fraudpipe-process" in text
    assert shot.stat().st_size > 10_000
    # AND the schedule behind the words is prefect.yaml's: 06:00 in Paris, active
    # (the UI shows the time zone only on hover, so it is read from the API)
    [schedule] = deployment["schedules"]
    assert schedule["schedule"]["cron"] == "0 6 * * *"
    assert schedule["schedule"]["timezone"] == "Europe/Paris"
    assert schedule["active"] is True


@pytest.mark.timeout(900)
def test_flow_run_page_shows_the_report_artifact(pipeline: DeployedPipeline, page) -> None:
    assert pipeline.returncode == 0, pipeline.output
    deployment = pipeline.api("GET", "/deployments/name/daily-pipeline/local")
    flow_run = pipeline.api("POST", "/flow_runs/filter", json={
        "flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})[0]
    # GIVEN the flow run's page (it opens on Logs), then its Artifacts tab
    page.goto(f"{pipeline.server.url}/runs/flow-run/{flow_run['id']}")
    page.get_by_text(flow_run["name"], exact=False).first.wait_for()
    page.get_by_text("Artifacts", exact=True).first.click()
    # THEN the run is Completed and the report artifact is listed with the others
    page.get_by_text("Completed", exact=False).first.wait_for()
    page.get_by_text("fraudpipe-daily-pipeline-report", exact=False).first.wait_for()
    page.get_by_text("3 of 3 done", exact=False).first.wait_for()
    shot = _screenshot(page, "flow-run-artifacts")
    text = page.inner_text("body")
    assert "fraudpipe-daily-pipeline-report" in text
    assert "fraudpipe-daily-pipeline-metrics" in text
    assert shot.stat().st_size > 10_000
    # AND the report itself opens, naming the trained days
    page.get_by_text("fraudpipe-daily-pipeline-report", exact=False).first.click()
    page.get_by_text("2018-04-01", exact=False).first.wait_for()
    _screenshot(page, "report-artifact")
    assert "2018-04-03" in page.inner_text("body")
