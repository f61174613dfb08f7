"""The admin console in a real browser: login, the pool, a filter, a batch to its end, the playground."""

from __future__ import annotations

import json
import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import ADMIN_KEY, CLIENT_KEY, screenshot

POOL = [f"sim-basic-console-{i:02d}-{'x' * 20}" for i in range(24)] + [
    f"sim-super-console-{i:02d}-{'y' * 20}" for i in range(6)
]


def wait(driver, timeout: float = 15):
    return WebDriverWait(driver, timeout)


def login(driver, base: str, key: str) -> None:
    driver.get(base + "/admin")
    field = wait(driver).until(EC.visibility_of_element_located((By.ID, "admin-key")))
    field.clear()
    field.send_keys(key, Keys.ENTER)


@pytest.fixture(scope="module")
def logged_in(browser, console_gateway):
    browser.get(console_gateway.url + "/admin")
    wait(browser).until(
        lambda d: (
            d.find_elements(By.ID, "accounts-table") or d.find_element(By.ID, "admin-key").is_displayed()
        )
    )
    if not browser.find_elements(By.ID, "accounts-table"):
        login(browser, console_gateway.url, ADMIN_KEY)
    wait(browser).until(EC.visibility_of_element_located((By.ID, "accounts-table")))
    return browser


def test_a_wrong_key_is_refused_and_the_right_one_opens_the_console(browser, console_gateway):
    login(browser, console_gateway.url, "not-the-key")
    error = wait(browser).until(EC.visibility_of_element_located((By.ID, "login-error")))
    wait(browser).until(lambda d: "Wrong admin key" in error.text)
    assert not browser.find_element(By.ID, "nav").is_displayed()
    screenshot(browser, "login")
    login(browser, console_gateway.url, ADMIN_KEY)
    wait(browser).until(EC.visibility_of_element_located((By.ID, "accounts-table")))
    assert browser.find_element(By.ID, "nav").is_displayed()
    cookie = browser.get_cookie("gg_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: no script can read it


def test_import_filter_and_a_batch_refresh_to_its_end(logged_in, console_gateway):
    d = logged_in
    entries = [{"token": t, "tier": t.split("-")[1], "tags": ["eu"] if "super" in t else []} for t in POOL]
    d.execute_script(
        "arguments[0].value = arguments[1]", d.find_element(By.ID, "i-text"), json.dumps(entries)
    )
    d.find_element(By.ID, "import").click()
    result = d.find_element(By.ID, "import-result")
    wait(d).until(lambda _: "Added" in result.text)
    assert result.text.startswith("Added 30, skipped 0") and "invalid 0" in result.text
    rows = d.find_elements(By.CSS_SELECTOR, "#accounts-table tbody tr")
    assert len(rows) == 30
    html = d.page_source
    assert not any(token in html for token in POOL)  # masked only, never a full token
    assert "sim-…xxxx" in html  # the first and last four characters only

    Select(d.find_element(By.ID, "f-tier")).select_by_value("super")
    d.find_element(By.ID, "f-tier").submit()
    wait(d).until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#accounts-table tbody tr")) == 6)
    assert all("super" in r.text for r in d.find_elements(By.CSS_SELECTOR, "#accounts-table tbody tr"))

    Select(d.find_element(By.ID, "f-tier")).select_by_value("")
    d.find_element(By.ID, "f-tag").send_keys("eu")
    d.find_element(By.ID, "f-tag").submit()
    wait(d).until(lambda _: "page 1 · 6 shown" in d.find_element(By.ID, "page-info").text)
    d.find_element(By.ID, "f-tag").clear()
    d.find_element(By.ID, "f-tier").submit()
    wait(d).until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#accounts-table tbody tr")) == 30)
    d.find_element(By.CSS_SELECTOR, "#accounts-table thead input[type=checkbox]").click()
    assert d.find_element(By.ID, "selection-info").text == "30 selected"
    Select(d.find_element(By.ID, "b-action")).select_by_value("refresh")
    d.find_element(By.ID, "run-batch").click()
    status = wait(d).until(EC.visibility_of_element_located((By.ID, "batch-status")))
    wait(d, 30).until(lambda _: "finished" in status.text)
    assert "30 of 30 done, 30 ok, 0 failed" in status.text
    bar = d.find_element(By.ID, "batch-progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "30"
    assert len(d.find_elements(By.CSS_SELECTOR, "#batch-results li.ok")) == 30
    screenshot(d, "accounts")
    assert not any(token in d.page_source for token in POOL)


def test_the_playground_streams_an_answer_with_its_reasoning(logged_in, console_gateway):
    d = logged_in
    d.get(console_gateway.url + "/admin#chat")
    key = wait(d).until(EC.visibility_of_element_located((By.ID, "client-key")))
    key.clear()
    key.send_keys(CLIENT_KEY, Keys.TAB)
    wait(d).until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#model option")) > 1)
    d.find_element(By.ID, "prompt").send_keys("What is a tide? #sim tokens=40 think=12")
    d.find_element(By.ID, "send").click()
    answer = wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".msg.assistant .answer")))
    wait(d, 30).until(lambda _: d.find_element(By.ID, "send").is_enabled() and answer.text.strip())
    reasoning = d.find_element(By.CSS_SELECTOR, ".msg.assistant .reasoning")
    assert reasoning.get_attribute("textContent").strip()
    assert reasoning.get_attribute("textContent").strip() not in answer.text
    d.find_element(By.CSS_SELECTOR, ".msg.assistant summary").click()
    screenshot(d, "chat")


