"""
Which errors count as a store outage, raised for real by the clients engines use; and what
a request meets when the store cannot be reached: 503 with Retry-After for requests that
need the session, the cookie left alone, one traceback per outage; requests that never
touch it are unaffected.

The outages the middleware meets are real: a cache alias pointing at a loopback port nothing
listens on, or a proxy whose link is cut.
"""

from __future__ import annotations

from typing import Any
from unittest import mock, skipUnless
from urllib.parse import urlsplit

import pymysql
import pytest
import redis
from django.conf import settings
from django.db import DatabaseError, OperationalError, connection
from django.db.utils import ConnectionHandler
from django.test import RequestFactory, SimpleTestCase, TestCase, override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from sessionplus.backends.db import SessionStore as DbStore
from sessionplus.exceptions import SessionStoreUnavailable
from sessionplus.outage import (
    RETRY_AFTER,
    UNREACHABLE_FILES,
    is_store_outage,
    unavailable_on,
    unavailable_response,
    unreachable_cache,
    unreachable_redis,
)
from tests.support.cuttable_proxy import CuttableProxy
from tests.support.engines import ENGINES, engine_matrix
from tests.support.middleware_support import (
    COOKIE,
    AsyncRequests,
    MiddlewareTestMixin,
    SyncRequests,
    cache_control,
)
from tests.support.services import (
    LIVE_OR_GONE_TIMEOUTS,
    dead_port,
    missing_service,
    mysql_driver,
    mysql_server,
    redis_url,
)

LIVE_POSTGRES = {"HOST": "127.0.0.1", "PORT": 5432, "USER": "postgres", "NAME": "postgres"}


def raised(function) -> BaseException:
    try:
        function()
    except Exception as exc:
        return exc
    raise AssertionError(f"{function} raised nothing")


def database(**options) -> ConnectionHandler:
    return ConnectionHandler({"default": options})


class ExceptionsTests(SimpleTestCase):
    def test_session_store_unavailable_is_an_outage_however_it_is_wrapped(self):
        unavailable = SessionStoreUnavailable("down")
        assert is_store_outage(unavailable)
        wrapped = ValueError("while rendering")
        wrapped.__cause__ = unavailable  # what "raise ... from unavailable" sets
        assert is_store_outage(wrapped)

    def test_builtin_connection_errors_are_outages(self):
        assert is_store_outage(ConnectionRefusedError())
        assert is_store_outage(TimeoutError())

    def test_other_errors_are_not(self):
        assert not is_store_outage(ValueError("bad data"))
        assert not is_store_outage(KeyError("value"))


class UnavailableOnTests(SimpleTestCase):
    """How an engine names the client errors that mean its store is down."""

    def test_the_named_errors_become_session_store_unavailable_with_their_cause(self):
        missing = FileNotFoundError("no such directory")
        expected = pytest.raises(SessionStoreUnavailable, match="no such directory")
        with expected as caught, unavailable_on(OSError):
            raise missing
        assert caught.value.__cause__ is missing
        assert is_store_outage(caught.value)

    def test_other_errors_pass_through_unchanged(self):
        with pytest.raises(KeyError), unavailable_on(OSError):
            raise KeyError("a bug, not an outage")

    def test_each_stores_guard_is_made_once_and_shared_by_nested_and_repeated_calls(self):
        for guard in (unreachable_cache, unreachable_redis):
            assert guard() is guard()
        refused = redis.exceptions.ConnectionError("refused")
        for _ in range(2):
            with (
                pytest.raises(SessionStoreUnavailable) as caught,
                unreachable_cache(),
                unreachable_cache(),
            ):
                raise refused
            assert caught.value.__cause__ is refused
        with pytest.raises(SessionStoreUnavailable), UNREACHABLE_FILES:
            raise PermissionError("read-only file system")
        with pytest.raises(KeyError), unreachable_redis():
            raise KeyError("a bug, not an outage")


