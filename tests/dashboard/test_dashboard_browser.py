"""End to end: the real server (the command nnts-ray-dashboard runs), driven in headless Debian Chromium.

Every wait is explicit and generous (dashboard.screenshots.TIMEOUT_MS, also for expect(), whose own default
is 5 s): on a loaded 2-core machine a Plotly figure can take seconds. Nothing here asserts a duration; page
render times are recorded (printed, and written to page_render_times.json in the test's folder).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Iterator

import polars as pl
import pytest
from fakerun import KS, LAYERS, RUNS
from playwright.sync_api import BrowserContext, Locator, Page, expect

from dashboard import PAGES
from dashboard.screenshots import CHROMIUM, TIMEOUT_MS, chromium, page_url, render, serve, settled
from nnts_ray.naming import RunPaths

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium: run .ci/install_browser")]
# What proves a page did its work, beyond its heading.
PROOF = {"Runs": '[data-testid="stDataFrame"]', "Single samples": 'img[alt^="sample"]'}
TIMED_RUNS = os.environ.get("NNTS_RAY_DASHBOARD_RUNS")  # a real runs directory whose opening run gets every page timed


@pytest.fixture
def server_url(runs_root: Path, tmp_path: Path) -> Iterator[str]:
    with serve(runs_root, tmp_path / "server.log") as url:
        yield url


@pytest.fixture
def browser(server_url: str, tmp_path: Path) -> Iterator[BrowserContext]:
    with chromium(tmp_path / "profile", server_url) as context:
        yield context


def open_link(page: Page, title: str, heading: str) -> float:
    """Follow a navigation link as a user would; the seconds until the page is drawn."""
    start = time.perf_counter()
    page.get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    settled(page)
    return time.perf_counter() - start


def widget(page: Page, kind: str, label: str) -> Locator:
    """The Streamlit widget (stSelectbox, stRadio, …) whose label is `label`."""
    return page.locator(f'[data-testid="{kind}"]').filter(has=page.get_by_text(label, exact=True)).first


def selected(page: Page, label: str) -> Locator:
    """The text box of a select box, whose value is the option shown."""
    return widget(page, "stSelectbox", label).get_by_role("combobox")


def select(page: Page, label: str, option: str) -> None:
    widget(page, "stSelectbox", label).click()
    page.get_by_role("option", name=option, exact=True).click(timeout=TIMEOUT_MS)
    settled(page)


def check_radio(page: Page, label: str, option: str) -> None:
    widget(page, "stRadio", label).get_by_text(option, exact=True).click()
    settled(page)


def figure(page: Page, title: str) -> Locator:
    """The Plotly figure whose title starts with `title`."""
    return page.locator(".js-plotly-plot").filter(has=page.locator(".gtitle", has_text=title)).first


def click_cell(page: Page, plot: Locator, column: int, row_from_bottom: int, columns: int, rows: int) -> None:
    """Click the centre of one cell of a heatmap (categorical axes, first subplot)."""
    box = plot.locator(".nsewdrag").first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + (column + 0.5) * box["width"] / columns, box["y"] + box["height"] - (row_from_bottom + 0.5) * box["height"] / rows)


def download(page: Page, button: str) -> bytes:
    """Click a download button and return the file the browser received."""
    with page.expect_download(timeout=TIMEOUT_MS) as started:
        page.get_by_role("button", name=button).first.click()
    return Path(started.value.path()).read_bytes()


def test_click_through_every_page(server_url: str, browser: BrowserContext, tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(page_url(server_url, PAGES[0], run=RUNS["sweep"]))
    expect(page.get_by_role("heading", name=RUNS["sweep"], exact=True)).to_be_visible()
    settled(page)
    expect(page.locator('[data-testid="stAppDeployButton"]')).to_have_count(0)  # toolbarMode viewer: no Deploy
    seconds = {}
    for info in [*PAGES[1:], PAGES[0]]:
        seconds[info.title] = open_link(page, info.title, info.heading)
        expect(page.locator(PROOF.get(info.title, ".js-plotly-plot")).first).to_be_visible()
        assert "Traceback" not in page.inner_text("body"), info.title
        page.screenshot(path=str(tmp_path / f"{info.title.replace(' ', '_')}.png"))
    (tmp_path / "page_render_times.json").write_text(json.dumps(seconds, indent=1))
    print("page render times (s, fake runs, link click to drawn):", json.dumps({k: round(v, 2) for k, v in seconds.items()}))
    open_link(page, "Single samples", "Single samples")
    downloads = {name: download(page, name) for name in ("Table as CSV", "Table as Parquet")}  # of the neighbours shown
    open_link(page, "NNTS", PAGES[1].heading)
    downloads["figure"] = download(page, "Figure as HTML")
    open_link(page, "Runs", "Runs")
    downloads["report"] = download(page, "Static HTML report of this run")
    page.goto(f"{server_url}/nnts?run=../../etc")
    expect(page.get_by_text("'../../etc' is not a run under the runs directory; it was not opened.")).to_be_visible()
    settled(page)
    assert (tmp_path / "Single_samples.png").stat().st_size > 10_000
    assert downloads["Table as CSV"].startswith(b"layer,position,rank,neighbour_id,label,other_class,distance,kept,everywhere\n")
    assert downloads["Table as Parquet"][:4] == b"PAR1"
    assert b"<html" in downloads["figure"] and b"Plotly.newPlot" in downloads["figure"]
    assert f"run {RUNS['sweep']}".encode() in downloads["figure"] and b"n = 60" in downloads["figure"]  # the title travels with the file
    assert downloads["report"].startswith(b"<!DOCTYPE html>") and f"nnts_ray run {RUNS['sweep']}".encode() in downloads["report"]


@pytest.mark.skipif(not TIMED_RUNS, reason="set NNTS_RAY_DASHBOARD_RUNS=<runs directory> to time its pages")
def test_page_render_times_of_a_real_run(tmp_path: Path) -> None:
    """Record (never assert) how long each page of the opening run takes: a fresh load, then link clicks on
    first visit and again (caches warm). Written to page_render_times.json in the test's folder and printed."""
    with serve(Path(str(TIMED_RUNS)), tmp_path / "server.log") as url, chromium(tmp_path / "profile", url) as browser:
        page = browser.new_page()
        seconds = {"fresh load of Runs": render(page, url, PAGES[0])}
        for visit in ("first visit", "again"):
            seconds[visit] = {info.title: round(open_link(page, info.title, info.heading), 2) for info in [*PAGES[1:], PAGES[0]]}
        seconds["load average"] = os.getloadavg()
    (tmp_path / "page_render_times.json").write_text(json.dumps(seconds, indent=1))
    print(f"page render times (s) of the opening run under {TIMED_RUNS}:", json.dumps(seconds))


