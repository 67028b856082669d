"""Database-backed sessions: one SQL statement per session operation."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from asgiref.sync import sync_to_async
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, QuerySet
from django.dispatch import receiver
from django.utils import timezone
from django.utils.asyncio import async_unsafe
from django.utils.functional import cached_property

from sessionplus.backends.base import (
    MAX_CREATE_ATTEMPTS,
    CreateError,
    SessionPlusBase,
    UpdateError,
    is_valid_session_key,
)
from sessionplus.backends.data_rule import RESERVED_KEY_PREFIX
from sessionplus.backends.metadata import METADATA_FIELDS, SessionMetadata, is_metadata_value
from sessionplus.backends.record import StoredSession
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.cleanup import CleanupBatch, delete_expired_rows
from sessionplus.conf import conf
from sessionplus.identifiers import public_id
from sessionplus.plans import Plan, Step

_TIMESTAMP_FIELDS = ("created_at", "last_activity")
_Result = TypeVar("_Result")


def as_datetime(timestamp: float) -> datetime:
    """
    Return a UNIX timestamp as the datetime a DateTimeField stores: aware under USE_TZ,
    otherwise naive *process local* time.

    Without USE_TZ, Django's clock (``timezone.now()``, which its engine and
    ``clearsessions`` compare expire_date with) is the process's local time, not
    TIME_ZONE's: the two differ under ``settings.configure()``, on Windows, or with a TZ
    environment that disagrees.
    """
    if conf.USE_TZ:
        return datetime.fromtimestamp(timestamp, tz=dt_timezone.utc)
    return datetime.fromtimestamp(timestamp)


def as_timestamp(moment: datetime) -> float:
    """Return a DateTimeField value as a UNIX timestamp (naive means process local time)."""
    return moment.timestamp()


@functools.cache
def _metadata_columns_of(model: type[AbstractBaseSession]) -> tuple[str, ...]:
    # A model's fields are fixed once the app registry is ready; this runs on every load.
    names = {field.name for field in model._meta.concrete_fields}
    return tuple(name for name in METADATA_FIELDS if name in names)


def carried_in_data(metadata: Mapping[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """
    Return the metadata a row keeps in its session data instead of in columns.

    That is every recorded field the model has no column for (a project's own model),
    and an empty string, which a column reads back as "nothing recorded": an empty
    ``User-Agent`` at login must still bind the session to an empty one.
    """
    return {
        name: value
        for name, value in metadata.items()
        if value is not None and (name not in columns or value == "")
    }


@functools.cache
def _loaded_columns(model: type[AbstractBaseSession]) -> tuple[str, ...]:
    public = ("public_id",) if _has_public_id_column(model) else ()
    return ("session_data", "expire_date", *_metadata_columns_of(model), *public)


def _field(model: type[AbstractBaseSession], name: str) -> Field[Any, Any]:
    """Return the field of column ``name`` of a session model."""
    field = model._meta.get_field(name)
    # A session model's columns are plain fields: never a relation's other side.
    assert isinstance(field, Field)
    return field


@functools.cache
def _session_model() -> type[AbstractBaseSession]:
    # Imported on first use, so that importing the engine never needs the app registry;
    # once, since an import statement costs a request more than the rest of this lookup.
    from sessionplus.models import Session

    return Session


def _new_row(model: type[AbstractBaseSession], values: Mapping[str, Any]) -> AbstractBaseSession:
    """
    Return ``model(**values)``, built as Django builds a row it read: from positional
    values, every column ``values`` leaves out at its default (as keywords would).
    """
    # Keywords take Model.__init__ through a slower path: about 10,000 CPU instructions
    # of a save's 600,000.
    columns = [
        values[field.attname] if field.attname in values else field.get_default()
        for field in model._meta.concrete_fields
    ]
    build: Callable[..., AbstractBaseSession] = model  # django-stubs types keywords only
    return build(*columns)


@functools.cache
def _has_public_id_column(model: type[AbstractBaseSession]) -> bool:
    return any(field.name == "public_id" for field in model._meta.concrete_fields)


# The per-request statements' cursors of each connection object (each thread has its own),
# with the DB-API connection they were made on: psycopg 3 sets up adapters and loaders for
# every new cursor, about 25 µs a statement on the benchmark machine. Two: one for the
# statements that read or delete by key, one for those that write a row (_writing_cursor()).
_kept_cursors: WeakKeyDictionary[BaseDatabaseWrapper, tuple[Any, CursorWrapper, CursorWrapper]] = (
    WeakKeyDictionary()
)
_fetch_one = operator.methodcaller("fetchone")
_row_count = operator.attrgetter("rowcount")


@async_unsafe
def kept_cursor(connection: BaseDatabaseWrapper, writes: bool = False) -> CursorWrapper | None:
    """
    Return the cursor kept for ``connection``'s session statements (those that write a row
    with ``writes``), or None where Django's ``cursor()`` does more than hand one out: no
    connection open yet, queries logged (``DEBUG``, ``CaptureQueriesContext``) or a health
    check due (``CONN_HEALTH_CHECKS``). A cursor made before Django reconnected is never
    used again.
    """
    raw = connection.connection
    # Django's attributes for CONN_HEALTH_CHECKS, which django-stubs leaves out.
    health_check_due = connection.health_check_enabled and not connection.health_check_done  # type: ignore[attr-defined]
    if raw is None or connection.queries_logged or health_check_due:
        return None
    connection.validate_thread_sharing()
    kept = _kept_cursors.get(connection)
    if kept is None or kept[0] is not raw:
        reading = connection.cursor()
        kept = (raw, reading, _writing_cursor(connection, raw) or reading)
        _kept_cursors[connection] = kept
    return kept[2] if writes else kept[1]


def _writing_cursor(connection: BaseDatabaseWrapper, raw: Any) -> CursorWrapper | None:
    """
    Return a cursor for the statements that write a session's row where it differs from
    Django's: on psycopg 3, one that sends the parameters apart from the statement
    (server-side binding). Else None.

    Django binds client-side by default, so that any query the ORM builds runs as written;
    this engine's statements run alike either way. Quoting a session's data into the text
    of an ``INSERT`` or ``UPDATE`` in Python cost about 6% of a modify's CPU instructions,
    more than the extended protocol adds: a write took 23 µs less, a load (a key, not data,
    to quote) 7 µs more, so loads keep Django's binding. Statements are prepared only
    where psycopg's ``prepare_threshold`` (the database's ``OPTIONS``) allows it: Django
    leaves it off, for connection poolers.
    """
    if connection.vendor != "postgresql":
        return None
    from django.db.backends.postgresql import base as postgresql

    binding = getattr(postgresql, "ServerBindingCursor", None)  # psycopg 2 has none
    if binding is None:
        return None
    # Django's own cursor() (its time zone setup, its wrapper), made from this factory
    # once; the raw connection belongs to this thread.
    factory, raw.cursor_factory = raw.cursor_factory, binding
    try:
        return connection.cursor()
    finally:
        raw.cursor_factory = factory


def execute(
    connection: BaseDatabaseWrapper,
    sql: str,
    params: Sequence[Any],
    result: Callable[[CursorWrapper], _Result] | None = None,
    writes: bool = False,
) -> Any:
    """
    Run one statement on the kept cursor (the writing one with ``writes``), else on one of
    its own; return ``result(cursor)``.
    """
    kept = kept_cursor(connection, writes)
    cursor = connection.cursor() if kept is None else kept
    try:
        cursor.execute(sql, params)
        return None if result is None else result(cursor)
    finally:
        if kept is None:
            cursor.close()


class _LoadStatement:
    """
    The load's SELECT for one session model on one connection, built once.

    Building and compiling the equivalent QuerySet took most of a load's time; the SQL,
    the field preparation and the backend's result converters do not change per request.
    """

    def __init__(self, model: type[AbstractBaseSession], connection: BaseDatabaseWrapper) -> None:
        meta = model._meta
        fields = [_field(model, name) for name in _loaded_columns(model)]
        quote = connection.ops.quote_name
        self.names = tuple(field.name for field in fields)
        # The key is the primary key: at most one row, so no ORDER BY or LIMIT. Whether it
        # expired is read from expire_date in Python, as every engine checks it (cheaper
        # than preparing the current time for the backend on every load).
        key_field = _field(model, "session_key")
        self.sql = "SELECT {} FROM {} WHERE {} = %s".format(
            ", ".join(quote(field.column) for field in fields),
            quote(meta.db_table),
            quote(key_field.column),
        )
        self.prepare_key = functools.partial(key_field.get_db_prep_value, connection=connection)
        # What the ORM's compiler applies to each selected column (SQLite and MySQL turn
        # datetimes aware under USE_TZ, for instance).
        self.converters = []
        for index, field in enumerate(fields):
            column = field.get_col(meta.db_table)
            converters = connection.ops.get_db_converters(column)
            converters += column.get_db_converters(connection)
            if converters:
                self.converters.append((index, converters, column))

    def fetch(self, connection: BaseDatabaseWrapper, session_key: str) -> dict[str, Any] | None:
        """Return the row of ``session_key`` by field name, expired or not, or None."""
        row = execute(connection, self.sql, (self.prepare_key(session_key),), _fetch_one)
        if row is None:
            return None
        values = list(row)
        for index, converters, column in self.converters:
            for converter in converters:
                values[index] = converter(values[index], column, connection)
        return dict(zip(self.names, values, strict=True))


class _InsertStatement:
    """
    The INSERT of one session row, built once per model and connection.

    What ``Model.save(force_insert=True)`` sends, without building and compiling an
    insert query per row: each field's ``pre_save()`` (``auto_now`` columns of a
    project's model) and ``get_db_prep_save()`` still prepare its value.
    """

    def __init__(self, model: type[AbstractBaseSession], connection: BaseDatabaseWrapper) -> None:
        meta = model._meta
        quote = connection.ops.quote_name
        self.fields = meta.concrete_fields
        self.sql = "INSERT INTO {} ({}) VALUES ({})".format(
            quote(meta.db_table),
            ", ".join(quote(field.column) for field in self.fields),
            ", ".join(["%s"] * len(self.fields)),
        )

    def run(self, connection: BaseDatabaseWrapper, row: AbstractBaseSession) -> None:
        """Insert ``row``; a taken key raises the backend's IntegrityError."""
        params = [
            field.get_db_prep_save(field.pre_save(row, True), connection) for field in self.fields
        ]
        execute(connection, self.sql, params, writes=True)


