"""Headless Chromium (Debian's `chromium` + `chromium-driver`, `make system-deps`) driven by
selenium, against a real gateway on loopback talking to the simulator.

`GG_SCREENSHOTS=docs/console` saves a screenshot of each page there (docs/console.md embeds them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fixtures.gateway import start_gateway

ADMIN_KEY = "adm-browser-test-key-0123456789"
CLIENT_KEY = "sk-browser-test-client-key"


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _binary("chromium", "chromium-browser"), _binary("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("chromium and chromium-driver are not installed (make system-deps)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def console_gateway(tmp_path_factory, sim_server):
    tmp = tmp_path_factory.mktemp("console")
    env = {
        "GROKGATE_API_KEYS": CLIENT_KEY,
        "GROKGATE_ADMIN_KEY": ADMIN_KEY,
        "GROKGATE_UPSTREAM_URL": sim_server.url,
        "GROKGATE_ASSETS_URL": sim_server.url,
        "GROKGATE_ACCOUNTS_URL": sim_server.url,
        "GROKGATE_MEDIA": str(tmp / "media"),
    }
    gw = start_gateway(env, tmp)
    try:
        yield gw
    finally:
        gw.stop()


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("GG_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))
