"""The read-only admin for sessionplus.Session, through the real admin site."""

from __future__ import annotations

import html
import re
from collections import deque
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth.models import Permission, User
from django.http import HttpResponse
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils.module_loading import import_string

from sessionplus.backends.db import SessionStore
from sessionplus.identifiers import public_id
from sessionplus.models import Session
from sessionplus.signals import session_ended

SESSIONS_URL = "/admin/sessionplus/session/"
LINK = re.compile(r'(?:href|action|src|data-[a-z-]+)="([^"]*)"')


def save_session(user_id: str, ip: str, **data: object) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.update_metadata(user_id=user_id, ip=ip, user_agent="Browser/1.0")
    session.save()
    return session


@override_settings(ROOT_URLCONF="tests.urls_admin")
class SessionAdminTests(TestCase):
    def setUp(self) -> None:
        self.viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
        self.viewer.user_permissions.add(
            Permission.objects.get(codename="view_session", content_type__app_label="sessionplus")
        )
        self.client.force_login(self.viewer)
        self.session = save_session("42", "192.0.2.7", cart=["apple", "pear"])
        self.key = self.session.session_key
        self.id = public_id(self.key)

    def url(self, view: str, *args: str) -> str:
        return reverse(f"admin:sessionplus_session_{view}", args=args)

    def test_the_list_shows_metadata_and_public_ids_linking_to_the_detail(self):
        content = self.client.get(self.url("changelist")).content.decode()
        assert "192.0.2.7" in content
        assert f'href="{self.url("change", self.id)}"' in content
        assert self.key not in content
        assert self.url("add") not in content

    def test_the_detail_shows_decoded_data_and_metadata_read_only(self):
        response = self.client.get(self.url("change", self.id))
        assert response.status_code == 200
        content = response.content.decode()
        assert "[&#x27;apple&#x27;, &#x27;pear&#x27;]" in content
        assert "Browser/1.0" in content
        assert self.id in content
        assert 'name="_save"' not in content

    def test_the_detail_hides_auth_keys_and_every_item_starting_with_an_underscore(self):
        admin_user = User.objects.create_superuser("root", "root@example.com", "pw")
        self.client.force_login(admin_user)
        stored = Session.objects.get(pk=self.client.session.session_key)
        stored_data = stored.get_decoded()
        content = self.client.get(
            self.url("change", public_id(stored.session_key))
        ).content.decode()
        assert stored_data["_auth_user_hash"] not in content
        assert "_auth_user_id" not in content
        assert "_auth_user_backend" not in content
        assert "(3 internal items not shown)" in content
        one_hidden = save_session("7", "192.0.2.8", _flag=True, shown="yes")
        url = self.url("change", public_id(one_hidden.session_key))
        content = self.client.get(url).content.decode()
        assert "_flag" not in content
        assert "&#x27;shown&#x27;: &#x27;yes&#x27;" in content
        assert "(1 internal item not shown)" in content

    def test_an_unknown_or_key_shaped_id_is_a_404_that_echoes_nothing(self):
        for object_id in ("0" * 32, self.key):
            for view in ("change", "history", "delete"):
                response = self.client.get(self.url(view, object_id))
                assert response.status_code == 404
                assert object_id.encode() not in response.content

    def test_nothing_can_be_added_changed_or_deleted(self):
        assert self.client.get(self.url("add")).status_code == 403
        response = self.client.post(self.url("change", self.id), {"user_id": "1"})
        assert response.status_code == 403
        response = self.client.post(self.url("delete", self.id), {"post": "yes"})
        assert response.status_code == 403
        assert Session.objects.get(pk=self.key).user_id == "42"

    def test_search_by_user_id_or_public_id(self):
        save_session("99", "198.51.100.1", a=1)
        content = self.client.get(self.url("changelist"), {"q": "42"}).content.decode()
        assert "192.0.2.7" in content
        assert "198.51.100.1" not in content
        content = self.client.get(self.url("changelist"), {"q": self.id}).content.decode()
        assert "192.0.2.7" in content
        assert "198.51.100.1" not in content

    def test_a_view_only_staff_user_walking_every_admin_url_never_meets_a_live_key(self):
        superuser = User.objects.create_superuser("root", "root@example.com", "pw")
        self.client.force_login(superuser)  # a superuser's live session, worth stealing
        self.client.force_login(self.viewer)
        save_session("99", "198.51.100.1", note="x")
        secrets = set()
        for stored in Session.objects.all():
            secrets.add(stored.session_key)
            secrets.update(
                value for key, value in stored.get_decoded().items() if key == "_auth_user_hash"
            )
        ids = [public_id(key) for key in Session.objects.values_list("session_key", flat=True)]
        start = [
            "/admin/sessionplus/",
            SESSIONS_URL,
            f"{SESSIONS_URL}?q=42",
            f"{SESSIONS_URL}?q={ids[0]}",
            f"{SESSIONS_URL}?_popup=1&_to_field=session_key",
            f"{SESSIONS_URL}?_to_field=session_key",
            f"{SESSIONS_URL}?o=1",
            f"{SESSIONS_URL}?o=-6.2",
            "/admin/autocomplete/?app_label=sessionplus&model_name=session&field_name=session_key",
            f"{SESSIONS_URL}{'0' * 32}/change/",
            f"{SESSIONS_URL}{self.key}/change/",
            *(f"{SESSIONS_URL}{id_}/{view}/" for id_ in ids for view in ("change", "history")),
            *(f"{SESSIONS_URL}{id_}/delete/" for id_ in ids),
        ]
        visited = self.walk(start, secrets)
        # The walk followed the links it found, filters and sort orders included.
        assert any("expire_date__gte" in url and url not in start for url in visited)
        assert any("o=" in url and url not in start for url in visited)
        assert len(visited) > len(start)

    def walk(self, start: list[str], secrets: set[str]) -> set[str]:
        """Get every URL in ``start`` and every sessions-admin link found, one per shape."""
        queue, visited, shapes = deque(start), set(), set()
        while queue:
            url = queue.popleft()
            if url in visited:
                continue
            visited.add(url)
            response = self.client.get(url)
            self.assert_holds_none(response, secrets, url)
            for link in LINK.findall(response.content.decode()):
                link = html.unescape(link)
                if link.startswith("?"):
                    link = urlsplit(url).path + link
                # Sort links combine columns without end: one link per path and parameters.
                parts = urlsplit(link)
                shape = (parts.path, frozenset(parse_qs(parts.query)))
                if link.startswith(SESSIONS_URL) and shape not in shapes:
                    shapes.add(shape)
                    queue.append(link)
        return visited

    def assert_holds_none(self, response: HttpResponse, secrets: set[str], url: str) -> None:
        text = response.content.decode() + str(response.headers) + str(response.cookies)
        assert response.status_code in (200, 302, 403, 404), url
        leaked = [secret for secret in secrets if secret in text]
        assert leaked == [], url