def test_run_list_fits_and_the_opening_run_is_the_newest_complete(server_url: str, browser: BrowserContext) -> None:
    page = browser.new_page()
    render(page, server_url, PAGES[0])
    expect(page.get_by_role("heading", name=RUNS["sweep"], exact=True)).to_be_visible()
    widths = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')].map(s => [s.scrollWidth, s.clientWidth])""")
    scroll, visible = widths[0]  # the run list: every column visible, no sideways scrolling
    assert scroll <= visible + 1, widths


def test_most_changed_label_and_gallery_agree_after_changing_k_and_pair(server_url: str, browser: BrowserContext, runs_root: Path) -> None:
    """Issue 13: the picker kept its old label ('482 (Jaccard 0.000)') while the gallery showed another sample."""
    per_sample = pl.read_parquet(RunPaths(runs_root / RUNS["single"]).metric("per_sample")).filter(model_a="lenet", model_b="lenet")
    page = browser.new_page()
    render(page, server_url, PAGES[-1], run=RUNS["single"], how="most changed")
    for change, k, first in ((lambda: select(page, "k", str(KS[1])), KS[1], LAYERS[0]),
                             (lambda: select(page, "Between probe point", "conv"), KS[1], "conv")):
        change()
        lowest = per_sample.filter(k=k, layer_a=first, layer_b=LAYERS[-1]).sort("jaccard", "sample_id").row(0, named=True)
        label = f"#{lowest['sample_id']} (Jaccard {lowest['jaccard']:.3f})"
        expect(selected(page, "Most changed (lowest Jaccard first)")).to_have_value(label)
        expect(page.get_by_role("heading", name=f"Sample #{lowest['sample_id']} (class", exact=False)).to_be_visible()


