"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium for the console."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS_ENV = "DG_CONSOLE_SCREENSHOTS"  # a folder: the browser test saves a picture of each page there


def chromium(downloads: Path):  # type: ignore[no-untyped-def]
    """A headless Chromium with downloads going to ``downloads``; skips (or fails under CI) without one."""
    driver_path = shutil.which("chromedriver") or (CHROMEDRIVER if Path(CHROMEDRIVER).exists() else None)
    if driver_path is None:
        if os.environ.get("DG_REQUIRE_BROWSER"):
            pytest.fail("chromium-driver is not installed (apt-get install chromium chromium-driver)")
        pytest.skip("chromium-driver is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,900",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(argument)
    if Path("/usr/bin/chromium").exists():
        options.binary_location = "/usr/bin/chromium"
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    # A click that submits a form returns before the next page has loaded: let each lookup wait for it
    # (up to 10 s) instead of racing the navigation.
    browser.implicitly_wait(10)
    return browser


def screenshot(driver, name: str) -> None:  # type: ignore[no-untyped-def]
    """Save the whole page as ``<SCREENSHOTS_ENV>/<name>.png`` when that variable names a folder."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height), 600), 1100))
    driver.save_screenshot(str(Path(folder) / f"{name}.png"))
    driver.set_window_size(1280, 900)
