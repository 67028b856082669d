"""Count the commands a Redis server receives from clients, as the server itself reports them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import redis


@contextmanager
def commands_received(url: str) -> Iterator[list[str]]:
    """
    Record the name of every command clients send to the server at ``url`` meanwhile.

    MONITOR reports each command the server runs, marking those a Lua script runs as
    ``lua``: they are left out, so one EVALSHA counts as the one round trip it is. A
    transaction is recorded as one entry, ``"MULTI HGETALL PTTL EXEC"``: redis-py sends a
    transaction pipeline in one write (``test_redis_budgets`` checks that on the socket).
    """
    marker = f"sessionplus-commands-end-{uuid4().hex}"
    commands: list[str] = []
    # Each client's transaction being received, by client address.
    transactions: dict[tuple[str, str], list[str]] = {}
    with redis.Redis.from_url(url) as watcher, redis.Redis.from_url(url) as signaller:
        signaller.ping()  # connect now, so its handshake is not counted
        with watcher.monitor() as monitor:
            yield commands
            # Every command sent before this one is reported before it.
            signaller.echo(marker)
            while True:
                entry = monitor.next_command()
                if marker in entry["command"]:
                    break
                if entry["client_type"] == "lua":
                    continue
                name = entry["command"].split(" ", 1)[0].upper()
                client = (entry["client_address"], entry["client_port"])
                if name == "MULTI":
                    transactions[client] = []
                if client not in transactions:
                    commands.append(name)
                    continue
                transactions[client].append(name)
                if name in ("EXEC", "DISCARD"):
                    commands.append(" ".join(transactions.pop(client)))