class _UpdateStatement:
    """An UPDATE of one session row's ``names`` columns, built once per model and connection."""

    def __init__(
        self,
        model: type[AbstractBaseSession],
        connection: BaseDatabaseWrapper,
        names: tuple[str, ...],
        checks_data: bool,
    ) -> None:
        meta = model._meta
        quote = connection.ops.quote_name
        self.fields = [(name, _field(model, name)) for name in names]
        conditions = [_field(model, "session_key")]
        if checks_data:
            # Only while the stored data is still what this session loaded.
            conditions.append(_field(model, "session_data"))
        self.conditions = conditions
        self.sql = "UPDATE {} SET {} WHERE {}".format(
            quote(meta.db_table),
            ", ".join(f"{quote(field.column)} = %s" for _, field in self.fields),
            " AND ".join(f"{quote(field.column)} = %s" for field in conditions),
        )

    def run(self, connection: BaseDatabaseWrapper, values: Mapping[str, Any], *where: Any) -> int:
        """Write ``values`` (by ``names``) to the row ``where`` matches; return the row count."""
        params = [field.get_db_prep_save(values[name], connection) for name, field in self.fields]
        params += [
            field.get_db_prep_value(value, connection)
            for field, value in zip(self.conditions, where, strict=True)
        ]
        rowcount: int = execute(connection, self.sql, params, _row_count, writes=True)
        return rowcount