class RedisErrorsTests(SimpleTestCase):
    def test_a_refused_connection_is_an_outage(self):
        with redis.Redis(port=dead_port(), socket_connect_timeout=1) as client:
            error = raised(client.ping)
        assert isinstance(error, redis.exceptions.ConnectionError)
        assert is_store_outage(error)

    @pytest.mark.usefixtures("redis_server")
    def test_a_command_error_is_not(self):
        with redis.Redis.from_url(redis_url()) as client:
            error = raised(lambda: client.execute_command("NO-SUCH-COMMAND"))
        assert isinstance(error, redis.exceptions.ResponseError)
        assert not is_store_outage(error)


class DatabaseErrorsTests(SimpleTestCase):
    # The connections below are this test's own (not the suite's), to real servers.
    databases = {"default"}

    def test_a_refused_postgresql_connection_is_an_outage(self):
        handler = database(
            ENGINE="django.db.backends.postgresql", **{**LIVE_POSTGRES, "PORT": dead_port()}
        )
        error = raised(handler["default"].ensure_connection)
        handler.close_all()
        assert isinstance(error, DatabaseError)
        assert is_store_outage(error)

    def test_a_cancelled_postgresql_statement_is_not(self):
        handler = database(ENGINE="django.db.backends.postgresql", **LIVE_POSTGRES)
        try:
            handler["default"].ensure_connection()
        except DatabaseError as exc:
            missing_service(f"PostgreSQL at 127.0.0.1:5432: {exc}")
        try:
            with handler["default"].cursor() as cursor:
                cursor.execute("SET statement_timeout = 10")
                error = raised(lambda: cursor.execute("SELECT pg_sleep(5)"))
        finally:
            handler.close_all()
        assert type(error.__cause__).__name__ == "QueryCanceled"
        assert not is_store_outage(error)

    def test_a_sqlite_statement_error_is_not(self):
        handler = database(ENGINE="django.db.backends.sqlite3", NAME=":memory:")
        try:
            with handler["default"].cursor() as cursor:
                error = raised(lambda: cursor.execute("SELECT * FROM no_such_table"))
        finally:
            # Django's close() keeps an in-memory database open (closing would drop it).
            handler["default"].connection.close()
        assert isinstance(error, DatabaseError)
        assert not is_store_outage(error)


