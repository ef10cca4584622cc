"""report.html in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

No Kafka: the report is rendered from hand-built histories with hostile payloads planted in
an event, a DLQ reason and an error message. Checks: every chart is drawn, no console
error and no page error, no network request at all, none of the planted scripts ran, the
planted text is visible as text. A full-page screenshot is kept under pytest's temporary
directory (and copied to $CHAOS_ARTIFACTS_DIR when set) and its path printed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.report.outputs import Outputs, rerender
from report_histories import HOSTILE, synthetic_run

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CHAOS_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is missing: pip install -e '.[test]' (no browser download needed)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM),
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                     "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    run_dir = tmp_path_factory.mktemp("browser") / "black_friday-hostile"
    synthetic_run(run_dir, orders=600, duration_s=45, hostile=True)
    return rerender(run_dir)


def test_report_renders_its_charts_without_errors_and_runs_no_planted_script(
        browser: object, hostile_report: Outputs, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    console: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    url = hostile_report.report_html.as_uri()
    page.goto(url, wait_until="load")
    page.wait_for_function("document.body.hasAttribute('data-charts-drawn')", timeout=10_000)

    charts = page.locator("svg.chart")
    assert charts.count() == 9  # 3 pipelines x throughput, latency, lag
    assert page.get_attribute("body", "data-charts-drawn") == "9"
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 80
    assert page.locator("svg.chart polyline").count() >= 9
    assert page.locator("svg.chart rect.fault").count() == 9

    assert not errors, errors
    assert not [c for c in console if c.startswith(("error", "warning"))], console
    assert requests == [url], f"the report loaded something besides itself: {requests}"

    # The planted scripts did not run, and their text is shown as text.
    assert page.title().startswith("chaos-harness: black_friday")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    assert HOSTILE in page.inner_text("body")
    assert page.evaluate("window.chaosResults.scenario") == "black_friday"

    # The hover readout works (the report's own script runs under its CSP hash).
    chart = charts.first
    chart.hover()  # scrolls it into view and moves the mouse to its centre
    assert "t=" in (chart.locator(".readout").text_content() or "")
    assert not errors, errors

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("CHAOS_ARTIFACTS_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
    with capsys.disabled():  # shown even when output is captured, so CI's log names the artifact
        print(f"\nreport screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    page.close()