class _DeleteStatement:
    """The DELETE of one session row by key, built once per model and connection."""

    def __init__(self, model: type[AbstractBaseSession], connection: BaseDatabaseWrapper) -> None:
        meta = model._meta
        quote = connection.ops.quote_name
        self.key_field = _field(model, "session_key")
        table, key = quote(meta.db_table), quote(self.key_field.column)
        self.sql = f"DELETE FROM {table} WHERE {key} = %s"

    def run(self, connection: BaseDatabaseWrapper, session_key: str) -> None:
        """Delete the row of ``session_key``, if there is one."""
        params = (self.key_field.get_db_prep_value(session_key, connection),)
        execute(connection, self.sql, params)


# Per connection object (each thread has its own), so the converters bound to a
# connection's operations are never used on another's; gone with the connection.
_statements: WeakKeyDictionary[BaseDatabaseWrapper, dict[tuple[Any, ...], Any]] = (
    WeakKeyDictionary()
)

# What a backend converts or prepares may depend on the time zone settings (MySQL's
# converters make datetimes aware only under USE_TZ), and a cursor keeps the loaders its
# connection had when it was made (Django registers others when they change): statements
# and cursors built before a change (override_settings in tests) are built again.
_TIME_ZONE_SETTINGS = frozenset({"USE_TZ", "TIME_ZONE"})


