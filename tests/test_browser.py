"""
End to end: headless Chromium against the demo site served by a real server process.

Debian's ``chromium`` and ``chromium-driver`` packages only: nothing downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.support.browser import BrowserTestCase, DemoServer, require_chromium

pytestmark = pytest.mark.browser

MARKER = "sessionplus_cookiecheck=1"


@pytest.fixture(scope="module")
def demo_server() -> Iterator[DemoServer]:
    """Serve the demo with ``manage.py runserver`` (a real server process) for this module."""
    require_chromium()
    with tempfile.TemporaryDirectory(prefix="sessionplus-browser-") as directory:
        server = DemoServer(Path(directory))
        server.manage("migrate", "--noinput")
        server.manage("create_demo_user")
        with server.serving():
            yield server


class CookiesAllowedTests(BrowserTestCase):
    def test_login_page_loads_without_the_marker_after_the_check_and_the_demo_user_logs_in(self):
        self.open("/login/")
        assert self.driver.current_url == f"{self.server.url}/login/"
        assert self.navigation() == {"redirects": 2, "status": 200}
        assert self.heading() == "Sign in"
        assert self.new_session_records() == 0

        self.driver.find_element(By.NAME, "username").send_keys("demo")
        self.driver.find_element(By.NAME, "password").send_keys("demo")
        self.click(By.XPATH, "//button[normalize-space()='Log in']")
        assert self.driver.current_url == f"{self.server.url}/"
        assert "Signed in as demo" in self.driver.find_element(By.TAG_NAME, "header").text
        assert self.new_session_records() == 1

    def test_visiting_and_checking_cookies_stores_no_session(self):
        self.open("/")
        self.open("/login/")
        self.open("/")
        assert self.heading() == "Your session"
        assert "No session yet" in self.driver.page_source
        assert self.new_session_records() == 0


class CookiesBlockedTests(BrowserTestCase):
    chrome_prefs = {"profile.default_content_setting_values.cookies": 2}

    def test_login_page_shows_cookies_required_after_one_hop_and_stores_nothing(self):
        self.open("/login/?next=/admin/")
        assert self.driver.current_url == f"{self.server.url}/login/?next=%2Fadmin%2F&{MARKER}"
        assert self.navigation() == {"redirects": 1, "status": 403}
        assert self.heading() == "Cookies required"
        assert self.new_session_records() == 0

    def test_signing_in_from_the_home_page_says_cookies_are_required_not_csrf_failed(self):
        # The home page's form skips the check; CsrfViewMiddleware rejects its POST, and
        # the demo's CSRF_FAILURE_VIEW answers with the page that says what to do.
        self.open("/")
        self.click(By.XPATH, "//button[normalize-space()='Log in as demo']")
        assert self.navigation() == {"redirects": 0, "status": 403}
        assert self.heading() == "Cookies required"
        assert "CSRF" not in self.driver.page_source
        assert self.new_session_records() == 0

    def test_try_again_checks_once_more_without_a_loop(self):
        self.open("/login/")
        self.click(By.LINK_TEXT, "Try again")
        assert self.driver.current_url == f"{self.server.url}/login/?{MARKER}"
        assert self.navigation() == {"redirects": 1, "status": 403}
        assert self.heading() == "Cookies required"
        assert self.new_session_records() == 0


class YourSessionsTests(BrowserTestCase):
    """Two browser profiles signed in as the demo user: one ends the other's session."""

    def sign_in(self) -> None:
        self.open("/login/")
        self.driver.find_element(By.NAME, "username").send_keys("demo")
        self.driver.find_element(By.NAME, "password").send_keys("demo")
        self.click(By.XPATH, "//button[normalize-space()='Log in']")
        assert "Signed in as demo" in self.header()

    def header(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "header").text

    def listed(self) -> list[str]:
        return [
            item.text
            for item in self.driver.find_elements(By.CSS_SELECTOR, ".sessionplus-sessions li")
        ]

    def test_ending_the_other_browsers_session_signs_it_out_on_its_next_request(self):
        # Other tests of this module signed the demo user in too: start from no session.
        with closing(sqlite3.connect(self.server.db)) as connection, connection:
            connection.execute("DELETE FROM sessionplus_session")
        laptop, phone = self.driver, self.new_browser()
        self.sign_in()
        self.driver = phone
        self.sign_in()
        self.driver = laptop
        self.click(By.LINK_TEXT, "your sessions")
        assert self.heading() == "Your sessions"
        this_device, other = self.listed()
        assert "This device" in this_device
        assert "This device" not in other
        assert "HeadlessChrome" in other  # parsed from the user agent
        self.save_screenshot()

        self.click(By.XPATH, "(//ul[@class='sessionplus-sessions']/li)[2]//button")
        assert "1 session ended." in self.driver.page_source
        assert len(self.listed()) == 1

        phone.refresh()
        assert "Not signed in" in phone.find_element(By.TAG_NAME, "header").text
        laptop.refresh()
        assert "Signed in as demo" in self.header()

    def save_screenshot(self) -> None:
        """
        Save the page as a small PNG: into a scratch directory, or the directory named by
        SESSIONPLUS_SCREENSHOTS (``SESSIONPLUS_SCREENSHOTS=docs/images`` renews the README's).
        """
        self.driver.set_window_size(900, 900)
        png = self.driver.find_element(By.TAG_NAME, "main").screenshot_as_png
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        scratch = tempfile.mkdtemp(prefix="sessionplus-screenshots-")
        self.addCleanup(shutil.rmtree, scratch, ignore_errors=True)
        path = Path(os.environ.get("SESSIONPLUS_SCREENSHOTS") or scratch, "your-sessions.png")
        path.write_bytes(png)
        assert path.stat().st_size < 100_000