class MySQLErrorsTests(SimpleTestCase):
    """
    mysqlclient (Django's driver, through Django's connection) and PyMySQL, against a real
    MariaDB or MySQL server: refused, cut mid-session, or answering with a statement error.
    """

    databases = {"default"}

    def live_server(self) -> dict:
        server = mysql_server()
        try:
            with pymysql.connect(
                host=server["HOST"],
                port=server["PORT"],
                user=server["USER"],
                password=server["PASSWORD"],
                connect_timeout=2,
            ):
                pass
        except pymysql.err.OperationalError as exc:
            missing_service(f"MySQL/MariaDB at {server['HOST']}:{server['PORT']}: {exc}")
        return server

    def connections(self, **overrides) -> ConnectionHandler:
        """A handler of this test's own, on mysqlclient; closed when the test ends."""
        mysql_driver()
        handler = ConnectionHandler(
            {alias: {**mysql_server(), **overrides} for alias in ("default", "other")}
        )
        self.addCleanup(handler.close_all)
        return handler

    @staticmethod
    def pymysql_client(port: int) -> pymysql.connections.Connection:
        """
        Connect with pymysql to the live server through ``port``: timeouts set, three tries.

        In one CI run of this session a handshake through the proxy never reached the
        client (the server logged a connection that sent no authentication), and pymysql,
        which has no timeout by default, waited until the test's own timeout. The test is
        about what follows the connection, not about making it.
        """
        server = mysql_server()
        tries = 3
        while True:
            tries -= 1
            try:
                return pymysql.connect(
                    host="127.0.0.1",
                    port=port,
                    user=server["USER"],
                    password=server["PASSWORD"],
                    connect_timeout=5,
                    read_timeout=5,
                    write_timeout=5,
                )
            except pymysql.err.OperationalError:
                if not tries:
                    raise

    def cut_link(self) -> CuttableProxy:
        """A proxy to the live server, cut when the test says so, closed when it ends."""
        server = self.live_server()
        proxy = CuttableProxy(server["HOST"], server["PORT"]).__enter__()
        self.addCleanup(proxy.__exit__, None, None, None)
        return proxy

    def test_a_refused_mysqlclient_connection_is_an_outage(self):
        handler = self.connections(HOST="127.0.0.1", PORT=dead_port())
        error = raised(handler["default"].ensure_connection)
        assert isinstance(error, DatabaseError)
        assert error.__cause__.args[0] == 2002  # CR_CONNECTION_ERROR: can't connect
        assert is_store_outage(error)

    def test_a_mysqlclient_connection_lost_mid_session_is_an_outage(self):
        proxy = self.cut_link()
        handler = self.connections(HOST="127.0.0.1", PORT=proxy.port)
        with handler["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            proxy.cut()
            error = raised(lambda: cursor.execute("SELECT 1"))
        assert isinstance(error, DatabaseError)
        # Lost during the query (2013) or found gone before it (2006): either way, down.
        assert error.__cause__.args[0] in (2006, 2013)
        assert is_store_outage(error)

    def test_a_lock_wait_timeout_is_not_an_outage(self):
        self.live_server()
        handler = self.connections()
        table = f"sessionplus_lock_probe_{dead_port()}"
        holder, waiter = handler["default"], handler["other"]
        with holder.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY) ENGINE=InnoDB")
        self.addCleanup(lambda: holder.cursor().execute(f"DROP TABLE {table}"))
        with holder.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} VALUES (1)")
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {table} WHERE id = 1 FOR UPDATE")
        with waiter.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
            error = raised(lambda: cursor.execute(f"UPDATE {table} SET id = 2 WHERE id = 1"))
        holder.rollback()
        holder.set_autocommit(True)
        assert isinstance(error, DatabaseError)
        assert error.__cause__.args[0] == 1205  # ER_LOCK_WAIT_TIMEOUT, an OperationalError
        assert not is_store_outage(error)

    def test_a_refused_pymysql_connection_is_an_outage(self):
        error = raised(lambda: pymysql.connect(host="127.0.0.1", port=dead_port()))
        assert isinstance(error, pymysql.err.OperationalError)
        assert error.args[0] == 2003  # CR_CONN_HOST_ERROR
        assert is_store_outage(error)

    def test_a_pymysql_connection_lost_mid_session_is_an_outage(self):
        proxy = self.cut_link()
        with self.pymysql_client(proxy.port) as client, client.cursor() as cursor:
            cursor.execute("SELECT 1")
            proxy.cut()
            error = raised(lambda: cursor.execute("SELECT 1"))
        assert isinstance(error, pymysql.err.OperationalError)
        assert error.args[0] in (2006, 2013)
        assert is_store_outage(error)


class UnavailableResponseTests(SimpleTestCase):
    def test_a_503_asking_to_retry_that_no_cache_keeps(self):
        response = unavailable_response(RequestFactory().get("/"))
        assert response.status_code == 503
        assert response["Retry-After"] == str(RETRY_AFTER)
        assert "no-store" in response["Cache-Control"]
        assert b"<h1>Temporarily unavailable</h1>" in response.content

    @override_settings(
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "loaders": [
                        (
                            "django.template.loaders.locmem.Loader",
                            {"sessionplus/store_unavailable.html": "Back soon."},
                        )
                    ]
                },
            }
        ]
    )
    def test_a_site_can_override_the_page(self):
        assert unavailable_response(RequestFactory().get("/")).content == b"Back soon."


# Through the middleware ---------------------------------------------------------------------

KNOWN_LOOKING_KEY = "k" * 32
DJANGO_REDIS = "django_redis.cache.RedisCache"
DJANGOS_REDIS = "django.core.cache.backends.redis.RedisCache"


