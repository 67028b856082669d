"""
Redis clients for the redis engine, all taken from a django-redis ``CACHES`` alias.

The sync client is django-redis's own primary connection, kept per alias until the
``CACHES`` setting changes; where that connection speaks RESP3 (redis-py 8's default) to a
single server, a client with the same settings speaking RESP2 (``_resp2_client()``). The
asyncio client is built from the sync client's settings (host, port, db, credentials,
timeouts, TLS, Sentinel service or Cluster nodes), once per event loop, and closed when its
loop shuts down.

A connection the alias gives no socket timeouts waits on a silent server for redis-py's
default (5 s in redis-py 6+, forever before): the session engine gives up after
``DEFAULT_SOCKET_TIMEOUT`` instead, and answers 503. Timeouts the alias sets are kept.

On a single server the sync client is a ``LeanRedis``: the same pool and connections,
without redis-py's per-command bookkeeping.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.connection
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.connection
import redis.retry
import redis.sentinel
import redis.utils
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_redis import get_redis_connection
from django_redis.pool import ConnectionFactory
from redis._parsers import Encoder

_pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack_command
except ImportError:  # the redis extra brings it; without it, redis-py's own packer
    _pack_command = None

# Seconds a session operation waits to connect, and then for an answer, unless the alias
# says otherwise (OPTIONS SOCKET_CONNECT_TIMEOUT / SOCKET_TIMEOUT).
DEFAULT_SOCKET_TIMEOUT = 1.0
TIMEOUT_PARAMETERS = ("socket_timeout", "socket_connect_timeout")

SYNC_CLUSTER = redis.cluster.RedisCluster
ASYNC_CLUSTER = redis.asyncio.cluster.RedisCluster

_ASYNC_CONNECTION_CLASSES = {
    redis.connection.Connection: redis.asyncio.connection.Connection,
    redis.connection.SSLConnection: redis.asyncio.connection.SSLConnection,
    redis.connection.UnixDomainSocketConnection: (
        redis.asyncio.connection.UnixDomainSocketConnection
    ),
    redis.sentinel.SentinelManagedConnection: redis.asyncio.sentinel.SentinelManagedConnection,
    redis.sentinel.SentinelManagedSSLConnection: (
        redis.asyncio.sentinel.SentinelManagedSSLConnection
    ),
}


# alias → its sync client. django-redis finds it through Django's per-thread cache handler
# on every call (tens of thousands of CPU instructions); the client it returns is
# thread-safe and wraps a process-wide pool, so one per alias serves every thread.
_sync_clients: dict[str, Any] = {}
# What decides which client an alias gets: a change drops the clients (override_settings).
CLIENT_SETTINGS = frozenset({"CACHES", "DJANGO_REDIS_CONNECTION_FACTORY"})


def sync_client(alias: str) -> Any:
    """Return the alias's client for the primary (a ``Redis`` or a ``RedisCluster``)."""
    client = _sync_clients.get(alias)
    if client is None:
        client = _sync_clients[alias] = _primary_client(alias)
    return client


@receiver(setting_changed)
def _client_settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in CLIENT_SETTINGS:
        _sync_clients.clear()


def _primary_client(alias: str) -> Any:
    client = get_redis_connection(alias, write=True)
    pool = getattr(client, "connection_pool", None)  # a cluster's were set up in its factory
    if pool is None:
        return client
    if type(pool) is redis.ConnectionPool and _speaks_resp3(pool.connection_kwargs):
        return _resp2_client(pool)
    # The pool's connections, made from these settings, are shared with the alias's
    # cache: it gets the same defaults. Connections it opened before keep theirs.
    default_timeouts(pool.connection_kwargs)
    if type(client) is redis.Redis and type(pool) is redis.ConnectionPool and not client.connection:
        return LeanRedis(connection_pool=pool)  # shares the pool, leaves it open
    return client  # a project's own client class, Sentinel: redis-py's path as it is