def test_what_is_drawn(server_url: str, browser: BrowserContext) -> None:
    """NNTP cells carry numbers, per-class classes read upwards, gallery rows never wrap."""
    page = browser.new_page()
    render(page, server_url, PAGES[2], run=RUNS["single"])
    texts = figure(page, "NNTP: stretches").locator(".heatmap-label text").all_text_contents()
    assert len(texts) == len(LAYERS) * (len(LAYERS) + 1) // 2 and all(float(t) < 1 for t in texts), texts  # every cell of the upper triangle, in thousands
    render(page, server_url, PAGES[1], run=RUNS["sweep"])
    ticks = figure(page, "Mean per-sample Jaccard by class").locator(".ytick text")
    expect(ticks).to_have_count(3)
    y = {t.text_content(): t.bounding_box()["y"] for t in ticks.all()}
    assert y["0"] > y["1"] > y["2"], y  # class 0 at the bottom
    page.set_viewport_size({"width": 600, "height": 1000})  # narrow: a row of 10 tiles does not fit
    render(page, server_url, PAGES[-1], run=RUNS["sweep"], k=str(KS[1]))
    page.get_by_label("Neighbours shown per probe point").fill(str(KS[1]))
    page.keyboard.press("Enter")
    settled(page)
    rows = page.locator(".probe-row")
    expect(rows).to_have_count(len(LAYERS))
    for row in rows.all():
        tops = {round(t.bounding_box()["y"]) for t in row.locator(".tile").all()}
        assert len(row.locator(".tile").all()) == KS[1] and len(tops) == 1, tops


def test_click_throughs_reach_the_samples(server_url: str, browser: BrowserContext, runs_root: Path) -> None:
    """A per-class cell opens that class's most changed samples; a histogram bar lists its bin."""
    page = browser.new_page()
    render(page, server_url, PAGES[1], run=RUNS["sweep"])
    plot = figure(page, "Mean per-sample Jaccard by class")
    plot.scroll_into_view_if_needed()
    click_cell(page, plot, column=len(LAYERS) - 2, row_from_bottom=2, columns=len(LAYERS) - 1, rows=3)  # class 2, relu → logits
    expect(page.get_by_role("heading", name="Single samples", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    settled(page)
    expect(selected(page, "Only class")).to_have_value("2")
    expect(selected(page, "Between probe point")).to_have_value(LAYERS[-2])
    expect(widget(page, "stRadio", "Choose a sample").locator("input[type=radio]:checked")).to_have_count(1)
    assert "most changed" in page.url.replace("+", " ").replace("%20", " ")
    check_radio(page, "Choose a sample", "by Jaccard (histogram)")
    bars = figure(page, "Per-sample Jaccard").locator(".point path")
    expect(bars.first).to_be_attached()
    counts = [b for b in bars.all() if (b.bounding_box() or {}).get("height", 0) > 2]
    counts[-1].click(force=True)
    settled(page)
    expect(selected(page, "Jaccard bin (or click a bar)")).to_have_value(re.compile(r"^\[0\.\d\d, \d\.\d\d[)\]] · \d+ samples$"))
    expect(selected(page, "Sample in the bin")).to_have_value(re.compile(r"^#\d+ \(Jaccard 0\.\d{3}\)$"))


def test_settings_survive_a_reload_and_the_compare_page_draws(server_url: str, browser: BrowserContext) -> None:
    page = browser.new_page()
    render(page, server_url, PAGES[1], run=RUNS["sweep"])
    check_radio(page, "Form", "overlap")
    select(page, "Model", "lenet_b")
    expect(page).to_have_url(re.compile(r"[?&]form=overlap(&|$)"), timeout=TIMEOUT_MS)
    expect(page).to_have_url(re.compile(r"[?&]model=lenet_b(&|$)"), timeout=TIMEOUT_MS)
    page.reload()
    settled(page)
    expect(widget(page, "stRadio", "Form").locator("label").filter(has_text="overlap").locator("input")).to_be_checked()
    expect(selected(page, "Model")).to_have_value("lenet_b")
    render(page, server_url, PAGES[5], run=RUNS["sweep"])
    expect(figure(page, "NNTS difference b − a")).to_be_visible()
    expect(figure(page, "NNTS (jaccard) from the first probe point")).to_be_visible()
