"""
A read-only admin for stored sessions: metadata and decoded data, never a usable key.

Whoever reads a session key can take the session over, so the admin never holds one: the
rows its queryset yields carry the session's public id (``sessionplus.identifiers``) in
place of the key, so every link, title, popup value and autocomplete answer Django builds
from an object's primary key names the public id, and a URL's id is looked up through the
indexed ``public_id`` column.
"""

from __future__ import annotations

import pprint
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.db.models.query import ModelIterable
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.module_loading import import_string

from sessionplus.backends.db import SessionStore as DbStore
from sessionplus.identifiers import public_id
from sessionplus.models import Session
from sessionplus.sessions import end_keys

# The stubs make these classes generic; Django's take no type parameters at run time.
if TYPE_CHECKING:
    _SessionRows = ModelIterable[Session]
    _SessionModelAdmin = admin.ModelAdmin[Session]
else:
    _SessionRows = ModelIterable
    _SessionModelAdmin = admin.ModelAdmin


class _PublicIdRows(_SessionRows):
    """Yield sessions whose key reads as their public id (the instances are never saved)."""

    def __iter__(self) -> Iterator[Session]:
        for row in super().__iter__():
            row.public_id = row.session_key = public_id(row.session_key)
            yield row


def _engine() -> Any:
    """Return the engine keeping ``Session`` rows: cached_db's (its cache forgets too), or db's."""
    engine = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    return (
        engine if issubclass(engine, DbStore) and engine.get_model_class() is Session else DbStore
    )


@admin.register(Session)
class SessionAdmin(_SessionModelAdmin):
    """
    List and inspect sessions; never add, change or delete them here.

    A row deleted from the admin would outlive its copy in the cached_db engine's cache,
    and an edited one would bypass the engine's encoding: the "End selected sessions"
    action (staff with the delete permission) ends sessions through the engine instead.

    Decoded data hides the keys ``is_hidden_data_key()`` names: by default every key
    starting with ``_``, which covers Django's auth keys (the user's id, password hash
    and backend). Override it to show more or less.
    """

    list_display = (
        "public_id",
        "user_id",
        "ip",
        "created_at",
        "last_activity",
        "expire_date",
    )
    list_filter = ("expire_date",)
    search_fields = ("user_id", "=public_id")
    ordering = ("-expire_date",)
    fields = (
        "public_id",
        "user_id",
        "ip",
        "user_agent",
        "created_at",
        "last_activity",
        "expire_date",
        "data",
    )
    readonly_fields = fields
    actions = ["end_selected_sessions"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Session]:
        queryset = super().get_queryset(request)
        queryset._iterable_class = _PublicIdRows
        return queryset

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Session:
        # A 404 rather than Django's redirect, whose message would repeat the id: a URL
        # naming an unknown session (or holding a key by mistake) echoes nothing.
        session = self.get_queryset(request).filter(public_id=object_id).first()
        if session is None:
            raise Http404("No such session.")
        return session

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        return False

    def has_end_permission(self, request: HttpRequest) -> bool:
        """Ending sessions is deleting them: staff with the delete permission may."""
        codename = get_permission_codename("delete", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Session], **kwargs: Any
    ) -> HttpResponse | None:
        # The checkboxes carry public ids (a row's pk reads as one), and Django selects
        # rows by pk: translate them to keys on the server, where keys may be.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        keys = Session.objects.filter(public_id__in=selected).values_list("session_key", flat=True)
        post = request.POST.copy()
        post.setlist(helpers.ACTION_CHECKBOX_NAME, list(keys))
        # The stubs type request.POST as immutable; Django reads whatever QueryDict is there.
        request.POST = post  # type: ignore[assignment]
        # Django 6.1 passes action_location (changelist or change form) on.
        return super().response_action(request, queryset, **kwargs)

    @admin.action(description="End selected sessions", permissions=["end"])
    def end_selected_sessions(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        """End the sessions through the engine, so cached_db's cache forgets them too."""
        keys = list(queryset.values_list("session_key", flat=True))
        ended = end_keys(_engine(), keys, "revoked", request)
        self.message_user(request, f"{ended} session{'s' if ended != 1 else ''} ended.")

    def is_hidden_data_key(self, key: str) -> bool:
        """Return whether the change page leaves the data item ``key`` out."""
        return key.startswith("_")

    @admin.display(description="data")
    def data(self, obj: Session) -> str:
        decoded = obj.get_decoded()
        shown = {key: value for key, value in decoded.items() if not self.is_hidden_data_key(key)}
        hidden = len(decoded) - len(shown)
        note = f"({hidden} internal item{'s' if hidden != 1 else ''} not shown)" if hidden else ""
        return format_html("<pre>{}</pre>{}", pprint.pformat(shown, width=80), note)
