"""End to end: the real server started by nnts-ray-dashboard, driven in headless Debian Chromium."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from fakerun import RUNS
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# (link in the navigation, heading the page shows, an element that proves the page did its work)
PAGES = [
    ("Runs", "Runs", '[data-testid="stDataFrame"]'),
    ("NNTS", "NNTS — nearest-neighbour topological similarity", ".js-plotly-plot"),
    ("NNTP", "NNTP — nearest-neighbour topological persistence", ".js-plotly-plot"),
    ("Per layer", "Per layer", ".js-plotly-plot"),
    ("Across models", "Across models — cross-model NNTS", ".js-plotly-plot"),
    ("Single samples", "Single samples", 'img[alt^="sample"]'),
]

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium: run .ci/install_browser")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, f"server exited with {server.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy after {seconds} s")


@pytest.fixture
def server_url(runs_root: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "nnts_ray.dashboard_cli", "--runs", str(runs_root), "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_click_through_every_page(server_url: str, tmp_path: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, viewport={"width": 1400, "height": 1000})
        try:
            browser.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server_url) else route.abort())
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{server_url}/?run={RUNS['sweep']}")
            expect(page.get_by_role("heading", name=RUNS["sweep"], exact=True)).to_be_visible()
            for link, heading, proof in PAGES:
                open_page(page, link, heading)
                expect(page.locator(proof).first).to_be_visible()
                assert "Traceback" not in page.inner_text("body"), link
                page.screenshot(path=str(tmp_path / f"{link.replace(' ', '_')}.png"))
            downloads = {name: download(page, name) for name in ("Table as CSV", "Table as Parquet")}  # of the neighbours shown
            open_page(page, "NNTS", PAGES[1][1])
            downloads["figure"] = download(page, "Figure as HTML")
            open_page(page, "Runs", "Runs")
            downloads["report"] = download(page, "Static HTML report of this run")
            page.goto(f"{server_url}/nnts?run=../../etc")
            expect(page.get_by_text("'../../etc' is not a run under the runs directory; it was not opened.")).to_be_visible()
            settled(page)
        finally:
            browser.close()
    assert (tmp_path / "Single_samples.png").stat().st_size > 10_000
    assert downloads["Table as CSV"].startswith(b"layer,position,rank,neighbour_id,label,distance,kept,everywhere\n")
    assert downloads["Table as Parquet"][:4] == b"PAR1"
    assert b"<html" in downloads["figure"] and b"Plotly.newPlot" in downloads["figure"]
    assert downloads["report"].startswith(b"<!DOCTYPE html>") and f"nnts_ray run {RUNS['sweep']}".encode() in downloads["report"]


def settled(page: Page) -> None:
    """Wait until the script run behind the page has finished, then fail on any exception it shows."""
    expect(page.locator('[data-testid="stApp"]')).to_have_attribute("data-test-script-state", "notRunning")
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def open_page(page: Page, link: str, heading: str) -> None:
    page.get_by_role("link", name=link, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    settled(page)


def download(page: Page, button: str) -> bytes:
    """Click a download button and return the file the browser received."""
    with page.expect_download() as started:
        page.get_by_role("button", name=button).first.click()
    return Path(started.value.path()).read_bytes()