# What a RESP3 pool adds to its connection settings for itself (redis-py 8's maintenance
# notifications, its HIMPORT registry): RESP2 connections refuse the first, and a new pool
# makes its own of the rest.
_RESP3_POOL_STATE = frozenset(
    {
        "maint_notifications_config",
        "maint_notifications_pool_handler",
        "himport_registry",
        "orig_host_address",
        "orig_socket_timeout",
        "orig_socket_connect_timeout",
    }
)


def _speaks_resp3(connection_kwargs: dict[str, Any]) -> bool:
    protocol: Any = connection_kwargs.get("protocol")
    if protocol is None:  # redis-py's default: RESP3 from 8.0, RESP2 before
        protocol = getattr(redis.utils, "DEFAULT_RESP_VERSION", 2)
    return int(protocol) == 3


def _resp2_client(pool: redis.ConnectionPool) -> redis.Redis:
    """
    Return a client of a pool of its own, with the settings of ``pool`` but RESP2.

    The lean client runs on RESP2 connections only, the ones its tests cover: a RESP3
    pool's connections are kept up by redis-py 8 for what RESP3 adds (maintenance
    notifications), which the lean client's shortcut past the pool leaves out. Every
    command the engine sends replies alike in both protocols (a GET of a 2.3 KB session
    value costs 66,000 CPU instructions over either, with redis-py's packer), and the pool
    of its own also packs each command with one hiredis call (52,000). The alias's own
    cache keeps its pool, protocol and timeouts.
    """
    connection_kwargs = {
        name: value
        for name, value in pool.connection_kwargs.items()
        if name not in _RESP3_POOL_STATE
    }
    connection_kwargs["protocol"] = 2
    default_timeouts(connection_kwargs)
    if _pack_command is not None and _encodes_as_hiredis_does(connection_kwargs):
        connection_kwargs.setdefault("command_packer", CommandPacker(_pack_command))
    own = redis.ConnectionPool(
        connection_class=pool.connection_class,
        max_connections=pool.max_connections,
        **connection_kwargs,
    )
    return LeanRedis.from_pool(own)  # owns the pool: dropped with it on a settings change


class LeanRedis(redis.Redis):
    """
    A client of its own pool whose commands skip redis-py's per-command bookkeeping.

    redis-py 8 lends a connection for each command under the pool's lock, records metrics
    of the pool's state and of the operation, dispatches an event on every release and
    polls the socket for an unread reply: about 64,000 CPU instructions a command, half of
    what a session read costs in the client. Here a command takes an idle connection from
    the pool's list and puts it back, and keeps what decides behaviour: the fork check,
    the retry policy (each failure disconnects), health checks, response callbacks. The
    poll is not needed: a connection goes back only after its reply was read whole, or
    disconnected. With no idle connection (the first command, or every connection busy)
    redis-py's own path makes one, counted against the pool's ``max_connections``.
    """

    def execute_command(self, *args: Any, **options: Any) -> Any:
        pool = self.connection_pool
        pool._checkpid()
        idle = pool._available_connections
        try:
            connection = idle.pop()
        except IndexError:
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        send: Any = self._send_command_parse_response
        try:
            return connection.retry.call_with_retry(
                lambda: send(connection, args[0], *args, **options),
                lambda error: connection.disconnect(),
            )
        except BaseException:
            connection.disconnect()  # whatever was left unread goes with the socket
            raise
        finally:
            idle.append(connection)


def lean_client(alias: str) -> LeanRedis | None:
    """Return the alias's sync client if it is a ``LeanRedis``, else None."""
    client = sync_client(alias)
    return client if type(client) is LeanRedis else None


def _encodes_as_hiredis_does(connection_kwargs: dict[str, Any]) -> bool:
    # hiredis encodes text as UTF-8, strictly: redis-py's default encoding.
    return (
        codecs.lookup(connection_kwargs.get("encoding", "utf-8")).name == "utf-8"
        and connection_kwargs.get("encoding_errors", "strict") == "strict"
    )


