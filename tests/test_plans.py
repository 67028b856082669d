"""One plan driven with sync methods and with their async twins."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.test import SimpleTestCase

from sessionplus.plans import Plan, Step, adrive, drive


class Store:
    """Sync methods and async twins named as Django names them; each records its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def load(self, key: str) -> str:
        self.calls.append(f"load {key}")
        return f"data of {key}"

    async def aload(self, key: str) -> str:
        self.calls.append(f"aload {key}")
        return f"data of {key}"

    def _get_session(self) -> None:
        self.calls.append("_get_session")
        raise LookupError("gone")

    async def _aget_session(self) -> None:
        self.calls.append("_aget_session")
        raise LookupError("gone")


def plan(store: Store) -> Plan[list[str]]:
    replies = [(yield Step(store, "load", "k"))]
    try:
        yield Step(store, "_get_session")
    except LookupError as exc:
        replies.append(f"caught {exc}")
    return replies


def failing_plan(store: Store) -> Plan[None]:
    yield Step(store, "_get_session")


def loads(store: Store, times: int) -> Plan[str]:
    for _ in range(times):
        yield Step(store, "load", "k")
    return "done"


class DriveTests(SimpleTestCase):
    def test_drive_calls_the_sync_methods_and_hands_back_replies_and_errors(self):
        store = Store()
        assert drive(plan(store)) == ["data of k", "caught gone"]
        assert store.calls == ["load k", "_get_session"]

    def test_adrive_calls_the_async_twins_named_as_django_names_them(self):
        store = Store()
        assert async_to_sync(adrive)(plan(store)) == ["data of k", "caught gone"]
        assert store.calls == ["aload k", "_aget_session"]

    def test_an_error_the_plan_does_not_catch_reaches_the_caller(self):
        with self.assertRaisesMessage(LookupError, "gone"):
            drive(failing_plan(Store()))
        with self.assertRaisesMessage(LookupError, "gone"):
            async_to_sync(adrive)(failing_plan(Store()))

    def test_a_plan_without_steps_returns_its_result(self):
        store = Store()
        assert drive(loads(store, 0)) == "done"
        assert async_to_sync(adrive)(loads(store, 0)) == "done"
        assert store.calls == []
