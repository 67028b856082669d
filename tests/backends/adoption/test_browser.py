"""End to end: signed in on Django's own sessions, still signed in once the site runs ours."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.support.browser import BrowserTestCase, DemoServer, require_chromium

pytestmark = pytest.mark.browser


@contextmanager
def serving(server: DemoServer, stage: str) -> Iterator[None]:
    """Serve the demo at one stage of the switch: "stock" or "switched"."""
    server.env.update(ADOPTION_STAGE=stage)
    with server.serving():
        yield


class AdoptionBrowserTests(BrowserTestCase):
    @pytest.fixture(autouse=True)
    def use_demo_server(self) -> Iterator[None]:
        # A server of its own, stopped and started again on another configuration.
        require_chromium()
        with tempfile.TemporaryDirectory(prefix="sessionplus-adoption-") as directory:
            self.server = DemoServer(Path(directory))
            self.server.env.update(DJANGO_SETTINGS_MODULE="testproject.adoption_settings")
            self.server.manage("migrate", "--noinput")
            self.server.manage("create_demo_user")
            yield

    def signed_in_as(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "header").text

    def test_a_user_signed_in_on_djangos_engine_is_still_signed_in_after_the_restart(self):
        with serving(self.server, "stock"):
            self.open("/login/")
            self.driver.find_element(By.NAME, "username").send_keys("demo")
            self.driver.find_element(By.NAME, "password").send_keys("demo")
            self.click(By.XPATH, "//button[normalize-space()='Log in']")
            assert "Signed in as demo" in self.signed_in_as()
            self.click(By.XPATH, "//button[normalize-space()='+ Green tea']")
            assert "1 item" in self.driver.page_source
        assert self.stored() == {"django_session": 1, "sessionplus_session": 0}

        with serving(self.server, "switched"):
            self.open("/")
            assert "Signed in as demo" in self.signed_in_as()
            assert "1 item" in self.driver.page_source  # the cart came along
            assert "sessionplus.backends.db" in self.driver.page_source
        # Adopted: moved to sessionplus's table, gone from Django's.
        assert self.stored() == {"django_session": 0, "sessionplus_session": 1}

    def stored(self) -> dict[str, int]:
        with closing(sqlite3.connect(self.server.db)) as connection:
            return {
                table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("django_session", "sessionplus_session")
            }