class CommandPacker:
    """
    Packs a command with one call to hiredis, as redis-py's packer does in the end.

    redis-py's packer first checks and encodes every argument in Python, about 4,300
    instructions each; a save sends two per field it writes, already bytes. hiredis packs
    bytes, UTF-8 text, integers and floats exactly as redis-py's encoder would, and refuses
    anything else (a ``bool``, a ``memoryview``): those, and a command name of several
    words, go to redis-py's own packer, which packs them or raises its ``DataError``.
    """

    def __init__(self, pack_command: Callable[[tuple[Any, ...]], bytes]) -> None:
        self._pack_command = pack_command
        encoder = Encoder("utf-8", "strict", False)  # type: ignore[no-untyped-call]
        # redis-py's own cut-off: larger arguments are sent as they are, not copied.
        self._fallback: Any = redis.connection.PythonRespSerializer(6000, encoder.encode)

    def pack(self, *args: Any) -> list[bytes]:
        command = args[0]
        if type(command) is str and " " not in command:
            try:
                return [self._pack_command(args)]
            except TypeError:
                pass
        packed: list[bytes] = self._fallback.pack(*args)
        return packed


def default_timeouts(connection_kwargs: dict[str, Any]) -> None:
    """Give connection settings ``DEFAULT_SOCKET_TIMEOUT`` wherever they set no timeout."""
    for name in TIMEOUT_PARAMETERS:
        connection_kwargs.setdefault(name, DEFAULT_SOCKET_TIMEOUT)


def is_cluster(client: Any) -> bool:
    return isinstance(client, (SYNC_CLUSTER, ASYNC_CLUSTER))


# Async clients ---------------------------------------------------------------------

_lock = threading.Lock()
# event loop → {id of the sync pool or cluster: (that pool or cluster, async client, closer)}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Any]] = (
    weakref.WeakKeyDictionary()
)


async def async_client(alias: str) -> Any:
    """Return an asyncio client for the alias's primary, shared within the running loop."""
    sync = sync_client(alias)
    owner = getattr(sync, "connection_pool", sync)
    loop = asyncio.get_running_loop()
    with _lock:
        clients = _async_clients.setdefault(loop, {})
        entry = clients.get(id(owner))
    if entry is not None and entry[0] is owner:
        return entry[1]
    client = build_async_client(sync)
    # Close the client when asyncio.run() (or any runner calling shutdown_asyncgens)
    # ends this loop: its connections must not outlive the loop they belong to.
    closer = _close_at_loop_end(id(owner), client)
    await closer.__anext__()
    with _lock:
        clients[id(owner)] = (owner, client, closer)
    return client


async def _close_at_loop_end(identity: int, client: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        with _lock:
            _async_clients.get(asyncio.get_running_loop(), {}).pop(identity, None)
        await close_async_client(client)


async def close_async_client(client: Any) -> None:
    """Close an asyncio client built here, with its connections (and its Sentinels')."""
    await client.aclose()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


def build_async_client(sync: Any) -> Any:
    """Return a new asyncio client with the connection settings of a sync one."""
    if isinstance(sync, SYNC_CLUSTER):
        return _async_cluster(sync)
    pool = sync.connection_pool
    if isinstance(pool, redis.sentinel.SentinelConnectionPool):
        return _async_sentinel(pool)
    connection_class = _ASYNC_CONNECTION_CLASSES[pool.connection_class]
    kwargs = _async_kwargs(pool.connection_kwargs, connection_class)
    async_pool = redis.asyncio.ConnectionPool(
        connection_class=connection_class,
        max_connections=pool.max_connections,
        **kwargs,
    )
    return redis.asyncio.Redis.from_pool(async_pool)  # owns the pool: aclose() closes it


def _async_sentinel(pool: redis.sentinel.SentinelConnectionPool) -> Any:
    manager = pool.sentinel_manager
    sentinels = [
        (
            sentinel.connection_pool.connection_kwargs["host"],
            sentinel.connection_pool.connection_kwargs["port"],
        )
        for sentinel in manager.sentinels
    ]
    connection_class = _ASYNC_CONNECTION_CLASSES[pool.connection_class]
    kwargs = _async_kwargs(pool.connection_kwargs, connection_class)
    for name in ("connection_pool", "service_name", "sentinel_manager", "is_master"):
        kwargs.pop(name, None)
    sentinel_kwargs = _async_retry(dict(manager.sentinel_kwargs or {}))
    sentinel = redis.asyncio.sentinel.Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs, **kwargs)
    return sentinel.master_for(pool.service_name)


