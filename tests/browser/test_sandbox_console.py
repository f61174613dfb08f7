"""The issue's "done when", as a newcomer does it: `grokgate serve --sandbox`, open the printed
console URL, log in with the printed admin key, see the seeded pool, refresh it in a batch with a
progress bar, and chat in the playground with the printed API key."""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from functions.sandbox import SANDBOX_ACCOUNTS
from tests.functions.test_sandbox import start_sandbox, stop


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    proc, base, found, banner = start_sandbox(tmp_path_factory.mktemp("sandbox-console"))
    try:
        yield base, found, banner
    finally:
        stop(proc)


def test_a_newcomer_logs_in_refreshes_the_seeded_pool_and_chats(browser, sandbox):
    base, found, banner = sandbox
    console = re.search(r"Console:\s+(\S+)", banner).group(1)
    assert console == base + "/admin"
    d, wait = browser, WebDriverWait(browser, 20)
    d.get(console)
    wait.until(EC.visibility_of_element_located((By.ID, "admin-key"))).send_keys(
        found["Admin key"], Keys.ENTER
    )
    wait.until(EC.visibility_of_element_located((By.ID, "accounts-table")))
    rows = d.find_elements(By.CSS_SELECTOR, "#accounts-table tbody tr")
    assert len(rows) == len(SANDBOX_ACCOUNTS)
    assert not any(a.token in d.page_source for a in SANDBOX_ACCOUNTS)

    d.find_element(By.CSS_SELECTOR, "#accounts-table thead input[type=checkbox]").click()
    Select(d.find_element(By.ID, "b-action")).select_by_value("refresh")
    d.find_element(By.ID, "run-batch").click()
    status = wait.until(EC.visibility_of_element_located((By.ID, "batch-status")))
    wait.until(lambda _: "finished" in status.text)
    total = len(SANDBOX_ACCOUNTS)
    assert f"{total} of {total} done, {total} ok" in status.text
    assert d.find_element(By.ID, "batch-progress").get_attribute("value") == str(total)

    d.get(console + "#chat")
    key = wait.until(EC.visibility_of_element_located((By.ID, "client-key")))
    key.clear()
    key.send_keys(found["API key"], Keys.TAB)
    wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#model option")) > 1)
    d.find_element(By.ID, "prompt").send_keys("What is a tide?")
    d.find_element(By.ID, "send").click()
    answer = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".msg.assistant .answer")))
    wait.until(lambda _: d.find_element(By.ID, "send").is_enabled() and answer.text.strip())
