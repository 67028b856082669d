"""
A real headless Chromium (Debian's ``chromium`` and ``chromium-driver``; nothing downloads a
browser) and the demo site served by a real server process, for the end-to-end tests.
"""

from __future__ import annotations

import os
import shutil
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

from tests.support.loopback import answers, free_port
from tests.support.services import missing_service, repo_root

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
WAIT_SECONDS = 15


def require_chromium() -> None:
    """Fail (in CI) or skip unless Debian's Chromium and its driver are installed."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        missing_service(
            f"Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): "
            "apt-get install chromium chromium-driver"
        )


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

    def wait_until_listening(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 30
        while not answers(self.port):
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
