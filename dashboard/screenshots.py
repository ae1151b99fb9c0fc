"""Every page of a run rendered in headless Chromium: `python -m dashboard.screenshots RUNS_DIR OUT_DIR [--run RUN]`.

Starts the real server (the command nnts-ray-dashboard runs), opens each page of one run (default: the
one the dashboard opens with), waits until its script has finished and its figures are drawn, writes a
full-page PNG per page and prints how long each page took to render. The browser test drives the app
through the same helpers. Needs Playwright (`pip install 'nnts-ray[test]'`) and Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from dashboard import PAGES, RUNS_ENV, PageInfo
from dashboard.cli import streamlit_command

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
# Headless Chromium offline: no sandbox (containers), no GPU, and none of its own network traffic.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000  # every wait: generous, a loaded 2-core machine (load 20 seen) takes tens of seconds for a page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the dashboard server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy after {seconds} s")


@contextmanager
def serve(runs: Path, log: Path, seconds: float = TIMEOUT_MS / 1000) -> Iterator[str]:
    """The dashboard over `runs` on a free localhost port, as nnts-ray-dashboard starts it; yields its URL."""
    port = free_port()
    env = {**os.environ, RUNS_ENV: str(runs.resolve())}
    with log.open("w") as out:
        server = subprocess.Popen(streamlit_command(port, "127.0.0.1"), stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, server, seconds)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@contextmanager
def chromium(profile: Path, url: str, viewport: tuple[int, int] = (1400, 1000)) -> Iterator["BrowserContext"]:
    """Headless Debian Chromium that may reach only `url` (anything else is aborted)."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        raise SystemExit("screenshots need Playwright: pip install 'nnts-ray[test]'") from None
    expect.set_options(timeout=TIMEOUT_MS)  # expect() has its own 5 s default otherwise
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": viewport[0], "height": viewport[1]})
        try:
            browser.set_default_timeout(TIMEOUT_MS)
            browser.set_default_navigation_timeout(TIMEOUT_MS)
            browser.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
            yield browser
        finally:
            browser.close()


# Drawn: the script has finished, no element is still a loading placeholder, every Plotly figure has its SVG.
_DRAWN = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app !== null && app.getAttribute('data-test-script-state') === 'notRunning'
    && document.querySelectorAll('[data-testid="stSkeleton"]').length === 0
    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg'));
}"""


def settled(page: "Page") -> None:
    """Wait until the page is drawn (script finished, no placeholders, figures rendered); fail on an exception shown."""
    from playwright.sync_api import expect

    page.wait_for_function(_DRAWN, timeout=TIMEOUT_MS, polling=100)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0, timeout=TIMEOUT_MS)


def screenshot(page: "Page", path: Path) -> None:
    """The whole page, not just the window: the viewport grows to the height of Streamlit's scrolling main area."""
    size = page.viewport_size or {"width": 1400, "height": 1000}
    height = page.evaluate("""() => document.querySelector('[data-testid="stMain"]').scrollHeight""")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 40)})
    try:
        page.wait_for_timeout(300)  # one layout pass at the new size (Plotly resizes its figures)
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)


def page_url(url: str, info: PageInfo, **params: str) -> str:
    return f"{url}/{info.url_path}?{urllib.parse.urlencode(params)}"


def render(page: "Page", url: str, info: PageInfo, **params: str) -> float:
    """Open one page (a fresh load, as a shared link is opened) and return the seconds until it has settled."""
    from playwright.sync_api import expect

    start = time.perf_counter()
    page.goto(page_url(url, info, **params), wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name=info.heading, exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    settled(page)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render every dashboard page of one run in headless Chromium and write PNGs.")
    parser.add_argument("runs", type=Path, help="runs directory (as given to nnts-ray-dashboard --runs)")
    parser.add_argument("out", type=Path, help="folder for the PNGs")
    parser.add_argument("--run", help="run directory relative to RUNS (default: the one the dashboard opens with)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                        help="a page setting in the URL, e.g. --set 'scale=relative to chance' --set 'how=most changed' (repeatable)")
    parser.add_argument("--page", action="append", choices=[p.title for p in PAGES], help="only these pages (repeatable; default: all)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    params = ({"run": args.run} if args.run else {}) | dict(item.split("=", 1) for item in args.set)
    with serve(args.runs, args.out / "server.log") as url, chromium(args.out / ".profile", url, (args.width, 1000)) as browser:
        page = browser.new_page()
        render(page, url, PAGES[0], **params)  # warm-up: first imports and cache fills are not a page's render time
        for number, info in enumerate(PAGES, start=1):
            if args.page and info.title not in args.page:
                continue
            seconds = render(page, url, info, **params)
            path = args.out / f"{number:02d}-{info.title.lower().replace(' ', '-')}.png"
            screenshot(page, path)
            print(f"{info.title:<16} {seconds:5.2f} s  {path}")


if __name__ == "__main__":
    main()
