"""
Running the redis engine's operations on a sync or an asyncio client, from one plan each.

An operation is written once, as a plan: a generator that yields each round trip it needs
(an ``Op``) and gets its reply back. ``run()`` drives a plan on the alias's sync client,
``arun()`` on its asyncio client; nothing else differs between ``load()`` and ``aload()``.
Connection errors become ``SessionStoreUnavailable``.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.exceptions import NoScriptError, ResponseError

from sessionplus.backends.redis.clients import async_client, is_cluster, sync_client
from sessionplus.outage import unreachable_redis

T = TypeVar("T")


class Op:
    """One round trip: ``send()`` returns the reply, or on an asyncio client an awaitable."""

    def send(self, client: Any) -> Any:
        raise NotImplementedError

    def resend(self, client: Any) -> Any:
        """Send again after the server answered NOSCRIPT (only scripts can)."""
        raise NotImplementedError


Plan = Generator[Op, Any, T]


@dataclass(frozen=True)
class Command(Op):
    """One redis-py client method, called with ``args``."""

    name: str
    args: tuple[Any, ...] = ()

    def send(self, client: Any) -> Any:
        return getattr(client, self.name)(*self.args)


# GetValue's reply for a key that holds something other than a string (a hash, a list).
WRONG_TYPE: Any = object()


def _wrong_type(exc: ResponseError) -> Any:
    if str(exc).startswith("WRONGTYPE"):
        return WRONG_TYPE
    raise exc


async def _awaited(reply: Any) -> Any:
    try:
        return await reply
    except ResponseError as exc:
        return _wrong_type(exc)


@dataclass(frozen=True)
class GetValue(Op):
    """
    GET of one key: its value, None, or ``WRONG_TYPE`` when the key holds another kind
    of thing, which Redis refuses to GET (a key written by something else is no session,
    not a server error).
    """

    key: bytes

    def send(self, client: Any) -> Any:
        try:
            reply = client.get(self.key)
        except ResponseError as exc:
            return _wrong_type(exc)
        if type(reply) is bytes or reply is None or not inspect.isawaitable(reply):
            return reply
        return _awaited(reply)


@dataclass(frozen=True)
class Batch(Op):
    """Commands sent together in one pipeline (no transaction); the reply is their list."""

    commands: Sequence[Command]
    # False: a command Redis refuses gives its error as its reply, the others theirs.
    raise_on_error: bool = True

    def send(self, client: Any) -> Any:
        pipe = client.pipeline(transaction=False)
        for command in self.commands:
            command.send(pipe)
        return pipe.execute(raise_on_error=self.raise_on_error)


@dataclass(frozen=True)
class ScriptCall(Op):
    """A Lua script by EVALSHA, by EVAL once when the server lacks it."""

    text: str
    sha: str
    keys: Sequence[str | bytes]
    args: Sequence[Any]

    def send(self, client: Any) -> Any:
        return client.evalsha(self.sha, len(self.keys), *self.keys, *self.args)

    def resend(self, client: Any) -> Any:
        # A restarted or failed-over server forgot the script; EVAL caches it again.
        return client.eval(self.text, len(self.keys), *self.keys, *self.args)


class IsCluster(Op):
    """Whether the client is a Redis Cluster one: no round trip."""

    def send(self, client: Any) -> bool:
        return is_cluster(client)


@dataclass(frozen=True)
class ScanKeys(Op):
    """Every key matching a glob pattern (on every node of a cluster), as a list."""

    pattern: str
    count: int

    def send(self, client: Any) -> Any:
        keys = client.scan_iter(match=self.pattern, count=self.count)
        if hasattr(keys, "__aiter__"):
            return _collect(keys)
        return list(keys)


async def _collect(keys: Any) -> list[Any]:
    return [key async for key in keys]


def _advance(plan: Plan[T], reply: Any) -> tuple[Op | None, T | None]:
    """Hand the plan a reply; return its next round trip, or None and what it returns."""
    try:
        return plan.send(reply), None
    except StopIteration as done:
        return None, done.value


def run(plan: Plan[T], alias: str) -> T:
    """Carry out a plan on the alias's sync client."""
    op, result = _advance(plan, None)
    if op is None:
        return result  # type: ignore[return-value]
    with unreachable_redis():
        client = sync_client(alias)
        while op is not None:
            try:
                reply = op.send(client)
            except NoScriptError:
                reply = op.resend(client)
            op, result = _advance(plan, reply)
    return result  # type: ignore[return-value]


async def arun(plan: Plan[T], alias: str) -> T:
    """Carry out a plan on the alias's asyncio client."""
    op, result = _advance(plan, None)
    if op is None:
        return result  # type: ignore[return-value]
    with unreachable_redis():
        client = await async_client(alias)
        while op is not None:
            try:
                reply = op.send(client)
                if inspect.isawaitable(reply):
                    reply = await reply
            except NoScriptError:
                reply = await op.resend(client)
            op, result = _advance(plan, reply)
    return result  # type: ignore[return-value]
