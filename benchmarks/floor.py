"""
The storage floor: the bare client doing the least storage work a scenario needs.

Each floor stores the same payload the engines store (the session encoded as Django
encodes it, or its fields one by one for the Redis hash), so a sessionplus figure divided
by its floor says how much the session layer adds on top of the store itself.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from importlib import import_module

import psycopg
import redis
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core import signing

from benchmarks.workload import USER_AGENT, session_payload
from sessionplus.randomness import random_string

FLOOR_TABLE = "bench_floor_session"
SESSION_TABLE = "sessionplus_session"
KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
AGE = timedelta(seconds=1209600)
AUTH_FIELDS = {SESSION_KEY: "1", BACKEND_SESSION_KEY: "backend", HASH_SESSION_KEY: "0" * 64}

Operation = Callable[[], object]


def new_key() -> str:
    return random_string(32, KEY_CHARS)


def new_keys(count: int) -> list[str]:
    return [new_key() for _ in range(count)]


def encoded_payload() -> str:
    """The payload encoded exactly as Django's engines encode session data."""
    store = import_module("django.contrib.sessions.backends.db").SessionStore()
    return store.encode(session_payload())


class Floor:
    """The floor of one engine; subclasses implement the four storage operations."""

    def seed(self, key: str) -> None:
        self.create(key)

    def read(self, key: str) -> object:
        raise NotImplementedError

    def write(self, key: str) -> object:
        raise NotImplementedError

    def create(self, key: str) -> object:
        raise NotImplementedError

    def rekey(self, old: str, new: str) -> object:
        raise NotImplementedError

    def close(self) -> None:
        """Release the client."""

    def operations(self, steps: tuple[str, ...], count: int) -> list[Operation]:
        """Return ``count`` callables, each doing ``steps`` once on prepared data."""
        if steps == ("create",):
            return [lambda key=key: self.create(key) for key in new_keys(count)]
        if steps == ("read", "rekey"):
            keys = new_keys(count)
            for key in keys:
                self.seed(key)
            return [
                lambda key=key, new=new: (self.read(key), self.rekey(key, new))
                for key, new in zip(keys, new_keys(count), strict=True)
            ]
        key = new_key()
        self.seed(key)
        if steps == ("read",):
            return [lambda: self.read(key)] * count
        if steps == ("read", "write"):
            return [lambda: (self.read(key), self.write(key))] * count
        raise ValueError(f"No floor for {steps}.")


class SqlFloor(Floor):
    """psycopg, mysqlclient or sqlite3 on a table of the same shape as ``sessionplus_session``."""

    COLUMNS = (
        "session_key, session_data, expire_date, user_id, ip, user_agent, created_at, last_activity"
    )

    def __init__(self) -> None:
        db = settings.DATABASES["default"]
        self.data = encoded_payload()
        self.postgres = "postgresql" in db["ENGINE"]
        self.mysql = "mysql" in db["ENGINE"]
        if self.mysql:
            import MySQLdb  # Django's driver: the mysql extra

            self.connection = MySQLdb.connect(
                host=db["HOST"],
                port=int(db["PORT"] or 3306),
                user=db["USER"],
                password=db["PASSWORD"],
                database=db["NAME"],
                autocommit=True,
            )
            self.cursor = self.connection.cursor()
            self.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
            self.execute(f"CREATE TABLE {FLOOR_TABLE} LIKE {SESSION_TABLE}")
        elif self.postgres:
            self.connection = psycopg.connect(
                dbname=db["NAME"],
                user=db.get("USER") or None,
                password=db.get("PASSWORD") or None,
                host=db.get("HOST") or None,
                port=db.get("PORT") or None,
                autocommit=True,
            )
            self.connection.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
            self.connection.execute(
                f"CREATE TABLE {FLOOR_TABLE} (LIKE {SESSION_TABLE} INCLUDING ALL)"
            )
        else:
            self.connection = sqlite3.connect(db["NAME"], isolation_level=None)
            self.connection.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
            schema = self.connection.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL",
                (SESSION_TABLE,),
            ).fetchall()
            for (statement,) in schema:
                self.connection.execute(statement.replace(SESSION_TABLE, FLOOR_TABLE))

    def execute(self, statement: str, params: tuple[object, ...] = ()) -> object:
        """Run one statement in autocommit mode; return what ``fetchone()`` is called on."""
        if self.mysql:  # a DB-API cursor, as Django's driver gives it
            self.cursor.execute(statement, params)
            return self.cursor
        if self.postgres:
            return self.connection.execute(statement, params)
        return self.connection.execute(statement.replace("%s", "?"), params)

    def _time(self, moment: datetime) -> object:
        if self.mysql:  # DATETIME(6) holds naive UTC, as Django writes it with USE_TZ
            return moment.replace(tzinfo=None)
        # sqlite3's datetime adapter is deprecated; Django stores this text form too.
        return moment if self.postgres else moment.isoformat(" ")

    def _now(self) -> datetime:
        return datetime.now(dt_timezone.utc)

    def read(self, key: str) -> object:
        statement = f"SELECT {self.COLUMNS} FROM {FLOOR_TABLE} WHERE session_key = %s"
        return self.execute(statement, (key,)).fetchone()

    def write(self, key: str) -> object:
        now = self._now()
        statement = (
            f"UPDATE {FLOOR_TABLE} SET session_data = %s, expire_date = %s, last_activity = %s "
            "WHERE session_key = %s"
        )
        params = (self.data, self._time(now + AGE), self._time(now), key)
        return self.execute(statement, params)

    def create(self, key: str) -> object:
        now = self._now()
        statement = (
            f"INSERT INTO {FLOOR_TABLE} (session_key, session_data, expire_date, ip, user_agent, "
            "created_at, last_activity) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        )
        params = (
            key,
            self.data,
            self._time(now + AGE),
            "127.0.0.1",
            USER_AGENT,
            self._time(now),
            self._time(now),
        )
        return self.execute(statement, params)

    def rekey(self, old: str, new: str) -> object:
        # The least a cycle_key needs: the row moves to the new key, with the login's data.
        now = self._now()
        statement = (
            f"UPDATE {FLOOR_TABLE} SET session_key = %s, session_data = %s, user_id = %s, "
            "expire_date = %s, last_activity = %s WHERE session_key = %s"
        )
        params = (new, self.data, "1", self._time(now + AGE), self._time(now), old)
        return self.execute(statement, params)

    def close(self) -> None:
        self.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        self.connection.close()


class RedisFloor(Floor):
    """redis-py on its own connection, under the benchmark's key prefix."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.prefix = f"{settings.BENCH_REDIS_PREFIX}:floor:"
        self.ttl_ms = int(AGE.total_seconds() * 1000)

    def close(self) -> None:
        self.client.close()


class RedisBlobFloor(RedisFloor):
    """One string per session, pickled as django-redis stores it: GET, SET."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.blob = pickle.dumps(encoded_payload(), pickle.HIGHEST_PROTOCOL)

    def read(self, key: str) -> object:
        return self.client.get(self.prefix + key)

    def write(self, key: str) -> object:
        return self.client.set(self.prefix + key, self.blob, px=self.ttl_ms)

    def create(self, key: str) -> object:
        return self.client.set(self.prefix + key, self.blob, px=self.ttl_ms, nx=True)

    def rekey(self, old: str, new: str) -> object:
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.prefix + new, self.blob, px=self.ttl_ms).delete(self.prefix + old)
        return pipe.execute()