def test_the_image_page_makes_a_wall(logged_in, console_gateway):
    d = logged_in
    d.get(console_gateway.url + "/admin#images")
    wait(d).until(EC.visibility_of_element_located((By.ID, "img-prompt"))).send_keys("a lighthouse at dusk")
    d.find_element(By.ID, "generate").click()
    wait(d, 30).until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#wall img")) == 2)
    wait(d).until(
        lambda _: all(
            d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
            for i in d.find_elements(By.CSS_SELECTOR, "#wall img")
        )
    )
    screenshot(d, "images")


def test_media_page_lists_the_wall_and_deletes(logged_in, console_gateway):
    d = logged_in
    d.get(console_gateway.url + "/admin#media")
    summary = wait(d).until(EC.visibility_of_element_located((By.ID, "media-summary")))
    wait(d).until(lambda _: "2 file(s)" in summary.text)
    screenshot(d, "media")
    d.find_element(By.CSS_SELECTOR, "#media-table tbody button").click()
    d.switch_to.alert.accept()
    wait(d).until(lambda _: "1 file(s)" in summary.text)


def test_jobs_page_shows_progress_and_errors(logged_in, console_gateway):
    from core.ports import Job, JobStatus

    jobs = console_gateway.deps.job_store
    now = time.time()
    console_gateway.call(
        jobs.create(
            Job(
                "video_console_1",
                "video",
                JobStatus.IN_PROGRESS,
                {"model": "grok-imagine-video", "prompt": "a cat surfing", "seconds": "6"},
                now - 30,
                now - 5,
                progress=40,
                attempts=1,
            )
        )
    )
    console_gateway.call(
        jobs.create(
            Job(
                "video_console_2",
                "video",
                JobStatus.FAILED,
                {"model": "grok-imagine-video", "prompt": "a storm"},
                now - 90,
                now - 60,
                error_code="content_moderated",
                error_message="The upstream refused the prompt.",
                attempts=2,
            )
        )
    )
    d = logged_in
    d.get(console_gateway.url + "/admin#jobs")
    table = wait(d).until(EC.visibility_of_element_located((By.ID, "jobs-table")))
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert "video_console_1" in rows[0].text and "40%" in rows[0].text
    assert "content_moderated: The upstream refused the prompt." in rows[1].text
    screenshot(d, "jobs")


def test_settings_page_edits_a_behaviour_override(logged_in, console_gateway):
    d = logged_in
    d.get(console_gateway.url + "/admin#settings")
    field = wait(d).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "input[aria-label=retry_budget]"))
    )
    assert "set (hidden)" in d.find_element(By.ID, "deployment-table").text  # the admin key, masked
    assert ADMIN_KEY not in d.page_source and CLIENT_KEY not in d.page_source
    field.clear()
    field.send_keys("4", Keys.TAB)
    d.find_element(By.ID, "save-settings").click()
    status = d.find_element(By.ID, "settings-status")
    wait(d).until(lambda _: "Saved" in status.text)
    assert console_gateway.deps.settings.retry_budget == 4
    row = d.find_element(By.CSS_SELECTOR, "input[aria-label=retry_budget]").find_element(By.XPATH, "../..")
    assert "override (console)" in row.text and "deployed: 2" in row.text
    screenshot(d, "settings")


def test_voice_page_shows_the_connection_details(logged_in, console_gateway):
    d = logged_in
    d.get(console_gateway.url + "/admin#voice")
    wait(d).until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#voice-account option")) > 0)
    d.find_element(By.ID, "voice-go").click()
    details = wait(d).until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#voice-details dl")))
    assert "wss://livekit.grok.com" in details.text and "room-" in details.text
    assert not any(token in d.page_source for token in POOL)
    screenshot(d, "voice")


