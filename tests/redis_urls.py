"""Views and URLconf of the redis engine's request-level tests (budgets, races, async)."""

from __future__ import annotations

import asyncio
import threading

from django.http import HttpRequest, HttpResponse
from django.urls import path

# Test-owned rendezvous points: two requests that both loaded the session wait here, so
# their read-modify-write cycles overlap every time, without sleeping.
BARRIERS: dict[str, threading.Barrier] = {}
ASYNC_BARRIERS: dict[str, AsyncBarrier] = {}


class AsyncBarrier:
    """asyncio.Barrier (Python 3.11+) for the parties of one race, on Python 3.10 too."""

    def __init__(self, parties: int) -> None:
        self.waiting = parties
        self.released = asyncio.Event()

    async def wait(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.released.set()
        await self.released.wait()


def untouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse("the session was never touched")


def read(request: HttpRequest) -> HttpResponse:
    return HttpResponse(",".join(sorted(request.session.keys())))


def write(request: HttpRequest, key: str) -> HttpResponse:
    request.session[key] = "written"
    return HttpResponse("written")


def race(request: HttpRequest, race_id: str, key: str) -> HttpResponse:
    request.session.get("anything")  # load
    BARRIERS[race_id].wait(timeout=10)  # the other request of the pair has loaded too
    request.session[key] = "written"
    return HttpResponse("written")


async def arace(request: HttpRequest, race_id: str, key: str) -> HttpResponse:
    await request.session.aget("anything")
    await ASYNC_BARRIERS[race_id].wait()
    await request.session.aset(key, "written")
    return HttpResponse("written")


async def aread(request: HttpRequest) -> HttpResponse:
    return HttpResponse(",".join(sorted(await request.session.akeys())))


# django-allauth's headless JWT refresh-token rotation, reduced to what it does with the
# session: mutate a stored dict in place, then save() without assigning anything.
def rotate(request: HttpRequest, old: str, new: str) -> HttpResponse:
    tokens = request.session.setdefault("headless_refresh_tokens", {})
    tokens.pop(old, None)
    tokens[new] = "issued"
    request.session.save()
    return HttpResponse("rotated")


async def arotate(request: HttpRequest, old: str, new: str) -> HttpResponse:
    tokens = await request.session.asetdefault("headless_refresh_tokens", {})
    tokens.pop(old, None)
    tokens[new] = "issued"
    await request.session.asave()
    return HttpResponse("rotated")


def append(request: HttpRequest, item: str) -> HttpResponse:
    # In place, and nothing else: only SESSION_SAVE_EVERY_REQUEST stores it.
    request.session["cart"].append(item)
    return HttpResponse("appended")


async def aappend(request: HttpRequest, item: str) -> HttpResponse:
    (await request.session.aget("cart")).append(item)
    return HttpResponse("appended")


urlpatterns = [
    path("untouched/", untouched),
    path("read/", read),
    path("write/<str:key>/", write),
    path("race/<str:race_id>/<str:key>/", race),
    path("async/race/<str:race_id>/<str:key>/", arace),
    path("async/read/", aread),
    path("rotate/<str:old>/<str:new>/", rotate),
    path("async/rotate/<str:old>/<str:new>/", arotate),
    path("append/<str:item>/", append),
    path("async/append/<str:item>/", aappend),
]
