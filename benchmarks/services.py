"""The stores the benchmarks need, on loopback: a private Redis and a PostgreSQL database."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

from tests.support.loopback import RedisServer, free_port, redis_server_binary

DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_MARIADB = "mysql://root@127.0.0.1:3306/test"


class RedisService:
    """REDIS_URL's server, or a private redis-server on a free loopback port (persistence off)."""

    def __init__(self) -> None:
        self.server: RedisServer | None = None
        self.url = os.environ.get("REDIS_URL") or None

    def start(self) -> str | None:
        if self.url:
            return self.url
        binary = redis_server_binary()
        if binary is None:
            return None
        server = RedisServer(free_port())
        if not server.launch(server.command(binary), seconds=15):
            return None
        self.server, self.url = server, server.url
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def postgres_database(name: str) -> str | None:
    """
    Return the URL of database ``name`` on DATABASE_URL's server (default: the local one),
    creating it when missing; None when no PostgreSQL answers.
    """
    server = os.environ.get("DATABASE_URL") or DEFAULT_POSTGRES
    if not server.startswith(("postgres://", "postgresql://")):
        return None
    try:
        with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None
    return with_database(server, name)


def drop_postgres_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_version(url: str) -> str:
    with redis.Redis.from_url(url) as client:
        return client.info("server")["redis_version"]


def postgres_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0].split()[0]


def mariadb_server() -> str:
    """DATABASE_URL when it names a MySQL/MariaDB server, else the local one."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("mysql") else DEFAULT_MARIADB


def mariadb_connect(url: str):  # -> MySQLdb.Connection
    """Connect to the server of ``url`` with mysqlclient (the ``mysql`` extra), autocommit on."""
    import MySQLdb

    parts = urlsplit(url)
    return MySQLdb.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )


def mariadb_database(name: str) -> str | None:
    """
    Return the URL of database ``name`` on the MySQL/MariaDB server (see ``mariadb_server``),
    creating it when missing; None when mysqlclient is missing or no server answers.
    """
    try:
        import MySQLdb
    except ImportError:
        return None
    server = mariadb_server()
    try:
        connection = mariadb_connect(server)
    except MySQLdb.OperationalError:
        return None
    with connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    return with_database(server, name)


def drop_mariadb_database(url: str) -> None:
    with mariadb_connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{urlsplit(url).path.lstrip('/')}`")


def mariadb_version(url: str) -> str:
    with mariadb_connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        return cursor.fetchone()[0].split("-")[0]