@receiver(setting_changed)
def _time_zone_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _TIME_ZONE_SETTINGS:
        _statements.clear()
        _kept_cursors.clear()


_Statement = TypeVar(
    "_Statement", _LoadStatement, _InsertStatement, _UpdateStatement, _DeleteStatement
)


def _statement(
    kind: type[_Statement],
    model: type[AbstractBaseSession],
    connection: BaseDatabaseWrapper,
    *options: Any,
) -> _Statement:
    """Return the ``kind`` statement for ``model`` on ``connection``, built on first use."""
    by_key = _statements.setdefault(connection, {})
    key = (kind, model, *options)
    try:
        statement: _Statement = by_key[key]  # built by ``kind``, the key's first item
    except KeyError:
        statement = by_key[key] = kind(model, connection, *options)
    return statement


def _claiming_key(
    connection: BaseDatabaseWrapper, run: Callable[..., _Result], *args: Any
) -> _Result:
    """Run a statement that writes a new session key; CreateError when the key is taken."""
    # In autocommit mode the statement is the only one. Inside a transaction it gets a
    # savepoint, so that a key collision does not abort the caller's transaction
    # (PostgreSQL refuses every later statement of an aborted one).
    in_transaction = connection.in_atomic_block
    try:
        with transaction.atomic(using=connection.alias) if in_transaction else nullcontext():
            return run(*args)
    except IntegrityError as exc:
        raise CreateError from exc


def delete_rows(rows: QuerySet[Any]) -> int:
    """Delete ``rows`` with one DELETE statement and return how many went."""
    # QuerySet.delete() wraps even a fast delete in transaction.atomic() (BEGIN and
    # COMMIT around the DELETE). _raw_delete() is the single statement it runs inside;
    # session rows have no signals or cascades to honour (Django's Collector calls it too).
    return rows._raw_delete(rows.db)


