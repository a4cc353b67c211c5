"""The analyst's flow in a real browser: sign in, find the hydra, pin an account, export, check a leak.

One browser session for the whole flow (a browser start costs seconds).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.console.browser import chromium, screenshot
from tests.console.scenario import HYDRA, TOKEN, hydra_traffic, marked_answers
from tests.support import GatewayHandle, wait_for


def test_the_analyst_flow(console_gateway: GatewayHandle, tmp_path: Path) -> None:
    gw = console_gateway
    hydra_traffic(gw)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser = chromium(downloads)
    try:
        _flow(gw, browser, downloads)
    finally:
        browser.quit()


def _flow(gw: GatewayHandle, browser: Any, downloads: Path) -> None:
    # Signed out, the board sends us to the sign-in page.
    browser.get(f"{gw.ops_url}/console/board")
    assert browser.current_url.endswith("/console/signin")
    screenshot(browser, "signin")
    browser.find_element(By.ID, "operator-name").send_keys("ana")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "signin").click()
    # The click only starts the form's navigation: wait for the page it loads (a loaded machine
    # read the sign-in page's address here before the redirect had arrived).
    WebDriverWait(browser, 20).until(lambda b: b.current_url.endswith("/console/board"))
    assert browser.find_element(By.ID, "operator").text == "ana"

    # The hydra: every head on the board, raised, and their shared template among the top clusters.
    rows = {
        row.get_attribute("data-account") for row in browser.find_elements(By.CSS_SELECTOR, ".account-row")
    }
    assert set(HYDRA) <= rows
    top = browser.find_element(By.ID, "top-clusters").text
    assert "template:" in top and " 8 " in f" {top} "
    assert "hydra-0" in browser.find_element(By.ID, "changes").text
    screenshot(browser, "board")
    # The cluster page shows the members and the graph of what links them.
    browser.find_element(By.CSS_SELECTOR, "#top-clusters a.cluster-link[href*='template']").click()
    members = browser.find_element(By.ID, "members").text
    assert all(name in members for name in HYDRA)
    assert browser.find_elements(By.CSS_SELECTOR, "svg circle")
    screenshot(browser, "cluster")
    browser.get(f"{gw.ops_url}/console/clusters")
    screenshot(browser, "clusters")

    # Open one head, see why, pin it with a reason: the gateway then answers 403 for it.
    browser.get(f"{gw.ops_url}/console/board")
    browser.find_element(By.CSS_SELECTOR, ".account-row[data-account='hydra-0'] a.account-link").click()
    assert browser.find_element(By.ID, "account-name").text == "hydra-0"
    assert browser.find_elements(By.CSS_SELECTOR, "svg path"), "the score chart"
    screenshot(browser, "account")
    browser.find_element(By.ID, "reason").send_keys("ticket T-42: shared extraction template")
    Select(browser.find_element(By.ID, "pin-level")).select_by_value("critical")
    browser.find_element(By.ID, "pin").click()
    assert browser.find_element(By.ID, "notice").text == "Pinned."
    assert browser.find_element(By.ID, "pinned").text == "critical"
    blocked = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {HYDRA['hydra-0']}"},
        timeout=10,
    )
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "account_blocked"
    assert (
        "ticket T-42" in browser.find_element(By.ID, "trail").text
        and "[ana via console]" in browser.page_source
    )

    # Export the evidence bundle: a sealed JSON file arrives in the downloads folder.
    browser.find_element(By.ID, "export").click()
    wait_for(lambda: any(p.suffix == ".json" for p in downloads.iterdir()), timeout=10)
    exported = next(p for p in downloads.iterdir() if p.suffix == ".json")
    bundle = orjson.loads(exported.read_bytes())
    claimed = bundle.pop("sha256")
    assert hashlib.sha256(orjson.dumps(bundle, option=orjson.OPT_SORT_KEYS)).hexdigest() == claimed
    assert bundle["account"] == "hydra-0" and bundle["pinned"] == "critical"

    # Paste answers served to 'free' (a JSONL corpus): the watermark attributes them to 'free'.
    corpus = "\n".join(orjson.dumps(text).decode() for text in marked_answers(gw, gw.key("free")))
    browser.get(f"{gw.ops_url}/console/leak")
    browser.execute_script("document.getElementById('leak-text').value = arguments[0];", corpus)
    browser.find_element(By.ID, "check").click()
    attributed = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#verdict .attributed")]
    assert attributed == ["free"]
    screenshot(browser, "leak")

    browser.get(f"{gw.ops_url}/console/config")
    assert "critical" in browser.page_source
    screenshot(browser, "config")
    browser.get(f"{gw.ops_url}/console/audit")
    audit = browser.find_element(By.ID, "audit").text
    assert "pin" in audit and "export" in audit and "leak-check" in audit and "ana" in audit
    screenshot(browser, "audit")
    time.sleep(0)  # nothing pending: the pages above are complete server-rendered documents
