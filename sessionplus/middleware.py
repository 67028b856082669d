"""Django's SessionMiddleware, natively sync and async, with timeouts, touch, binding and 503s."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from http.cookies import Morsel
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import SESSION_KEY as USER_ID_KEY
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.http.response import ResponseHeaders
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import http_date
from django.utils.log import log_response

from sessionplus import lifecycle
from sessionplus.backends.base import LifecycleHooks, SessionPlusBase
from sessionplus.client import client_ip, user_agent
from sessionplus.conf import conf
from sessionplus.exceptions import SessionTooLarge
from sessionplus.outage import as_unavailable, is_store_outage, outages, unavailable_response
from sessionplus.pages import page_response
from sessionplus.plans import Plan, Step, adrive, drive

logger = logging.getLogger(__name__)

TOO_LARGE_TEMPLATE = "sessionplus/session_too_large.html"
INTERRUPTED = (
    "The request's session was deleted before the request completed. The user may have "
    "logged out in a concurrent request, for example."
)


class _PartitionedMorsel(Morsel[str]):
    """A cookie with the CHIPS ``Partitioned`` attribute, which Python's Morsel lacks."""

    def OutputString(self, attrs: list[str] | None = None) -> str:
        return f"{super().OutputString(attrs)}; Partitioned"