class SessionStore(SessionPlusBase):
    """
    Store sessions in ``sessionplus.Session``, or the model ``get_model_class()`` returns.

    Every operation is one statement, sent to the database the router names for writes,
    so a read right after a login never lands on a lagging replica. As with Django's
    engine, a project may return its own ``AbstractBaseSession`` subclass from
    ``get_model_class()`` and fill extra columns in ``create_model_instance()``; the
    metadata that model has no column for travels in the signed session data, so
    timeouts and binding work the same.
    """

    # Whether a touch checks that the stored data is still what this session loaded even
    # when it writes no data itself (cached_db copies the loaded data to its cache).
    touch_checks_data = False
    # Whether a save's UPDATE sets every column, or leaves out those still holding what
    # the row held at load (see _columns_as_loaded()); cached_db copies the whole row to
    # its cache, which must not disagree with the row.
    save_sets_every_column = False
    # What the row held when this store loaded it: its metadata, as engines store
    # metadata, and its public id.
    _metadata_at_load: Mapping[str, Any] = {}
    _public_id_at_load: str | None = None
    # The metadata the loaded data carried (see carried_in_data()).
    _carried_at_load: Mapping[str, Any] = {}
    # The key the row is still stored under while cycle_key()'s move waits for the save.
    _moving_from: str | None = None

    @classmethod
    def get_model_class(cls) -> type[AbstractBaseSession]:
        return _session_model()

    @cached_property
    def model(self) -> type[AbstractBaseSession]:
        return self.get_model_class()

    # Rows ----------------------------------------------------------------------------

    @classmethod
    def _rows(cls) -> QuerySet[Any]:
        # Rows of get_model_class()'s model, whose columns beyond AbstractBaseSession's
        # are known at run time (_metadata_columns()).
        model = cls.get_model_class()
        return model._default_manager.using(router.db_for_write(model))

    @classmethod
    def _live_rows(cls) -> QuerySet[Any]:
        return cls._rows().filter(expire_date__gt=timezone.now())

    @classmethod
    def _metadata_columns(cls) -> tuple[str, ...]:
        """Return the metadata fields the model has a column for."""
        return _metadata_columns_of(cls.get_model_class())

    def _column_values(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Return metadata (timestamps, strings) as values of the model's columns."""
        values = {}
        for name in self._metadata_columns():
            if name not in metadata:
                continue
            value = metadata[name]
            if value is None:
                # A NOT NULL column (user_agent) stores "not recorded" as its default.
                field = _field(self.model, name)
                values[name] = None if field.null else field.get_default()
            elif name in _TIMESTAMP_FIELDS:
                values[name] = as_datetime(value)
            else:
                values[name] = value
        return values

    @classmethod
    def _stored_metadata(cls, row: Mapping[str, Any]) -> dict[str, Any]:
        """Return a row's metadata columns as engines store metadata."""
        metadata = {}
        for name in cls._metadata_columns():
            value = row.get(name)
            if name in _TIMESTAMP_FIELDS and value is not None:
                value = as_timestamp(value)
            metadata[name] = value or None
        return metadata

    @classmethod
    def _stored(cls, row: Mapping[str, Any]) -> StoredSession:
        """Return a row's session_data, expire_date and metadata columns as a StoredSession."""
        metadata = cls._stored_metadata(row)
        return StoredSession(row["session_data"], as_timestamp(row["expire_date"]), metadata)

    def _row_values(self, row: AbstractBaseSession) -> dict[str, Any]:
        return {
            field.attname: getattr(row, field.attname)
            for field in self.model._meta.concrete_fields
            if not field.primary_key
        }

    # Load ----------------------------------------------------------------------------

    def _connection(self) -> BaseDatabaseWrapper:
        return connections[router.db_for_write(self.model)]

    def _read(self, session_key: str) -> StoredSession | None:
        connection = self._connection()
        row = _statement(_LoadStatement, self.model, connection).fetch(connection, session_key)
        if row is None:
            return None
        self._public_id_at_load = row.get("public_id")
        record = self._stored(row)
        return record if record.expires_at > now_timestamp() else None

    def _accept(self, record: StoredSession | None) -> dict[str, Any]:
        data = super()._accept(record)
        self._metadata_at_load = {} if record is None else record.metadata
        carried = data.pop(RESERVED_KEY_PREFIX, None)
        self._carried_at_load = {}
        if record is not None and isinstance(carried, dict):
            self._carried_at_load = {
                name: carried[name]
                for name in METADATA_FIELDS
                if name in carried and is_metadata_value(name, carried[name])
            }
            self._accept_metadata({**record.metadata, **self._carried_at_load})
        return data

    def decode(self, session_data: str | bytes) -> dict[str, Any]:
        # What get_decoded() and the admin show: the data without sessionplus's own field.
        data = super().decode(session_data)
        data.pop(RESERVED_KEY_PREFIX, None)
        return data

    def _encode_row_data(self, data: dict[str, Any], metadata: Mapping[str, Any]) -> str:
        carried = carried_in_data(metadata, self._metadata_columns())
        # Plain JSON, as the text records hold it: only sessionplus reads these rows.
        own_fields = {RESERVED_KEY_PREFIX: carried} if carried else None
        return self.encode(data, own_fields, plain=True)

    def exists(self, session_key: str | None) -> bool:
        if not is_valid_session_key(session_key):
            return False
        return self._live_rows().filter(session_key=session_key).exists()

    async def aexists(self, session_key: str | None) -> bool:
        if not is_valid_session_key(session_key):
            return False
        return await self._live_rows().filter(session_key=session_key).aexists()

    # Save ----------------------------------------------------------------------------

    def create_model_instance(self, data: dict[str, Any]) -> AbstractBaseSession:
        """
        Return the row that stores ``data`` and this session's metadata.

        As in Django, override it to fill a custom model's extra columns.
        """
        now = now_timestamp()
        metadata = self.metadata_for_write(now)
        session_key = self._get_or_create_session_key()
        # Columns a project's model may lack are among them only where it has them.
        values = {
            "session_key": session_key,
            "session_data": self._encode_row_data(data, metadata),
            "expire_date": as_datetime(self.expiry_timestamp(now)),
            **self._column_values(metadata),
        }
        if _has_public_id_column(self.model):
            values["public_id"] = public_id(session_key)
        return _new_row(self.model, values)

    async def acreate_model_instance(self, data: dict[str, Any]) -> AbstractBaseSession:
        """See create_model_instance(); building the row does no I/O once data is loaded."""
        return self.create_model_instance(data)

    def save(self, must_create: bool = False) -> None:
        if self._moving_from is not None:
            return self._move_row(self._get_session())
        if self.session_key is None:
            return self.create()
        row = self.create_model_instance(self._get_session(no_load=must_create))
        if must_create:
            self._insert(row)
        else:
            self._update(row)
        self._mark_saved()

    async def asave(self, must_create: bool = False) -> None:
        if self._moving_from is not None:
            return await sync_to_async(self._move_row)(await self._aget_session())
        if self.session_key is None:
            return await self.acreate()
        row = await self.acreate_model_instance(await self._aget_session(no_load=must_create))
        if must_create:
            await self._ainsert(row)
        else:
            await self._aupdate(row)
        self._mark_saved()

    def _insert(self, row: AbstractBaseSession) -> None:
        self._insert_row(row)

    async def _ainsert(self, row: AbstractBaseSession) -> None:
        # transaction.atomic() (the savepoint) has no async API yet.
        await sync_to_async(self._insert_row)(row)

    def _insert_row(self, row: AbstractBaseSession) -> None:
        connection = self._connection()
        statement = _statement(_InsertStatement, self.model, connection)
        _claiming_key(connection, statement.run, connection, row)

    def _update(self, row: AbstractBaseSession) -> None:
        self._update_row(row)

    # A new key ------------------------------------------------------------------------

    def cycle_key(self) -> None:
        """
        Move the session to a new key with one UPDATE of its row.

        Django's engine inserts a row under the new key, then deletes the old one: two
        statements (and a probe) where one moves the row. In a request the move waits for
        the response's save (a login always saves): the row moves and takes the login's
        data in that one UPDATE. Until then the old key still reads the session as it was
        before the login, and a response that fails (5xx, no save) leaves it as it was.
        Outside a request the row moves at once, as in Django.
        """
        data = self._get_session()
        old_key = self.session_key
        if old_key is None:  # nothing stored to move
            return super().cycle_key()
        if self._moving_from is None:  # a second cycle before the save moves the same row
            self._moving_from = old_key
        self._session_key = self._get_new_session_key()
        self.modified = True
        if self.request is None:  # nobody saves for this store: move now
            self._move_row(data)

    async def acycle_key(self) -> None:
        await self._aget_session()
        if self.request is None or self.session_key is None:
            # Statements run in a thread (the savepoint has no async API yet).
            await sync_to_async(self.cycle_key)()
        else:
            self.cycle_key()  # loaded above, so nothing here waits on the database

    def _move_row(self, data: dict[str, Any]) -> None:
        """Write ``data`` in place of the row that ``cycle_key()`` left under its old key."""
        old_key = self._moving_from
        assert old_key is not None  # only while a move waits
        for attempt in range(MAX_CREATE_ATTEMPTS):
            if attempt:  # the key cycle_key() chose was taken
                self._session_key = self._get_new_session_key()
            try:
                moved = self._move(self.create_model_instance(data), old_key)
            except CreateError:
                continue
            self._moving_from = None
            if not moved:  # deleted meanwhile: start afresh with what this request holds
                self._session_key = None
                self.create()
            self._mark_saved()
            return
        raise RuntimeError("Unable to create a new session key.")

    def _move(self, row: AbstractBaseSession, old_key: str) -> bool:
        """Write ``row`` in place of the row of ``old_key``; return whether there was one."""
        values = {"session_key": row.pk, **self._row_values(row)}
        connection = self._connection()
        statement = _statement(_UpdateStatement, self.model, connection, tuple(values), False)
        return bool(_claiming_key(connection, statement.run, connection, values, old_key))

    def _row_to_delete(self, session_key: str | None) -> str | None:
        """
        Return the key whose row ``delete(session_key)`` deletes, and cancel a waiting
        move when that is this session's own row (still under its old key until the move).
        """
        if session_key is not None:
            return session_key
        own, self._moving_from = self._moving_from or self.session_key, None
        return own

    async def _aupdate(self, row: AbstractBaseSession) -> None:
        # Not _update(): a subclass's override of it runs around this one (cached_db).
        await sync_to_async(self._update_row)(row)

    def _update_row(self, row: AbstractBaseSession) -> None:
        values = self._row_values(row)
        if not self.save_sets_every_column:
            for name in self._columns_as_loaded(values):
                del values[name]
        if not self._run_update(values, tuple(values), False, row.pk):
            raise UpdateError

    def _columns_as_loaded(self, values: Mapping[str, Any]) -> list[str]:
        """
        Return the metadata columns and the public id among ``values`` that hold what the
        row held when this store loaded it.

        An UPDATE that sets an indexed column rewrites its index entries even when the
        value is the same (SQLite: two pages more per save, for user_id and public_id).
        Like a touch, a save then never writes back a value another request changed
        meanwhile. A project's create_model_instance() that changes one is still written.
        """
        as_loaded = [
            name
            for name, value in self._column_values(self._metadata_at_load).items()
            if values[name] == value
        ]
        if "public_id" in values and values["public_id"] == self._public_id_at_load:
            as_loaded.append("public_id")
        return as_loaded

    def _run_update(
        self, values: Mapping[str, Any], names: tuple[str, ...], checks_data: bool, *where: Any
    ) -> int:
        connection = self._connection()
        statement = _statement(_UpdateStatement, self.model, connection, names, checks_data)
        return statement.run(connection, values, *where)

    # Touch ---------------------------------------------------------------------------

    def _touch_values(self, now: float) -> dict[str, Any]:
        values = {
            "expire_date": as_datetime(self.expiry_timestamp(now)),
            **self._column_values(self.metadata_for_touch(now)),
        }
        # Metadata kept in the data (a project's model without the columns) changed:
        # the touch rewrites the data, which is only safe while it is what was loaded.
        carried = carried_in_data(self._metadata, self._metadata_columns())
        if carried != self._carried_at_load:
            values["session_data"] = self._encode_row_data(self._session, self._metadata)
        return values

    def _touch_write(self, session_key: str) -> Plan[None]:
        """
        Refresh expiry and last activity with one UPDATE that leaves the data alone.

        Where the touch must write data (see ``_touch_values``) or copy it elsewhere
        (cached_db), the UPDATE only matches a row whose data is still what this session
        loaded; a newer save refreshed expiry and activity itself and is left alone.
        """
        yield Step(self, "_touch_row", self._touch_values(now_timestamp()))

    def _touch_row(self, values: dict[str, Any]) -> bool:
        """Touch the row; return whether its data was the loaded data (UpdateError if gone)."""
        return self._touch_stored_row(values)

    async def _atouch_row(self, values: dict[str, Any]) -> bool:
        # Not _touch_row(): a subclass's override of it runs around this one (cached_db).
        return await sync_to_async(self._touch_stored_row)(values)

    def _touch_stored_row(self, values: dict[str, Any]) -> bool:
        if not (self.touch_checks_data or "session_data" in values):
            if not self._run_update(values, tuple(values), False, self.session_key):
                raise UpdateError
            return True
        if self._run_update(values, tuple(values), True, self.session_key, self._loaded_data):
            return True
        # Rarely a second statement: a newer save, or a deleted row.
        if not self._rows().filter(pk=self.session_key).exists():
            raise UpdateError
        return False

    # Delete --------------------------------------------------------------------------

    def delete(self, session_key: str | None = None) -> None:
        session_key = self._row_to_delete(session_key)
        if is_valid_session_key(session_key):
            self._delete_row(session_key)

    async def adelete(self, session_key: str | None = None) -> None:
        session_key = self._row_to_delete(session_key)
        if is_valid_session_key(session_key):
            await sync_to_async(self._delete_row)(session_key)

    def _delete_row(self, session_key: str) -> None:
        connection = self._connection()
        _statement(_DeleteStatement, self.model, connection).run(connection, session_key)

    # Django's returns nothing; this one also says how many went (clearsessions_plus).
    @classmethod
    def clear_expired(cls) -> int:  # type: ignore[override]
        """Delete every expired session; return how many were deleted."""
        return delete_rows(cls._rows().filter(expire_date__lte=timezone.now()))

    @classmethod
    async def aclear_expired(cls) -> int:  # type: ignore[override]
        return await sync_to_async(cls.clear_expired)()

    @classmethod
    def clear_expired_in_batches(
        cls, batch_size: int, dry_run: bool = False
    ) -> Iterator[CleanupBatch]:
        """Delete expired rows oldest first, one short statement per batch."""
        return delete_expired_rows(cls.get_model_class(), batch_size, dry_run)

    # Sessions of a user ----------------------------------------------------------------

    @classmethod
    def _live_user_rows(cls, user_id: object, keep: str | None = None) -> QuerySet[Any]:
        if "user_id" not in cls._metadata_columns():
            model = cls.get_model_class()
            raise ImproperlyConfigured(f"{model.__name__} has no user_id column.")
        # Expired rows are left to clear_expired(): they are no one's session any more.
        rows = cls._live_rows().filter(user_id=str(user_id))
        return rows if keep is None else rows.exclude(session_key=keep)

    @classmethod
    def sessions_for_user(cls, user_id: object) -> list[str]:
        """Return the keys of a user's live sessions."""
        return list(cls._live_user_rows(user_id).values_list("session_key", flat=True))

    @classmethod
    async def asessions_for_user(cls, user_id: object) -> list[str]:
        rows = cls._live_user_rows(user_id).values_list("session_key", flat=True)
        return [key async for key in rows]

    @classmethod
    def _user_metadata_rows(cls, user_id: object) -> QuerySet[Any, dict[str, Any]]:
        return cls._live_user_rows(user_id).values("session_key", *cls._metadata_columns())

    @classmethod
    def _metadata_of(cls, row: Mapping[str, Any]) -> SessionMetadata:
        return SessionMetadata.from_stored(cls._stored_metadata(row))

    @classmethod
    def user_session_metadata(cls, user_id: object) -> dict[str, SessionMetadata]:
        """Return the metadata of a user's live sessions by key, with one SELECT."""
        rows = cls._user_metadata_rows(user_id)
        return {row["session_key"]: cls._metadata_of(row) for row in rows}

    @classmethod
    async def auser_session_metadata(cls, user_id: object) -> dict[str, SessionMetadata]:
        rows = cls._user_metadata_rows(user_id)
        return {row["session_key"]: cls._metadata_of(row) async for row in rows}

    @classmethod
    def end_sessions_for_user(cls, user_id: object, keep: str | None = None) -> int:
        """End every live session of a user except ``keep``; return how many ended."""
        return delete_rows(cls._live_user_rows(user_id, keep))

    @classmethod
    async def aend_sessions_for_user(cls, user_id: object, keep: str | None = None) -> int:
        return await sync_to_async(cls.end_sessions_for_user)(user_id, keep)
