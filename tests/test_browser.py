"""
End to end: headless Chromium against the demo site served by a real server process.

Debian's ``chromium`` and ``chromium-driver`` packages only: nothing downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.test import SimpleTestCase
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.services import free_port, missing_service, repo_root

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
MARKER = "sessionplus_cookiecheck=1"
WAIT_SECONDS = 15


class DemoServer:
    """The demo site served on a loopback port, with its own SQLite database."""

    def __init__(self, directory: Path) -> None:
        self.db = directory / "demo.sqlite3"
        self.log_path = directory / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("SESSIONPLUS_DEMO_ENGINE", "REDIS_URL")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="testproject.settings", SESSIONPLUS_DEMO_DB=str(self.db)
        )

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "manage.py", *args]

    def manage(self, *args: str) -> None:
        result = subprocess.run(
            self.command(*args),
            cwd=repo_root(),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed: {result.stderr}"

    def listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def wait_until_listening(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 30
        while not self.listening():
            # On failure, the server's own output says why.
            assert process.poll() is None, self.log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, self.log_path.read_text(errors="replace")
            time.sleep(0.1)

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Serve the demo with ``manage.py runserver`` (a real server process) meanwhile."""
        runserver = self.command("runserver", f"127.0.0.1:{self.port}", "--noreload")
        with (
            open(self.log_path, "ab") as log,
            subprocess.Popen(
                runserver, cwd=repo_root(), env=self.env, stdout=log, stderr=subprocess.STDOUT
            ) as process,
        ):
            try:
                self.wait_until_listening(process)
                yield
            finally:
                process.terminate()

    def session_records(self) -> int:
        with closing(sqlite3.connect(self.db)) as connection:
            (count,) = connection.execute("SELECT COUNT(*) FROM sessionplus_session").fetchone()
        return count


@pytest.fixture(scope="module")
def demo_server() -> Iterator[DemoServer]:
    """Serve the demo with ``manage.py runserver`` (a real server process) for this module."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        missing_service(
            f"Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): "
            "apt-get install chromium chromium-driver"
        )
    with tempfile.TemporaryDirectory(prefix="sessionplus-browser-") as directory:
        server = DemoServer(Path(directory))
        server.manage("migrate", "--noinput")
        server.manage("create_demo_user")
        with server.serving():
            yield server


class BrowserTestCase(SimpleTestCase):
    """One fresh headless Chromium profile per test."""

    chrome_prefs: dict[str, Any] = {}

    @pytest.fixture(autouse=True)
    def use_demo_server(self, demo_server: DemoServer) -> None:
        self.server = demo_server

    def setUp(self) -> None:
        self.driver = self.new_browser()
        self.records_before = self.server.session_records()

    def new_browser(self) -> webdriver.Chrome:
        """Start Chromium with a profile of its own: its own cookies, as a second device has."""
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        profile = tempfile.mkdtemp(prefix="sessionplus-chromium-")
        self.addCleanup(shutil.rmtree, profile, ignore_errors=True)
        options.add_argument(f"--user-data-dir={profile}")
        if self.chrome_prefs:
            options.add_experimental_option("prefs", self.chrome_prefs)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.addCleanup(driver.quit)
        driver.set_page_load_timeout(WAIT_SECONDS)
        return driver

    def open(self, path: str) -> None:
        self.driver.get(self.server.url + path)

    def navigation(self) -> dict[str, Any]:
        """Return the browser's own account of the last navigation: redirects and final status."""
        return self.driver.execute_script(
            "const [entry] = performance.getEntriesByType('navigation');"
            "return {redirects: entry.redirectCount, status: entry.responseStatus};"
        )

    def click(self, by: str, value: str) -> None:
        """Click what leads to another page and wait until that page has loaded."""
        self.driver.execute_script("window.sessionplusOldPage = true;")
        self.driver.find_element(by, value).click()
        WebDriverWait(self.driver, WAIT_SECONDS).until(
            lambda driver: driver.execute_script(
                "return window.sessionplusOldPage === undefined"
                " && document.readyState === 'complete';"
            )
        )

    def heading(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def new_session_records(self) -> int:
        return self.server.session_records() - self.records_before


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