def _async_cluster(sync: redis.cluster.RedisCluster) -> Any:
    manager = sync.nodes_manager
    kwargs = _async_kwargs(manager.connection_kwargs, ASYNC_CLUSTER)
    connection_class = manager.connection_kwargs.get("connection_class", redis.Connection)
    kwargs["ssl"] = issubclass(connection_class, redis.SSLConnection)  # rediss:// nodes
    nodes = [
        redis.asyncio.cluster.ClusterNode(node.host, node.port)
        for node in manager.startup_nodes.values()
    ]
    return ASYNC_CLUSTER(startup_nodes=nodes, **kwargs)


def _async_kwargs(kwargs: dict[str, Any], async_class: type) -> dict[str, Any]:
    """Return the settings of a sync connection that ``async_class`` takes, made for asyncio."""
    return _async_retry(_accepted(kwargs, _parameters(async_class)))


def _async_retry(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Replace a sync ``retry`` policy in connection settings by its asyncio equivalent."""
    retry = kwargs.get("retry")
    if isinstance(retry, redis.retry.Retry):
        # redis-py would convert it itself, with a UserWarning on every client built.
        # Retry exposes no getters for its backoff and errors: read what its __init__ kept.
        kwargs["retry"] = redis.asyncio.retry.Retry(
            backoff=retry._backoff,
            retries=retry._retries,
            supported_errors=retry._supported_errors,
        )
    return kwargs


def _parameters(callable_class: type) -> set[str]:
    """Return the keyword arguments a class's ``__init__`` chain accepts by name."""
    names: set[str] = set()
    for klass in callable_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                names.add(parameter.name)
    # Parsers and sync-only hooks do not carry over to asyncio connections.
    return names - {"self", "parser_class", "redis_connect_func", "connection_pool"}


def _accepted(kwargs: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    names = set(names)
    return {name: value for name, value in kwargs.items() if name in names}


# Redis Cluster through django-redis ----------------------------------------------------


class ClusterConnectionFactory(ConnectionFactory):  # type: ignore[misc]  # django-redis: untyped
    """
    A django-redis connection factory whose clients are ``redis.cluster.RedisCluster``.

    Set ``OPTIONS["CONNECTION_FACTORY"]`` of a ``django_redis.cache.RedisCache`` alias to
    ``"sessionplus.backends.redis.clients.ClusterConnectionFactory"`` and its ``LOCATION``
    to any node of the cluster; the other nodes are discovered.
    """

    _clusters: dict[str, redis.cluster.RedisCluster] = {}

    def connect(self, url: str) -> Any:
        if url not in self._clusters:
            params = self.make_connection_params(url)
            kwargs = {
                name: value for name, value in params.items() if name not in ("url", "parser_class")
            }
            kwargs.update(self.pool_cls_kwargs)
            kwargs.update(self.redis_client_cls_kwargs)
            default_timeouts(kwargs)
            self._clusters[url] = redis.cluster.RedisCluster.from_url(url, **kwargs)
        return self._clusters[url]

    def disconnect(self, connection: Any) -> None:
        connection.disconnect_connection_pools()