class SessionMiddleware(DjangoSessionMiddleware):
    """
    A drop-in for ``django.contrib.sessions.middleware.SessionMiddleware``.

    It keeps Django's cookie behaviour and adds, through the ``SessionStore`` API only:
    native async, idle and absolute timeouts, rolling expiry by ``touch()`` at most once
    per ``SESSIONPLUS_TOUCH_INTERVAL``, metadata capture, binding, session signals,
    ``Cache-Control: private`` on every session cookie, and a 503 when the store is down.
    With Django's own engines (no metadata, no ``touch()``) the features that need them
    are off and the rest applies.

    It subclasses Django's middleware so that checks looking for it (the admin's
    ``admin.E410``) find it; Django's ``__call__`` runs the sync path and hands the
    async one to ``__acall__`` below, which never leaves the event loop for a thread.
    """

    sync_capable = True
    async_capable = True
    SessionStore: type[LifecycleHooks]

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        super().__init__(get_response)
        self.SessionStore = lifecycle.hooked(self.SessionStore)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        self.process_request(request)
        response = await self.get_response(request)  # type: ignore[misc]
        return await self.aprocess_response(request, response)

    def process_request(self, request: HttpRequest) -> None:
        session_key = _session_cookie(request, conf.SESSION_COOKIE_NAME)
        previous = None
        if session_key is None:
            previous = conf.SESSIONPLUS_PREVIOUS_COOKIE_NAME
            if previous is not None:
                session_key = _session_cookie(request, previous)
        session = request.session = self.SessionStore(session_key)
        session.request = request
        if previous is not None and session_key is not None:
            session.previous_cookie = previous
            # Saved (if it is live) so that the response sets the cookie under its
            # current name; _send_cookie deletes the old one.
            session.modified = True

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        """Answer 503 instead of 500 when the view failed because the store is down."""
        session = getattr(request, "session", None)
        if not isinstance(session, LifecycleHooks):
            return None
        # An outage of the store the view used: not any connection error, which may come
        # from another service.
        if session.outage is None:
            if not (session.accessed and is_store_outage(exception)):
                return None
            session.outage = as_unavailable(exception)
        return unavailable_response(request)

    # The response -------------------------------------------------------------------

    # django-stubs types Django's for HttpResponse; it takes and returns any response.
    def process_response(  # type: ignore[override]
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        session = getattr(request, "session", None)
        if not isinstance(session, LifecycleHooks):
            return self._foreign(request, response, session)
        if _untouched(session):
            return response
        return drive(self._responding(request, session, response))

    async def aprocess_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        session = getattr(request, "session", None)
        if not isinstance(session, LifecycleHooks):
            return await sync_to_async(self._foreign)(request, response, session)
        if _untouched(session):
            return response
        return await adrive(self._responding(request, session, response))

    def _responding(
        self, request: HttpRequest, session: LifecycleHooks, response: HttpResponseBase
    ) -> Plan[HttpResponseBase]:
        """Load what the decision needs, write what it decides, and answer the response."""
        if session.outage is not None:
            return self._unavailable(request, session, response)
        accessed = session.accessed
        try:
            if self._must_load(session, response):
                yield Step(session, "_get_session")
            write = self._write_to_make(session, response)
            if write:
                self._stage_metadata(request, session)
                yield Step(session, write)
        except Exception as exc:
            return self._storage_failed(request, session, response, exc)
        if write or session.started_live:
            _store_answered(session, write)
        return self._send_cookie(request, session, response, accessed, write)

    def _foreign(
        self, request: HttpRequest, response: HttpResponseBase, session: object
    ) -> HttpResponseBase:
        # Not a store process_request built (none, a stand-in such as a dict, or one a
        # test or a view put there): a store gets the hooks' defaults, and no signals.
        if not isinstance(session, SessionBase):
            return response
        return super().process_response(request, response)  # type: ignore[arg-type] # as above

    @staticmethod
    def _must_load(session: SessionBase, response: HttpResponseBase) -> bool:
        # Deciding whether to write needs the stored session: an unknown or expired key
        # must not be saved into a new, empty record (Django's middleware does that with
        # SESSION_SAVE_EVERY_REQUEST), and touch() must never write data it did not read.
        return response.status_code < 500 and (session.modified or conf.SESSION_SAVE_EVERY_REQUEST)

    @staticmethod
    def _write_to_make(session: SessionBase, response: HttpResponseBase) -> str | None:
        if response.status_code >= 500:
            return None
        return lifecycle.write_to_make(session)

    @staticmethod
    def _stage_metadata(request: HttpRequest, session: SessionBase) -> None:
        if isinstance(session, SessionPlusBase) and session.records_client:
            session.update_metadata(
                user_id=session.get(USER_ID_KEY),
                ip=client_ip(request),
                user_agent=user_agent(request),
            )

    def _storage_failed(
        self,
        request: HttpRequest,
        session: LifecycleHooks,
        response: HttpResponseBase,
        exc: Exception,
    ) -> HttpResponseBase:
        if isinstance(exc, UpdateError):
            raise SessionInterrupted(INTERRUPTED) from exc
        if isinstance(exc, SessionTooLarge):
            return _too_large(request, exc)
        if not is_store_outage(exc):
            raise exc
        if session.outage is None:
            session.outage = as_unavailable(exc)
        return self._unavailable(request, session, response)

    @staticmethod
    def _unavailable(
        request: HttpRequest, session: LifecycleHooks, response: HttpResponseBase
    ) -> HttpResponseBase:
        unavailable = unavailable_response(request)
        # Other middleware that ran into the outage made Django log its 500 already.
        # Django's flag, which django-stubs leaves out.
        unavailable._has_been_logged = getattr(response, "_has_been_logged", False)  # type: ignore[attr-defined]
        failures = outages.failed()
        # Logged like Django logs responses (which then skips logging this one again):
        # the first failure of an outage in full, the next ones without the traceback.
        if failures == 1:
            log_response(
                "Session store unavailable: %s",
                request.path,
                response=unavailable,
                request=request,
                logger=logger,
                exception=session.outage,
            )
        else:
            log_response(
                "Session store still unavailable: %s (%s requests failed in this outage)",
                request.path,
                failures,
                response=unavailable,
                request=request,
                logger=logger,
                level="warning",
            )
        return unavailable

    # The cookie -----------------------------------------------------------------------

    def _send_cookie(
        self,
        request: HttpRequest,
        session: LifecycleHooks,
        response: HttpResponseBase,
        accessed: bool,
        write: str | None,
    ) -> HttpResponseBase:
        name = conf.SESSION_COOKIE_NAME
        cookie_key = request.COOKIES.get(name)
        cookie_sent = True
        if write:
            _set_session_cookie(response, session)
            if session.request is None:  # a store the view put there
                session.request = request
            lifecycle.written(session, cookie_key)
        # Only a session emptied here loses its cookie: an unknown or expired key that
        # was merely read gets no Set-Cookie (nor does any request during an outage).
        elif cookie_key is not None and session.is_empty() and (session.modified or session.ended):
            _delete_cookie(response, name)
        else:
            cookie_sent = False
        # The cookie under the previous name goes once it is re-issued under the current
        # one, or names no session; a failed request (no save) keeps it for the next.
        if session.previous_cookie is not None and (write or session.is_empty()):
            _delete_cookie(response, session.previous_cookie)
            cookie_sent = True
        if cookie_sent:
            # A response that sets or deletes a session cookie must never reach another
            # user from a shared cache.
            _set_or_patch(response, "Cache-Control", "private", patch_cache_control, private=True)
        if cookie_sent or accessed:
            _set_or_patch(response, "Vary", "Cookie", patch_vary_headers, ("Cookie",))
        return response


def _set_or_patch(
    response: HttpResponseBase,
    header: str,
    value: str,
    patch: Callable[..., None],
    *args: Any,
    **kwargs: Any,
) -> None:
    """
    Set ``header`` to ``value`` on a response without it, else ``patch(response, ...)``.

    Django's patch functions parse and rebuild the header on every call (about 15,000
    CPU instructions each); on a response without the header they write ``value``, as
    this does directly. Django's ``ResponseHeaders`` keeps each header as ``_store[name
    lowercased] = (name, value)``: there the lookup and the write cost about 1,200
    instructions, where ``has_header()`` (which raises and catches a ``KeyError`` for a
    missing header) and setting (which checks name and value for their charset and line
    breaks, which these constants pass) cost 11,000.
    """
    headers = response.headers
    stored = getattr(headers, "_store", None) if type(headers) is ResponseHeaders else None
    if not isinstance(stored, dict):
        if response.has_header(header):
            patch(response, *args, **kwargs)
        else:
            headers[header] = value
        return
    name = header.lower()
    if name in stored:
        patch(response, *args, **kwargs)
    else:
        stored[name] = (header, value)


def _too_large(request: HttpRequest, exc: SessionTooLarge) -> HttpResponseBase:
    """
    Answer 413 for a session that grew past its limit: nothing was written (the engines
    check before writing), so the stored session and the cookie stay as they were.
    """
    response = page_response(
        request, TOO_LARGE_TEMPLATE, {}, {"error": "session_too_large"}, status=413
    )
    log_response(
        "Session not saved: %s (%s)",
        request.path,
        exc,
        response=response,
        request=request,
        logger=logger,
    )
    return response


def _session_cookie(request: HttpRequest, name: str) -> str | None:
    raw = request.META.get("HTTP_COOKIE", "")
    # A second cookie of the same name was planted by a parent domain or path (cookie
    # tossing), and which one is the user's cannot be told: trust neither. The header is
    # only split when the name occurs in it twice (or inside another cookie's name).
    if raw.count(name) > 1:
        sent = [part.partition("=")[0].strip() for part in raw.split(";")]
        if sent.count(name) > 1:
            return None
    return request.COOKIES.get(name)


def _untouched(session: LifecycleHooks) -> bool:
    """Return whether the request never used its session: Django's middleware then does nothing."""
    return not (
        session.accessed
        or session.modified
        or session.outage is not None
        or session.previous_cookie is not None
        or conf.SESSION_SAVE_EVERY_REQUEST
    )


def _store_answered(session: SessionBase, write: str | None) -> None:
    # Django's cache engine answers an unreachable cache with an empty session (ticket
    # #17810): there only a write proves that the store is back.
    if not write and not isinstance(session, SessionPlusBase):
        return
    ended = outages.answered()
    if ended is not None:
        logger.warning(
            "Session store available again after %.1f seconds (%s requests failed).", *ended
        )


def _set_session_cookie(response: HttpResponseBase, session: SessionBase) -> None:
    assert session.session_key is not None, "a session just written has a key"
    if session.get_expire_at_browser_close():
        max_age, expires = None, None
    else:
        max_age = session.get_expiry_age()
        expires = _http_date(int(time.time() + max_age))
    response.set_cookie(
        conf.SESSION_COOKIE_NAME,
        session.session_key,
        max_age=max_age,
        expires=expires,
        domain=conf.SESSION_COOKIE_DOMAIN,
        path=conf.SESSION_COOKIE_PATH,
        secure=conf.SESSION_COOKIE_SECURE,
        httponly=conf.SESSION_COOKIE_HTTPONLY,
        samesite=conf.SESSION_COOKIE_SAMESITE,
    )
    _partition(response, conf.SESSION_COOKIE_NAME)


@functools.lru_cache(maxsize=1)
def _http_date(seconds: int) -> str:
    # Formatted at most once a second, however many responses set a cookie expiring then:
    # Django's http_date() costs about 25,000 CPU instructions a call.
    return http_date(seconds)


def _delete_cookie(response: HttpResponseBase, name: str) -> None:
    response.delete_cookie(
        name,
        path=conf.SESSION_COOKIE_PATH,
        domain=conf.SESSION_COOKIE_DOMAIN,
        samesite=conf.SESSION_COOKIE_SAMESITE,
    )
    _partition(response, name)


def _partition(response: HttpResponseBase, name: str) -> None:
    if not conf.SESSIONPLUS_COOKIE_PARTITIONED:
        return
    cookie = response.cookies[name]
    partitioned = _PartitionedMorsel()
    partitioned.set(cookie.key, cookie.value, cookie.coded_value)
    partitioned.update(cookie)
    partitioned["secure"] = True  # browsers drop a Partitioned cookie without Secure
    response.cookies[name] = partitioned