@override_settings(ROOT_URLCONF="tests.urls_admin")
class EndSelectedSessionsTests(TestCase):
    """The "End selected sessions" action: staff with the delete permission, through the engine."""

    def setUp(self) -> None:
        self.staff = User.objects.create_user("ender", password="pw", is_staff=True)
        self.staff.user_permissions.add(
            *Permission.objects.filter(
                codename__in=("view_session", "delete_session"),
                content_type__app_label="sessionplus",
            )
        )
        self.client.force_login(self.staff)
        self.ended: list[dict[str, object]] = []
        receiver = lambda **kwargs: self.ended.append(kwargs)  # noqa: E731
        session_ended.connect(receiver, weak=False)
        self.addCleanup(session_ended.disconnect, receiver)

    def end(self, *ids: str) -> HttpResponse:
        data = {"action": "end_selected_sessions", "index": "0", "_selected_action": list(ids)}
        return self.client.post(SESSIONS_URL, data, follow=True)

    def test_ends_the_selected_sessions_through_the_engine(self):
        for engine in ("db", "cached_db", "cache"):  # cache: the rows are db's
            with (
                self.subTest(engine),
                override_settings(SESSION_ENGINE=f"sessionplus.backends.{engine}"),
            ):
                store_class = import_string(f"sessionplus.backends.{engine}.SessionStore")
                if engine == "cache":
                    store_class = SessionStore
                chosen, kept = (store_class() for _ in range(2))
                for session in (chosen, kept):
                    session.update_metadata(user_id="42")
                    session["a"] = 1
                    session.save()
                assert store_class(chosen.session_key).get("a") == 1  # cached_db: now cached
                page = self.client.get(SESSIONS_URL).content.decode()
                assert 'value="end_selected_sessions"' in page
                assert f'value="{public_id(chosen.session_key)}"' in page
                response = self.end(public_id(chosen.session_key))
                assert "1 session ended." in response.content.decode()
                assert store_class().exists(chosen.session_key) is False
                assert store_class(kept.session_key).get("a") == 1
                assert self.ended[-1]["session_key"] == chosen.session_key
                assert self.ended[-1]["reason"] == "revoked"

    def test_staff_without_the_delete_permission_are_neither_offered_nor_obeyed(self):
        session = save_session("42", "192.0.2.7", a=1)
        self.staff.user_permissions.remove(
            Permission.objects.get(codename="delete_session", content_type__app_label="sessionplus")
        )
        self.staff = User.objects.get(pk=self.staff.pk)  # permissions are cached per instance
        page = self.client.get(SESSIONS_URL).content.decode()
        assert "end_selected_sessions" not in page
        self.end(public_id(session.session_key))
        assert SessionStore().exists(session.session_key) is True
        assert self.ended == []
