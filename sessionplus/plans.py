"""
Running one plan both ways: a frame written once as a generator that yields each storage
step it needs (a ``Step``), which ``drive()`` runs with the sync methods and ``adrive()``
with their async twins. A step's exception is thrown into the plan at its ``yield``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

T = TypeVar("T")


class Step:
    """A call of ``target``'s method ``name``, or of its async twin named as Django names them."""

    __slots__ = ("args", "name", "target")

    def __init__(self, target: object, name: str, *args: Any) -> None:
        self.target = target
        self.name = name
        self.args = args

    def async_name(self) -> str:
        # Django's convention: aload for load, _aget_session for _get_session.
        bare = self.name.lstrip("_")
        return f"{self.name[: len(self.name) - len(bare)]}a{bare}"


Plan = Generator[Step, Any, T]


def drive(plan: Plan[T]) -> T:
    """Carry out a plan with the sync methods."""
    # adrive()'s _advance() and _acalled() written out: this loop runs on every request
    # that reads its session, and the two calls and their tuples were a fifth of its cost.
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = plan.send(reply) if error is None else plan.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            reply, error = getattr(step.target, step.name)(*step.args), None
        except Exception as exc:
            reply, error = None, exc


async def adrive(plan: Plan[T]) -> T:
    """Carry out a plan with the async methods."""
    step, result = _advance(plan, None, None)
    while step is not None:
        method = getattr(step.target, step.async_name())
        step, result = _advance(plan, *await _acalled(method, step.args))
    return result  # type: ignore[no-any-return]


def _advance(plan: Plan[Any], reply: Any, error: Exception | None) -> tuple[Step | None, Any]:
    """Hand the plan a reply or an error; return its next step, or None and its result."""
    try:
        return (plan.send(reply) if error is None else plan.throw(error)), None
    except StopIteration as done:
        return None, done.value


async def _acalled(method: Any, args: tuple[Any, ...]) -> tuple[Any, Exception | None]:
    try:
        return await method(*args), None
    except Exception as exc:
        return None, exc
