"""The status page as a person sees it: rendered by a real headless Chromium (Debian's
chromium and chromium-driver; nothing is downloaded)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.conftest import free_port
from tests.integration.test_service import (
    REPORT,
    _get,
    _safe_runs,
    make_project,
    start_replica,
    stop,
    wait_for,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chrome'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_status_page_shows_healthy_and_failing_jobs(tmp_path: Path, shop_dsn: str,
                                                     browser: webdriver.Chrome) -> None:
    root = make_project(tmp_path, every=2)
    (root / "definitions" / "reports" / "broken.yaml").write_text(
        REPORT.format(every=3, sql="select 1 / (count(*) - count(*)) as boom from shop.orders o")
        .replace("Tick", "Broken"))
    port = free_port()
    replica = start_replica(root, shop_dsn, "web", port=port)
    try:
        wait_for(lambda: {s for _, s, _, _ in _safe_runs(shop_dsn)} >= {"succeeded"}, 30)
        wait_for(lambda: "last run failed" in _get(port, "/status")[1], 30)
        browser.get(f"http://127.0.0.1:{port}/status")
        assert browser.title == "marketops status"
        rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r
                for r in browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")}
        assert set(rows) == {"report/tick", "report/broken"}
        broken = rows["report/broken"]
        assert broken.get_attribute("class") == "problem"
        assert "last run failed" in broken.text and "division by zero" in broken.text
        # Problems are listed first, and visibly marked.
        first = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")[0]
        assert first.find_elements(By.TAG_NAME, "td")[0].text == "report/broken"
        colour = broken.find_elements(By.TAG_NAME, "td")[0].value_of_css_property(
            "background-color")
        assert colour == "rgba(253, 226, 226, 1)"
        assert rows["report/tick"].find_elements(By.TAG_NAME, "td")[-1].text == "ok"
        assert browser.find_element(By.ID, "summary").text == "1 job(s) need attention."
    finally:
        stop([replica])


MAILED = """\
title: Mailed
description: One row, mailed to a server that is down.
owner: ops@corp.example
cron: "* * * * * */4"
timezone: Europe/Berlin
period: {rolling: 1h}
sql: select count(*) as n from shop.orders o
recipients:
  - email: a@corp.example
run: {retries: 5, retry_backoff: 1h}
"""


def test_status_page_local_times_a_retrying_delivery_and_links_to_outputs(
        tmp_path: Path, shop_dsn: str, browser: webdriver.Chrome) -> None:
    root = make_project(tmp_path, every=2)
    (root / "definitions" / "reports" / "mailed.yaml").write_text(MAILED)
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + (
        f"smtp: {{host: 127.0.0.1, port: {free_port()}, starttls: false, "
        "sender: reports@corp.example}\n"))
    port = free_port()
    replica = start_replica(root, shop_dsn, "web", port=port)
    try:
        def states() -> set[str]:
            from runners.postgres.connection import connect

            try:
                with connect(shop_dsn) as conn:
                    return {str(r[0]) for r in conn.execute(
                        "select job || ' ' || status from marketops.runs").fetchall()}
            except Exception:  # the ledger is not there yet
                return set()

        try:
            wait_for(lambda: {"report/tick succeeded", "report/mailed retrying"} <= states(),
                     40)
        except AssertionError:
            raise AssertionError(stop([replica])) from None
        browser.get(f"http://127.0.0.1:{port}/status")
        rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r
                for r in browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")}
        mailed, tick = rows["report/mailed"], rows["report/tick"]
        assert mailed.get_attribute("class") == "problem"  # retrying needs attention
        cells = [c.text for c in mailed.find_elements(By.TAG_NAME, "td")]
        assert cells[1] == "Europe/Berlin" and cells[2] == "retrying"
        assert cells[3].endswith(" CET") and "Connection refused" in cells[-1], cells
        assert "(in " in cells[6], cells  # the next run, how far ahead
        assert browser.find_element(By.ID, "summary").text == "1 job(s) need attention."
        tick_cells = [c.text for c in tick.find_elements(By.TAG_NAME, "td")]
        assert tick_cells[1] == "UTC" and tick_cells[3].endswith(" UTC") and \
            tick_cells[-1] == "ok"
        assert tick_cells[4].endswith("s"), tick_cells  # how long the last run took
        # The last run links to its page: when, its error, and its outputs.
        tick.find_element(By.LINK_TEXT, "succeeded").click()
        assert browser.title.startswith("report/tick run ")
        assert browser.find_element(By.ID, "error").text == "none"
        links = [a.get_attribute("href") for a in
                 browser.find_elements(By.CSS_SELECTOR, "ul a")]
        assert any(h.startswith(f"file://{root / 'reports' / 'tick'}/") and
                   h.endswith("/tick.csv") for h in links), links
        browser.get(f"http://127.0.0.1:{port}/status")
        browser.find_element(By.CSS_SELECTOR, "tr.problem td:last-child a").click()
        assert "Connection refused" in browser.find_element(By.ID, "error").text
    finally:
        stop([replica])