class WriteThroughFloor(Floor):
    """cached_db's floor: reads hit the cache; writes go to the database, then the cache."""

    def __init__(self, url: str) -> None:
        self.sql = SqlFloor()
        self.cache = RedisBlobFloor(url)

    def seed(self, key: str) -> None:
        self.create(key)

    def read(self, key: str) -> object:
        return self.cache.read(key)

    def write(self, key: str) -> object:
        return self.sql.write(key), self.cache.write(key)

    def create(self, key: str) -> object:
        return self.sql.create(key), self.cache.create(key)

    def rekey(self, old: str, new: str) -> object:
        return self.sql.rekey(old, new), self.cache.rekey(old, new)

    def close(self) -> None:
        self.sql.close()
        self.cache.close()


class FileFloor(Floor):
    """One file per session: read it whole; replace it atomically and durably."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.data = encoded_payload().encode()

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key)

    def read(self, key: str) -> object:
        with open(self._path(key), "rb") as file:
            return file.read()

    def write(self, key: str) -> object:
        path = self._path(key)
        temporary = f"{path}.tmp"
        with open(temporary, "wb") as file:
            file.write(self.data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)

    create = write

    def rekey(self, old: str, new: str) -> object:
        self.write(new)
        os.unlink(self._path(old))


class SigningFloor(Floor):
    """The cookie is the store: unsign and sign the same payload, as Django signs it."""

    SALT = "django.contrib.sessions.backends.signed_cookies"

    def __init__(self) -> None:
        self.payload = session_payload()
        self.cookie = self._sign()

    def _sign(self) -> str:
        return signing.dumps(
            self.payload, salt=self.SALT, serializer=signing.JSONSerializer, compress=True
        )

    def seed(self, key: str) -> None:
        """Nothing is stored server-side."""

    def read(self, key: str) -> object:
        return signing.loads(self.cookie, salt=self.SALT, serializer=signing.JSONSerializer)

    def write(self, key: str) -> object:
        return self._sign()

    create = write

    def rekey(self, old: str, new: str) -> object:
        return self._sign()


def floor_for(kind: str, redis_url: str | None, file_dir: str) -> Floor:
    if kind == "sql":
        return SqlFloor()
    if kind == "redis_blob":
        return RedisBlobFloor(redis_url)
    if kind == "sql+redis_blob":
        return WriteThroughFloor(redis_url)
    if kind == "file":
        return FileFloor(file_dir)
    if kind == "signing":
        return SigningFloor()
    raise ValueError(f"Unknown floor {kind!r}.")


FLOOR_DESCRIPTIONS = {
    "sql": "SELECT by primary key / UPDATE / INSERT / UPDATE of the key, one statement each "
    "(autocommit) on a table of the same shape",
    "redis_blob": "GET / SET PX (SET + DEL pipelined for a new key) of the same pickled blob",
    "sql+redis_blob": "cache GET for a read; SQL statement + cache SET for a write",
    "file": "read the file / write a temporary file, fsync, os.replace",
    "signing": "signing.loads / signing.dumps(compress=True) of the same payload",
}