def test_dark_and_phone(logged_in, console_gateway):
    """Dark by `prefers-color-scheme`, and readable at a phone's width (no page-wide scroll)."""
    d = logged_in
    d.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    try:
        d.get(console_gateway.url + "/admin#accounts")
        wait(d).until(EC.visibility_of_element_located((By.ID, "accounts-table")))
        background = d.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(20, 22, 26)"
        screenshot(d, "accounts-dark")
        d.set_window_size(390, 844)
        d.get(console_gateway.url + "/admin#chat")
        wait(d).until(EC.visibility_of_element_located((By.ID, "prompt")))
        assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        d.get(console_gateway.url + "/admin#accounts")
        wait(d).until(EC.visibility_of_element_located((By.ID, "accounts-table")))
        assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(d, "accounts-phone-dark")
    finally:
        d.set_window_size(1280, 900)
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_keyboard_only_login_and_navigation(browser, console_gateway):
    d = browser
    d.delete_all_cookies()
    d.get(console_gateway.url + "/admin")
    wait(d).until(EC.visibility_of_element_located((By.ID, "admin-key")))
    active = d.switch_to.active_element
    assert active.get_attribute("id") == "admin-key"  # focus starts in the one field
    active.send_keys(ADMIN_KEY, Keys.ENTER)
    wait(d).until(EC.visibility_of_element_located((By.ID, "accounts-table")))
    link = d.find_element(By.CSS_SELECTOR, "nav a[href='#settings']")
    for _ in range(80):  # Tab along (wrapping round the page) until the Settings link has the focus
        ActionChains(d).send_keys(Keys.TAB).perform()
        if d.switch_to.active_element == link:
            break
    assert d.switch_to.active_element == link
    link.send_keys(Keys.ENTER)
    wait(d).until(EC.visibility_of_element_located((By.ID, "behaviour-table")))


def test_the_playground_shows_tool_calls(logged_in, console_gateway):
    d = logged_in
    d.get(console_gateway.url + "/admin#chat")
    wait(d).until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#model option")) > 1)
    d.find_element(By.ID, "tools").click()
    d.find_element(By.ID, "prompt").send_keys('Weather in Oslo? #sim tool=get_weather args={"city": "Oslo"}')
    d.find_element(By.ID, "send").click()
    calls = wait(d, 30).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, ".msg.assistant .tools pre"))
    )
    wait(d).until(lambda _: d.find_element(By.ID, "send").is_enabled())
    assert calls.text.replace(" ", "") == 'get_weather({"city":"Oslo"})'
    assert "finish: tool_calls" in d.find_element(By.CSS_SELECTOR, ".msg.assistant .muted").text


def test_keys_page_makes_a_key_shows_it_once_and_its_use(logged_in, console_gateway):
    import httpx
    from selenium.common.exceptions import StaleElementReferenceException

    d = logged_in

    def steady(timeout: float = 15):  # the tables are redrawn whole: a row found may go stale
        return WebDriverWait(d, timeout, ignored_exceptions=[StaleElementReferenceException])

    def row_of(table: str):
        return next(
            r for r in d.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr") if "browser-team" in r.text
        )

    d.get(console_gateway.url + "/admin#keys")
    wait(d).until(EC.visibility_of_element_located((By.ID, "key-form")))
    d.find_element(By.ID, "k-name").send_keys("browser-team")
    d.find_element(By.ID, "k-models").send_keys("grok-4.20-*")
    d.find_element(By.ID, "k-rpm").send_keys("30")
    d.find_element(By.ID, "create-key").click()
    secret = wait(d).until(EC.visibility_of_element_located((By.ID, "new-secret"))).text
    assert secret.startswith("sk-gg-")
    wait(d).until(lambda _: "browser-team" in d.find_element(By.ID, "keys-table").text)
    row = next(
        r for r in d.find_elements(By.CSS_SELECTOR, "#keys-table tbody tr") if "browser-team" in r.text
    )
    assert secret not in row.text and "…" in row.text and "grok-4.20-*" in row.text and "30" in row.text
    # The key serves a client; its use shows in the usage table and the figures.
    reply = httpx.post(
        console_gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "grok-4.20-0309", "messages": [{"role": "user", "content": "hi #sim tokens=3"}]},
        timeout=30,
    )
    assert reply.status_code in (200, 503)  # 503 when the console tests' pool is empty: still booked
    d.refresh()
    wait(d).until(lambda _: "browser-team" in d.find_element(By.ID, "usage-table").text)
    usage = next(
        r for r in d.find_elements(By.CSS_SELECTOR, "#usage-table tbody tr") if "browser-team" in r.text
    )
    assert usage.find_elements(By.TAG_NAME, "meter")
    assert "Requests (this instance)" in d.find_element(By.ID, "figures").text
    assert secret not in d.page_source  # shown once, gone after a reload
    screenshot(d, "keys")
    revoke = row = next(
        r for r in d.find_elements(By.CSS_SELECTOR, "#keys-table tbody tr") if "browser-team" in r.text
    )
    revoke.find_element(By.TAG_NAME, "button").click()
    d.switch_to.alert.accept()
    steady().until(lambda _: "browser-team" not in d.find_element(By.ID, "keys-table").text)
