"""Headless Chromium loads the dashboard over a seeded database and finds every chart drawn.

Uses the system's Chromium (Debian's `chromium`, installed by scripts/install-chromium.sh)
through Playwright, which never downloads a browser of its own here. Under CI a
missing Chromium fails the test; elsewhere it skips.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from sqlalchemy import text

from api.app import create_app
from tests.conftest import IN_CI, Services
from tests.seed_dashboard import JOBS_PER_DAY, SATISFACTION, Seeded, seed_dashboard
from tierroute.cli.main import main
from tierroute.config import default_tier_table
from tierroute.devstack.procs import free_port
from tierroute.runtime import get_runtime
from tierroute.store.engine import session_scope

pytestmark = [pytest.mark.integration, pytest.mark.browser]
CHARTS = (
    "spend-per-day", "savings-over-time", "tier-distribution", "satisfaction-by-tier",
    "top-batches",
)  # fmt: skip
VIEWPORT = {"width": 1440, "height": 900}


def chromium_path() -> str | None:
    """$TIERROUTE_CHROMIUM, else Debian's chromium (or another Chrome) on PATH."""
    explicit = os.environ.get("TIERROUTE_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright is not installed (pip install -e '.[dev]')"
    if executable is None:
        missing = "no chromium on PATH (bash scripts/install-chromium.sh)"
    if missing:
        if IN_CI:
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=["--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@pytest.fixture
def seeded(clean_db: Services) -> Seeded:
    get_runtime(role="api")
    with session_scope() as session:
        return seed_dashboard(session, default_tier_table())


@contextmanager
def serve_api() -> Iterator[str]:
    """The real app under uvicorn in a thread: a browser needs a real socket."""
    port = free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def api_url(seeded: Seeded) -> Iterator[str]:
    with serve_api() as url:
        yield url


def chart_marks(page: Any, chart: str, selector: str) -> list[dict[str, Any]]:
    """The marks of one chart as the browser laid them out: value, series and size."""
    marks: list[dict[str, Any]] = page.eval_on_selector_all(
        f'svg[data-chart="{chart}"] {selector}',
        """els => els.map(e => {
            const box = e.getBoundingClientRect();
            return {series: e.dataset.series, category: e.dataset.category,
                    value: Number(e.dataset.value), width: box.width, height: box.height};
        })""",
    )
    return marks


def check_charts(page: Any) -> dict[str, list[dict[str, Any]]]:
    """Every chart is on the page, not empty, and each of its marks has a visible size."""
    found = {}
    for chart in CHARTS:
        svg = page.locator(f'svg[data-chart="{chart}"]')
        assert svg.count() == 1, chart
        assert svg.get_attribute("data-empty") == "false", chart
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100, (chart, box)
        selector = "circle.point" if chart == "savings-over-time" else "rect.bar"
        marks = chart_marks(page, chart, selector)
        assert marks, chart
        for mark in marks:
            assert mark["width"] > 0 and mark["height"] > 0, (chart, mark)
        found[chart] = marks
    return found


def key_totals(key_id: object) -> tuple[float, float]:
    with session_scope() as session:
        total, if_opus = session.execute(
            text(
                "SELECT sum(c.cost_usd), sum(c.cost_if_opus_usd) FROM model_calls c "
                "JOIN jobs j ON j.id = c.job_id WHERE j.api_key_id = :key"
            ),
            {"key": key_id},
        ).one()
    return float(total), float(if_opus)


def test_dashboard_renders_its_charts_in_chromium(
    browser: Any,
    api_url: str,
    seeded: Seeded,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    context = browser.new_context(
        viewport=VIEWPORT,
        # The browser's own basic-auth answer, with the API key as password.
        http_credentials={"username": "analyst", "password": seeded.raw_key},
    )
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto(f"{api_url}/dashboard")
    assert response is not None and response.status == 200
    marks = check_charts(page)

    total, if_opus = key_totals(seeded.key_id)
    spend = marks["spend-per-day"]
    assert sum(m["value"] for m in spend) == pytest.approx(total)
    assert {m["series"] for m in spend} == {"haiku", "sonnet", "opus", "classifier"}
    # The running totals end at the key's totals (every seeded call is in the window).
    last = {m["series"]: m["value"] for m in marks["savings-over-time"]}
    assert last == pytest.approx({"cost if all Opus": if_opus, "actual cost": total})
    jobs = {m["series"]: m["value"] for m in marks["tier-distribution"]}
    assert jobs == {tier: sum(counts) for tier, counts in JOBS_PER_DAY.items()}
    ratings = {m["series"]: m["value"] for m in marks["satisfaction-by-tier"]}
    assert ratings == pytest.approx(SATISFACTION)
    assert len(marks["top-batches"]) == 3
    # The page loaded nothing but itself.
    assert requested == [f"{api_url}/dashboard"]

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 30_000  # a blank page is a few kB
    record_property("screenshot", str(shot))
    with capsys.disabled():
        print(f"\ndashboard screenshot: {shot}")
    context.close()


def test_dashboard_in_chromium_with_a_wrong_key_is_refused(browser: Any, api_url: str) -> None:
    context = browser.new_context(
        viewport=VIEWPORT, http_credentials={"username": "analyst", "password": "trk_wrong"}
    )
    page = context.new_page()
    response = page.goto(f"{api_url}/dashboard")
    assert response is not None and response.status == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert page.locator("svg.chart").count() == 0
    context.close()


def test_report_html_is_the_same_page_as_a_static_file(
    browser: Any, api_url: str, seeded: Seeded, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["report", "--html", str(out), "--api", api_url, "--api-key", seeded.raw_key]
    )
    assert result.exit_code == 0, result.output
    assert f"dashboard written to {out}" in result.output
    page = browser.new_page(viewport=VIEWPORT)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(out.as_uri())
    marks = check_charts(page)
    total, _ = key_totals(seeded.key_id)
    assert sum(m["value"] for m in marks["spend-per-day"]) == pytest.approx(total)
    assert requested == [out.as_uri()]
    page.close()
