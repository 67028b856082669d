"""manage.py migratesessions_plus: what it refuses, and what it says when it cannot move."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.test import SimpleTestCase, override_settings
from django.utils import timezone

from tests.backends.adoption import DJANGO, PLUS, migrate, store_class


class MigrateSessionsPlusErrorTests(SimpleTestCase):
    def test_a_cache_that_cannot_list_its_keys_says_so_and_relies_on_read_through(self):
        with override_settings(SESSION_CACHE_ALIAS="default"):  # locmem
            out, err, code = migrate("--from", DJANGO + "cache", "--to", PLUS + "cache")
        assert (err, code) == ("", 0)
        assert out.startswith(f"{DJANGO}cache cannot list its sessions")
        assert "SESSIONPLUS_PREVIOUS_ENGINE" in out

    @override_settings(
        SESSION_ENGINE=PLUS + "cache",
        SESSIONPLUS_PREVIOUS_ENGINE=DJANGO + "cache",
        SESSION_CACHE_ALIAS="default",
    )
    def test_a_session_in_a_cache_without_readable_expiry_is_adopted_as_if_saved_now(self):
        old = store_class(DJANGO + "cache")()
        old["cart"] = [1]
        old.save()
        session = store_class(PLUS + "cache")(old.session_key)
        assert session["cart"] == [1]
        expected = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
        assert abs(session.get_expiry_date() - expected) < timedelta(seconds=5)

    def test_signed_cookies_need_no_move(self):
        _, err, code = migrate("--from", DJANGO + "signed_cookies", "--to", PLUS + "signed_cookies")
        assert code == 1
        assert "Sessions live in signed cookies" in err

    def test_an_unknown_engine_is_an_error(self):
        _, err, code = migrate("--from", "no.such.engine")
        assert code == 1
        assert err.startswith("Unknown session engine 'no.such.engine'")

    def test_moving_an_engine_onto_itself_is_an_error(self):
        _, err, code = migrate("--from", PLUS + "db", "--to", PLUS + "db")
        assert (err, code) == (f"--from and --to are the same engine ({PLUS}db).", 1)

    @override_settings(SESSIONPLUS_REDIS_ALIAS="nowhere")
    def test_a_store_that_cannot_be_reached_is_an_error(self):
        from django.core.cache import caches

        dead = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
        with override_settings(CACHES={**_caches(), "nowhere": dead}):
            caches.close_all()
            _, err, code = migrate("--from", PLUS + "redis", "--to", PLUS + "db")
        assert code == 1
        assert err.startswith(f"Cannot move sessions from {PLUS}redis to {PLUS}db: ")


def _caches() -> dict[str, Any]:
    from django.conf import settings

    return settings.CACHES
