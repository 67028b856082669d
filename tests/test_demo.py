"""Smoke tests that keep the demo site (testproject/) working."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import SimpleTestCase, TestCase, modify_settings, override_settings

from testproject import settings as demo_settings
from tests.support.services import repo_root

MARKER = "sessionplus_cookiecheck=1"


def run_demo(*args: str, db: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """Run the demo's manage.py in its own process, with its own settings and database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SESSIONPLUS_DEMO_ENGINE", "REDIS_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="testproject.settings", SESSIONPLUS_DEMO_DB=str(db), **environ
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=repo_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class DemoCommandTests(SimpleTestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.db = Path(directory.name) / "demo.sqlite3"

    def test_demo_project_passes_its_system_checks(self):
        result = run_demo("check", "--fail-level", "WARNING", db=self.db)
        assert result.returncode == 0, result.stderr
        assert "System check identified no issues" in result.stdout

    def demo_setting(self, expression: str, **environ: str) -> str:
        code = f"from django.conf import settings; print({expression})"
        result = run_demo("shell", "--no-imports", "-c", code, db=self.db, **environ)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def test_engine_is_db_with_a_local_memory_cache_by_default(self):
        assert self.demo_setting("settings.SESSION_ENGINE") == "sessionplus.backends.db"
        assert self.demo_setting("settings.CACHES['default']['BACKEND']").endswith("LocMemCache")

    def test_engine_comes_from_the_environment(self):
        for engine in ("cache", "cached_db", "file", "signed_cookies"):
            setting = self.demo_setting("settings.SESSION_ENGINE", SESSIONPLUS_DEMO_ENGINE=engine)
            assert setting == f"sessionplus.backends.{engine}"

    def test_redis_url_makes_the_cache_redis(self):
        url = "redis://127.0.0.1:1/3"
        expression = "settings.SESSION_ENGINE, settings.CACHES['default']['LOCATION']"
        setting = self.demo_setting(expression, SESSIONPLUS_DEMO_ENGINE="redis", REDIS_URL=url)
        assert setting == f"sessionplus.backends.redis {url}"

    def test_every_engine_passes_the_system_checks(self):
        for engine, environ in (
            ("cache", {}),
            ("cached_db", {}),
            ("file", {}),
            ("signed_cookies", {}),
            ("redis", {"REDIS_URL": "redis://127.0.0.1:1/3"}),
        ):
            result = run_demo(
                "check",
                "--fail-level",
                "WARNING",
                db=self.db,
                SESSIONPLUS_DEMO_ENGINE=engine,
                **environ,
            )
            assert result.returncode == 0, (engine, result.stderr)

    def test_redis_engine_without_redis_url_is_refused(self):
        result = run_demo("check", db=self.db, SESSIONPLUS_DEMO_ENGINE="redis")
        assert result.returncode != 0
        assert "SESSIONPLUS_DEMO_ENGINE=redis needs REDIS_URL." in result.stderr

    def test_unknown_engine_is_refused(self):
        result = run_demo("check", db=self.db, SESSIONPLUS_DEMO_ENGINE="memcache")
        assert result.returncode != 0
        assert "SESSIONPLUS_DEMO_ENGINE should be one of db, cache," in result.stderr

    def test_create_demo_user_can_run_again(self):
        migrate = run_demo("migrate", "--noinput", db=self.db)
        assert migrate.returncode == 0, migrate.stderr
        first = run_demo("create_demo_user", db=self.db)
        again = run_demo("create_demo_user", db=self.db)
        assert (first.returncode, first.stderr) == (0, "")
        assert first.stdout == "Created the demo user: demo / demo.\n"
        assert (again.returncode, again.stderr) == (0, "")
        assert again.stdout == "The demo user demo / demo is ready.\n"


@override_settings(ROOT_URLCONF=demo_settings.ROOT_URLCONF, TEMPLATES=demo_settings.TEMPLATES)
@modify_settings(INSTALLED_APPS={"append": "django.contrib.admin"})  # the demo links to it
class DemoPageTests(TestCase):
    """The demo's pages through the test client, with the suite's session engine."""

    def log_in(self):
        get_user_model().objects.create_user("demo", password="demo")
        self.client.get("/")  # hands out the cookie check the login form relies on
        return self.client.post("/login/", {"username": "demo", "password": "demo"})

    def test_home_page_shows_an_empty_session_and_the_engine(self):
        response = self.client.get("/")
        assert response.status_code == 200
        page = response.content.decode()
        assert "No session yet" in page
        assert f"engine <code>{settings.SESSION_ENGINE}</code>" in page
        assert "Your cart is empty." in page
        assert "Log in as demo" in page
        assert "csrfmiddlewaretoken" in page

    def test_home_page_answers_head(self):
        response = self.client.head("/")
        assert response.status_code == 200

    def test_adding_and_removing_cart_items_shows_the_session(self):
        response = self.client.post("/cart/add/", {"item": "coffee"}, follow=True)
        self.client.post("/cart/add/", {"item": "coffee"})
        response = self.client.post("/cart/add/", {"item": "tea"}, follow=True)
        page = response.content.decode()
        assert "Added Green tea to the cart." in page
        assert "\N{MULTIPLICATION SIGN} 2" in page
        assert "3 items" in page
        key = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        assert f"{key[:8]}…" in page
        assert key not in page  # only a prefix is ever shown
        assert "&#x27;coffee&#x27;: 2" in page  # the stored data, as stored
        response = self.client.post("/cart/remove/", {"item": "coffee"}, follow=True)
        assert "2 items" in response.content.decode()
        self.client.post("/cart/remove/", {"item": "coffee"})
        response = self.client.post("/cart/remove/", {"item": "tea"}, follow=True)
        page = response.content.decode()
        assert "Your cart is empty." in page
        assert "<code>cart</code></th><td><code>{}</code>" in page

    def test_unknown_cart_items_are_rejected(self):
        assert self.client.post("/cart/add/", {"item": "caviar"}).status_code == 400
        assert self.client.post("/cart/remove/", {"item": ""}).status_code == 400

    def test_login_page_checks_cookies_and_drops_the_marker(self):
        response = self.client.get("/login/", follow=True)
        assert response.redirect_chain == [(f"?{MARKER}", 302), ("./", 302)]
        assert "Sign in" in response.content.decode()

    def test_login_page_without_cookies_explains_how_to_enable_them(self):
        response = self.client.get(f"/login/?{MARKER}")
        assert response.status_code == 403
        assert "Cookies required" in response.content.decode()

    def test_one_click_login_from_the_home_page_then_logout(self):
        response = self.log_in()
        assert response.status_code == 302
        assert response["Location"] == "/"
        page = self.client.get("/").content.decode()
        assert "Signed in as <strong>demo</strong>" in page
        assert "_auth_user_id" in page
        response = self.client.post("/logout/", follow=True)
        assert "Not signed in" in response.content.decode()

    def test_login_page_sends_a_signed_in_user_home(self):
        self.log_in()
        response = self.client.get("/login/")
        assert response.status_code == 302
        assert response["Location"] == "/"

    def test_wrong_password_shows_the_form_again(self):
        get_user_model().objects.create_user("demo", password="demo")
        self.client.get("/login/", follow=True)
        response = self.client.post("/login/", {"username": "demo", "password": "nope"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    def test_home_page_hands_out_the_cookie_check_only_once(self):
        first = self.client.get("/")
        second = self.client.get("/")
        assert "sessionplus_cookiecheck" in first.cookies
        assert "sessionplus_cookiecheck" not in second.cookies


# The same pages on every other engine the demo offers.
@override_settings(SESSION_ENGINE="sessionplus.backends.cache")
class CacheDemoPageTests(DemoPageTests):
    pass


@override_settings(SESSION_ENGINE="sessionplus.backends.cached_db")
class CachedDbDemoPageTests(DemoPageTests):
    pass


@override_settings(SESSION_ENGINE="sessionplus.backends.file")
class FileDemoPageTests(DemoPageTests):
    pass


@override_settings(SESSION_ENGINE="sessionplus.backends.signed_cookies")
class SignedCookiesDemoPageTests(DemoPageTests):
    pass


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_ENGINE="sessionplus.backends.redis")
class RedisDemoPageTests(DemoPageTests):
    pass