def dead_caches(backend: str) -> dict[str, Any]:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {
            "BACKEND": backend,
            "LOCATION": f"redis://127.0.0.1:{dead_port()}/0",
            **({"OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1}} if backend == DJANGO_REDIS else {}),
        },
    }


class OutageContract(MiddlewareTestMixin):
    """Mix into a TestCase with ``engine``, ``cache_backend`` and a request mode."""

    cache_backend: str

    def setUp(self) -> None:
        self.extra_settings = {
            "CACHES": dead_caches(self.cache_backend),
            "SESSION_CACHE_ALIAS": "sessions",
            "SESSIONPLUS_REDIS_ALIAS": "sessions",
        }
        super().setUp()
        self.set_cookie(KNOWN_LOOKING_KEY)

    def assert_unavailable(self, response: Any) -> None:
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert b"Temporarily unavailable" in response.content
        assert {"no-store", "private"} <= cache_control(response)
        # The cookie is left alone: nobody is logged out by a blip.
        assert COOKIE not in response.cookies

    def logged_once(self, path: str, data: Any = None, **kwargs: Any) -> tuple[Any, list[str]]:
        with self.assertLogs(level="WARNING") as logs:
            response = self.get(path, data, **kwargs)
        self.log_records = logs.records
        return response, [record.name for record in logs.records]

    def test_a_project_without_template_engines_gets_the_page(self):
        with self.settings(TEMPLATES=[]):
            response, _ = self.logged_once("/write/")
        self.assert_unavailable(response)

    def test_a_template_engine_without_app_directories_gets_the_page(self):
        engine = {"BACKEND": "django.template.backends.django.DjangoTemplates"}
        with self.settings(TEMPLATES=[engine]):
            response, _ = self.logged_once("/write/")
        self.assert_unavailable(response)

    def test_a_client_preferring_json_gets_json(self):
        response, _ = self.logged_once("/write/", headers={"Accept": "application/json"})
        assert response.status_code == 503
        assert response.json() == {"error": "session_store_unavailable", "retry_after": 5}
        assert response["Retry-After"] == "5"
        assert COOKIE not in response.cookies

    def test_a_request_that_never_touches_the_session_is_unaffected(self):
        with self.assertNoLogs(level="WARNING"):
            response = self.get("/nothing/")
        assert response.status_code == 200
        assert COOKIE not in response.cookies

    def test_a_write_gets_503_with_retry_after_and_the_cookie_untouched(self):
        response, loggers = self.logged_once("/write/")
        self.assert_unavailable(response)
        assert loggers == ["sessionplus.middleware"]
        record = self.log_records[0]
        assert record.levelname == "ERROR"
        assert record.getMessage() == "Session store unavailable: /write/"
        assert record.exc_info[0] is SessionStoreUnavailable
        assert isinstance(record.exc_info[1].__cause__, RedisConnectionError)

    def test_a_new_visitor_writing_gets_503_and_no_cookie(self):
        self.browser.cookies.clear()
        response, loggers = self.logged_once("/write/")
        self.assert_unavailable(response)
        assert loggers == ["sessionplus.middleware"]

    def test_a_login_during_the_outage_gets_503(self):
        self.create_user("ada")
        response, loggers = self.logged_once("/login/", {"username": "ada"})
        self.assert_unavailable(response)
        assert loggers == ["sessionplus.middleware"]

    def test_a_logout_during_the_outage_gets_503(self):
        response, loggers = self.logged_once("/flush/")
        self.assert_unavailable(response)
        assert loggers == ["sessionplus.middleware"]


class SessionplusEngineOutageContract(OutageContract):
    """sessionplus's engines report a failed read too: the view never runs on a guess."""

    def test_a_read_gets_503(self):
        response, loggers = self.logged_once("/read/")
        self.assert_unavailable(response)
        assert loggers == ["sessionplus.middleware"]

    def test_reading_the_user_gets_503_not_an_anonymous_page(self):
        response, _ = self.logged_once("/whoami/")
        self.assert_unavailable(response)

    def test_an_async_view_reading_gets_503(self):
        response, _ = self.logged_once("/async/read/")
        self.assert_unavailable(response)

    def test_a_session_read_in_other_middleware_gets_503_logged_once(self):
        self.browser = self.make_client(raise_request_exception=False)
        self.set_cookie(KNOWN_LOOKING_KEY)
        with self.settings(CSRF_USE_SESSIONS=True):
            response, loggers = self.logged_once("/nothing/")
        self.assert_unavailable(response)
        # CsrfViewMiddleware's error reached Django's handler, which logged it already.
        assert loggers == ["django.request"]


class DjangosCacheEngineOutageContract(OutageContract):
    def test_djangos_cache_engine_hides_a_failed_read_but_the_cookie_survives(self):
        # Django's cache engine answers an unreachable cache with an empty session
        # (ticket #17810); sessionplus's own engines raise instead (see above).
        response = self.get("/read/")
        assert response.content == b"-"
        assert COOKIE not in response.cookies


class OnDjangoRedis:
    cache_backend = DJANGO_REDIS


class OnDjangosRedis:
    cache_backend = DJANGOS_REDIS


MODES = (SyncRequests, AsyncRequests)
SESSIONPLUS_ON = (SessionplusEngineOutageContract, TestCase)
DJANGOS_ON = (DjangosCacheEngineOutageContract, TestCase)
engine_matrix(
    globals(), "DjangoRedisOutageTests", (OnDjangoRedis, *SESSIONPLUS_ON), ["cache", "redis"], MODES
)
engine_matrix(
    globals(), "DjangosRedisOutageTests", (OnDjangosRedis, *SESSIONPLUS_ON), ["cache"], MODES
)
engine_matrix(
    globals(), "DjangoRedisOutageTests", (OnDjangoRedis, *DJANGOS_ON), ["django_cache"], MODES
)
engine_matrix(
    globals(), "DjangosRedisOutageTests", (OnDjangosRedis, *DJANGOS_ON), ["django_cache"], MODES
)


@pytest.mark.usefixtures("redis_db")
class OutageLoggingContract(MiddlewareTestMixin):
    """
    One outage, one traceback: the redis engine on the suite's real Redis behind a proxy
    whose link is cut and restored, as a failover would.
    """

    engine = ENGINES["redis"]

    def setUp(self) -> None:
        target = urlsplit(redis_url())
        self.proxy = CuttableProxy(target.hostname, target.port).__enter__()
        self.addCleanup(self.proxy.__exit__, None, None, None)
        proxied = {
            "BACKEND": DJANGO_REDIS,
            "LOCATION": f"redis://127.0.0.1:{self.proxy.port}{target.path}",
            "OPTIONS": LIVE_OR_GONE_TIMEOUTS,
        }
        self.extra_settings = {
            "CACHES": {**settings.CACHES, "proxied": proxied},
            "SESSIONPLUS_REDIS_ALIAS": "proxied",
        }
        super().setUp()

    def test_the_first_503_is_logged_in_full_the_next_briefly_and_the_recovery_once(self):
        assert self.get("/write/").status_code == 200
        self.proxy.cut()
        with self.assertLogs("sessionplus.middleware", "WARNING") as logs:
            for path in ("/read/", "/write/", "/read/"):
                assert self.get(path).status_code == 503
        first, *others = logs.records
        assert first.levelname == "ERROR"
        assert first.getMessage() == "Session store unavailable: /read/"
        assert first.exc_info[0] is SessionStoreUnavailable
        assert [(record.levelname, record.exc_info) for record in others] == [
            ("WARNING", None),
            ("WARNING", None),
        ]
        assert [record.getMessage() for record in others] == [
            "Session store still unavailable: /write/ (2 requests failed in this outage)",
            "Session store still unavailable: /read/ (3 requests failed in this outage)",
        ]

        self.proxy.restore()
        with self.assertLogs("sessionplus.middleware", "INFO") as logs:
            assert self.get("/read/").content == b"x"
        [recovery] = logs.records
        assert recovery.levelname == "WARNING"
        assert recovery.getMessage().startswith("Session store available again after ")
        assert recovery.getMessage().endswith(" seconds (3 requests failed).")
        with self.assertNoLogs("sessionplus.middleware", "DEBUG"):
            assert self.get("/read/").status_code == 200

    def test_the_next_outage_is_logged_in_full_again(self):
        assert self.get("/write/").status_code == 200
        for _ in range(2):
            self.proxy.cut()
            with self.assertLogs("sessionplus.middleware", "ERROR") as logs:
                assert self.get("/write/").status_code == 503
            assert logs.records[0].exc_info[0] is SessionStoreUnavailable
            self.proxy.restore()
            with self.assertLogs("sessionplus.middleware", "WARNING"):
                assert self.get("/write/").status_code == 200


engine_matrix(globals(), "OutageLoggingTests", (OutageLoggingContract, TestCase), ["redis"], MODES)


class DbEngineLoginOutageContract(MiddlewareTestMixin):
    """The db engine losing its database as a login moves the session to its new key."""

    engine = ENGINES["db"]
    assert_unavailable = OutageContract.assert_unavailable
    logged_once = OutageContract.logged_once

    def test_a_login_whose_key_change_loses_the_database_gets_503(self):
        self.get("/write/")  # a stored session for the login to move
        self.create_user("ada")
        # Fault injection: a database lost between the load and the key change cannot be
        # timed for real.
        lost = OperationalError("server closed the connection unexpectedly")
        lost.__cause__ = ConnectionResetError()
        with mock.patch.object(DbStore, "_move", side_effect=lost):
            response, loggers = self.logged_once("/login/", {"username": "ada"})
        self.assert_unavailable(response)
        assert loggers == ["sessionplus.middleware"]


engine_matrix(globals(), "LoginOutageTests", (DbEngineLoginOutageContract, TestCase), ["db"], MODES)


@skipUnless(
    connection.vendor == "mysql",
    "the db engine stores sessions in the suite's database, which is not MySQL/MariaDB here "
    "(run with DATABASE_URL=mysql://…)",
)
class MySQLDbEngineOutageContract(MiddlewareTestMixin):
    """
    The db engine on MySQL/MariaDB: the suite's own connection, rerouted through a proxy
    whose link is cut, as a failover or a restart would cut it.
    """

    engine = ENGINES["db"]
    databases = {"default"}
    assert_unavailable = OutageContract.assert_unavailable
    logged_once = OutageContract.logged_once

    def setUp(self) -> None:
        super().setUp()
        self.proxy = CuttableProxy(
            connection.settings_dict["HOST"], connection.settings_dict["PORT"]
        )
        self.proxy.__enter__()
        self.addCleanup(self.proxy.__exit__, None, None, None)
        route = {"HOST": "127.0.0.1", "PORT": self.proxy.port}
        direct = {name: connection.settings_dict[name] for name in route}
        connection.close()
        connection.settings_dict.update(route)
        self.addCleanup(connection.settings_dict.update, direct)
        self.addCleanup(connection.close)
        self.set_cookie(KNOWN_LOOKING_KEY)

    def assert_lost_connection(self) -> None:
        cause = self.log_records[0].exc_info[1].__cause__
        assert isinstance(cause, OperationalError)  # Django's, wrapping mysqlclient's
        assert cause.args[0] in (2006, 2013)  # server gone away / connection lost

    def test_a_read_whose_connection_was_cut_gets_503_with_retry_after(self):
        connection.ensure_connection()
        self.proxy.cut()
        response, loggers = self.logged_once("/read/")
        self.assert_unavailable(response)
        assert loggers == ["sessionplus.middleware"]
        self.assert_lost_connection()

    def test_a_write_while_the_server_hangs_up_gets_503(self):
        self.proxy.cut()
        response, loggers = self.logged_once("/write/")
        self.assert_unavailable(response)
        assert loggers == ["sessionplus.middleware"]
        self.assert_lost_connection()


engine_matrix(
    globals(), "MySQLOutageTests", (MySQLDbEngineOutageContract, SimpleTestCase), ["db"], MODES
)
