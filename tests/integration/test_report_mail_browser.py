"""A report mail's HTML as a reader sees it: the preview's page rendered by Debian's headless
Chromium (the status page test's browser fixture)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.conftest import free_port
from tests.integration.test_report_mail import NOVEMBER, _cli, _database, _project
from tests.integration.test_status_page_browser import browser

__all__ = ["browser"]  # the fixture, used by name


def test_mail_table_and_chart_are_visible(tmp_path: Path, new_database: Callable[..., str],
                                          browser: webdriver.Chrome) -> None:
    dsn = _database(new_database)
    root = _project(tmp_path / "project", free_port())
    done = _cli(root, dsn, "preview", "report/sales", "--at", NOVEMBER,
                "--out", str(tmp_path / "look"))
    assert done.returncode == 0, done.stdout + done.stderr
    page = tmp_path / "look" / "2026-11-01_2026-12-01" / "sales.mail.html"
    browser.set_window_size(1000, 1400)
    browser.get(page.as_uri())
    assert browser.title == "Sales by region"
    table = browser.find_element(By.ID, "rows")
    assert table.is_displayed() and table.size["height"] > 40
    headers = [h.text for h in table.find_elements(By.TAG_NAME, "th")]
    assert headers == ["Region", "Orders", "Revenue", "Orders of 1000+", "note"]
    rows = [[c.text for c in r.find_elements(By.TAG_NAME, "td")]
            for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows[0][:3] == ["North", "2", "€1,268.50"]
    revenue = table.find_elements(By.CSS_SELECTOR, "tbody tr td")[2]
    assert revenue.value_of_css_property("text-align") == "right"
    chart = browser.find_element(By.ID, "chart")
    assert chart.is_displayed()
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                  chart) == 800
    assert chart.size["width"] >= 600 and chart.size["height"] >= 300
    figures = browser.find_element(By.CSS_SELECTOR, "ul.figures").text
    assert "Revenue €2,468.50 ▲ 722.8% vs €300.00 for October 2026" in figures
