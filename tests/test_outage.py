"""Which errors count as a store outage, raised for real by the clients engines use."""

from __future__ import annotations

import pymysql
import pytest
import redis
from django.db import DatabaseError
from django.db.utils import ConnectionHandler
from django.test import RequestFactory, SimpleTestCase, override_settings

from sessionplus.exceptions import SessionStoreUnavailable
from sessionplus.outage import RETRY_AFTER, is_store_outage, unavailable_on, unavailable_response
from tests.support.cuttable_proxy import CuttableProxy
from tests.support.services import dead_port, missing_service, mysql_driver, mysql_server, redis_url

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
        server = mysql_server()
        with (
            pymysql.connect(
                host="127.0.0.1", port=proxy.port, user=server["USER"], password=server["PASSWORD"]
            ) as client,
            client.cursor() as cursor,
        ):
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
