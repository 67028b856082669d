"""The "Your sessions" pages through the test client: HTML forms, CSRF, JSON, refusals."""

from __future__ import annotations

import re
from pathlib import Path

from django.test import Client, TestCase, override_settings

from sessionplus.identifiers import public_id
from tests.support.signed_in import IPHONE, SignedInMixin

PAGE = "/account/sessions/"
JSON = {"HTTP_ACCEPT": "application/json"}
TEMPLATES_DIR = Path(__file__).parent / "templates"


def end_url(identifier: str) -> str:
    return f"{PAGE}{identifier}/end/"


def csrf_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


class SessionsPageTests(SignedInMixin, TestCase):
    def signed_in(self, *args, **kwargs) -> Client:
        kwargs.setdefault("enforce_csrf_checks", True)
        return super().signed_in(*args, **kwargs)

    def page(self, client: Client) -> str:
        response = client.get(PAGE)
        assert response.status_code == 200
        return response.content.decode()

    def test_the_page_requires_a_signed_in_user(self):
        response = Client().get(PAGE)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={PAGE}"
        assert Client().get(PAGE, **JSON).status_code == 401
        assert Client().post(end_url("x" * 32), **JSON).status_code == 401

    def test_lists_every_device_with_this_one_marked_and_no_key_shown(self):
        laptop = self.signed_in(self.alice)
        phone = self.signed_in(self.alice, IPHONE)
        page = self.page(laptop)
        assert "Firefox 120 on Ubuntu" in page
        assert "Mobile Safari 17 on iOS 17" in page
        assert page.count("This device") == 1
        assert page.index("Firefox 120") < page.index("This device") < page.index("Mobile Safari")
        assert 'action="/account/sessions/end-others/"' in page
        assert f'action="{end_url(public_id(self.key_of(phone)))}"' in page
        for client in (laptop, phone):
            assert self.key_of(client) not in page
        assert "no-cache" in laptop.get(PAGE)["Cache-Control"]

    def test_the_list_answers_json_when_the_client_prefers_it(self):
        laptop = self.signed_in(self.alice)
        phone = self.signed_in(self.alice, IPHONE, REMOTE_ADDR="10.0.0.7")
        response = laptop.get(PAGE, HTTP_ACCEPT="application/json, text/html;q=0.9")
        assert response["Content-Type"] == "application/json"
        listed = response.json()["sessions"]
        assert [(s["id"], s["is_current"]) for s in listed] == [
            (public_id(self.key_of(laptop)), True),
            (public_id(self.key_of(phone)), False),
        ]
        assert listed[1]["ip"] == "10.0.0.7"
        assert listed[1]["device"] == "Mobile Safari 17 on iOS 17"
        assert listed[1]["last_activity"].endswith("Z")
        assert laptop.get(PAGE, HTTP_ACCEPT="text/html,*/*")["Content-Type"].startswith("text/html")

    def test_end_is_a_post_with_a_csrf_token(self):
        laptop, phone = self.signed_in(self.alice), self.signed_in(self.alice, IPHONE)
        url = end_url(public_id(self.key_of(phone)))
        assert laptop.get(url).status_code == 405
        assert laptop.post(url).status_code == 403  # no token
        assert self.who(phone) == "alice"
        response = laptop.post(url, {"csrfmiddlewaretoken": csrf_token(self.page(laptop))})
        assert response.status_code == 302
        assert response["Location"] == PAGE
        assert self.who(phone) == "anonymous"
        assert "1 session ended." in self.page(laptop)
        assert [(e["session_key"], e["reason"]) for e in self.ended] == [
            (self.key_of(phone), "revoked")
        ]

    def test_another_users_session_is_refused_like_one_that_does_not_exist(self):
        alices, bobs = self.signed_in(self.alice), self.signed_in(self.bob)
        token = csrf_token(self.page(alices))
        for identifier in (public_id(self.key_of(bobs)), "0" * 32, self.key_of(bobs)):
            response = alices.post(end_url(identifier), {"csrfmiddlewaretoken": token})
            assert response.status_code == 404
            response = alices.post(end_url(identifier), {"csrfmiddlewaretoken": token}, **JSON)
            assert response.status_code == 404
            assert response.json() == {"error": "No such session."}
        assert self.who(bobs) == "bob"
        assert self.ended == []

    def test_ending_this_devices_own_session_signs_it_out(self):
        laptop, phone = self.signed_in(self.alice), self.signed_in(self.alice)
        response = laptop.post(
            end_url(public_id(self.key_of(laptop))),
            {"csrfmiddlewaretoken": csrf_token(self.page(laptop))},
            **JSON,
        )
        assert response.json() == {"ended": 1}
        assert (self.who(laptop), self.who(phone)) == ("anonymous", "alice")
        assert [e["reason"] for e in self.ended] == ["logout"]

    def test_sign_out_everywhere_else_keeps_only_this_device(self):
        here = self.signed_in(self.alice)
        others = [self.signed_in(self.alice), self.signed_in(self.alice, IPHONE)]
        bobs = self.signed_in(self.bob)
        token = csrf_token(self.page(here))
        assert here.post(f"{PAGE}end-others/").status_code == 403
        response = here.post(f"{PAGE}end-others/", {"csrfmiddlewaretoken": token}, **JSON)
        assert response.json() == {"ended": 2}
        assert [self.who(c) for c in (here, *others, bobs)] == [
            "alice",
            "anonymous",
            "anonymous",
            "bob",
        ]
        response = here.post(f"{PAGE}end-others/", {"csrfmiddlewaretoken": token})
        assert response.status_code == 302
        page = self.page(here)
        assert "0 sessions ended." in page
        assert "Sign out everywhere else" not in page  # only this device is left

    @override_settings(
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [TEMPLATES_DIR],
                "APP_DIRS": True,
            }
        ]
    )
    def test_the_page_uses_the_projects_layout_when_it_overrides_sessionplus_base(self):
        page = self.page(self.signed_in(self.alice))
        assert page.startswith("<!-- the project's layout -->")
        assert "<title>Your sessions</title>" in page
        assert "<h1>Your sessions</h1>" in page
        assert "Firefox 120 on Ubuntu" in page
