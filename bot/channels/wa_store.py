"""whatsmeow's session store in PostgreSQL, seen from our side (no neonize here).

- ``store_url`` / ``derived_store_url`` / ``number_store_url``: the lib/pq URL whatsmeow
  takes. By default the store lives in the app database, in its own schema
  (``search_path``), reached by its own role that can touch only that schema: whatsmeow
  looks for its tables by name in ``information_schema`` without a schema filter, so a role
  that could see ``whatsmeow_*`` tables elsewhere would break its upgrades.
- ``prepare_store``: runs whatsmeow's own table creation/upgrade once at a time under a
  PostgreSQL advisory lock (two numbers starting on an empty store race otherwise), retries
  ``failed to upgrade database``, and returns the devices the store holds.
- ``StoreProvisioner``: creates that schema and role, fits the role's connection limit to
  the number count, and moves tables an older Atiende left in the app's schema.
- ``explain_store_error``: whatsmeow / lib/pq / libpq words → what an operator should do.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bot.errors import SessionStoreError
from bot.logs import get_logger

log = get_logger("atiende.whatsapp.store")

# pg_advisory_lock key serializing whatsmeow's schema upgrades and our provisioning.
STORE_LOCK_KEY = 0x41_74_69_65_6E_64_65_57  # "AtiendeW"
UPGRADE_ATTEMPTS = 4
APP_NAME_PREFIX = "atiende-wa-"
URL_SETTING = "ATIENDE_CHANNELS__NEONIZE__STORE_URL"

ListDevices = Callable[[str], list[str]]


def _encode(query: dict[str, str]) -> str:
    return urlencode(query, safe="/:", quote_via=quote)


def store_url(database_url: str) -> str:
    """``postgresql://user@/db?host=/socket/dir`` → lib/pq's ``postgres://…`` for whatsmeow.

    lib/pq takes a unix-socket directory as ``host=/dir`` in the query string, like
    libpq; ``sslmode=disable`` is added unless given (the embedded server has no TLS).
    """
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("sslmode", "disable")
    return urlunsplit(("postgres", parts.netloc, parts.path, _encode(query), ""))


def derived_store_url(database_url: str, *, role: str, password: str, schema: str) -> str:
    """The app database reached as ``role``, whose ``search_path`` is ``schema`` only."""
    parts = urlsplit(store_url(database_url))
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["options"] = f"-c search_path={schema}"
    query.setdefault("connect_timeout", "10")
    return urlunsplit((parts.scheme, netloc, parts.path, _encode(query), ""))


def number_store_url(url: str, account: str) -> str:
    """``url`` tagged with the number (``application_name``) so its connections are counted."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["application_name"] = application_name(account)
    return urlunsplit(parts._replace(query=_encode(query)))


def application_name(account: str) -> str:
    return APP_NAME_PREFIX + "".join(ch for ch in account if ch.isdigit())


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/")) or "postgres"


def default_role(url: str) -> str:
    """``<database>_whatsmeow``: one store role per app database (roles are server-wide)."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", database_name(url).lower())
    return f"{cleaned}_whatsmeow"[:63]


def derived_password(secret: str, role: str) -> str:
    """The store role's password, derived from the app's secret key (nothing stored)."""
    digest = hmac.new(secret.encode(), f"atiende-whatsmeow-store:{role}".encode(), hashlib.sha256)
    return digest.hexdigest()[:40]


def redact(url: str) -> str:
    parts = urlsplit(url)
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        user = user.split(":", 1)[0] + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}{at}{host}"))


_EXPLAINED: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), text) for pattern, text in (
        (r"password authentication failed for user \"?([^\"\s]+)",
         "wrong password for the store user \"{0}\": fix the password in " + URL_SETTING),
        (r"database \"([^\"]+)\" does not exist",
         "the store database \"{0}\" does not exist: create it, or fix the database name in "
         + URL_SETTING),
        (r"role \"([^\"]+)\" does not exist",
         "the store user \"{0}\" does not exist: let Atiende create it (its database user needs "
         "CREATEROLE) or create it as the README says"),
        (r"unsupported database schema version: currently on v(\d+).*latest known: v(\d+)",
         "the store was written by a newer whatsmeow (schema v{0}; this Atiende knows up to "
         "v{1}): upgrade Atiende, or point " + URL_SETTING + " at another store"),
        (r"too many connections for role \"?([^\"\s]+)",
         "the store user \"{0}\" has used all the connections it may open: raise "
         "ATIENDE_CHANNELS__NEONIZE__STORE_CONNECTIONS_PER_NUMBER (and max_connections)"),
        (r"(?:dial unix|socket) \"?([^\"\s:]+)",
         "cannot reach the store's PostgreSQL: nothing listens at {0} (is the server running? "
         "check host= in the store URL)"),
        (r"(?:dial tcp|connection to server at) \"?([^\"\s]+).*(?:refused|timeout|timed out)",
         "cannot reach the store's PostgreSQL at {0}: is the server running and reachable?"),
        (r"(?:no such host|could not translate host name) ?\"?([^\"\s]*)",
         "cannot reach the store's PostgreSQL: unknown host {0}: check the host in the store URL"),
        (r"permission denied to (?:create|alter) role",
         "Atiende's database user may not create the store's user (it needs CREATEROLE): "
         "create that user as the README says, or set " + URL_SETTING),
        (r"permission denied for (\w+ \S+)",
         "the store user may not use {0}: it must own the store's schema (see the README)"),
        (r"relation \"whatsmeow_version\" does not exist",
         "the store's schema is missing, or its user can see whatsmeow tables of another "
         "schema: give the store its own schema and a user that can see only that one"),
    )
)


def explain_store_error(raw: str) -> str:
    """A store failure in an operator's words, with the original text after it."""
    text = raw.strip().removeprefix("error: ")
    for pattern, template in _EXPLAINED:
        match = pattern.search(text)
        if match:
            found = [group.rstrip(":,.") for group in match.groups()]
            return f"{template.format(*found)} ({text[:300]})"
    return f"WhatsApp session store error: {text[:300]}"


def explain_connect_error(raw: str) -> str:
    """Why a number's connection ended: WhatsApp unreachable, or its store."""
    text = raw.strip()
    if "failed to dial whatsapp" in text or "web.whatsapp.com" in text:
        return ("cannot reach WhatsApp's servers (web.whatsapp.com): check this server's "
                f"internet access and DNS ({text[:300]})")
    return explain_store_error(text)


def retryable(raw: str) -> bool:
    """``failed to upgrade database`` from a race or a blip; not a schema newer than ours."""
    return "failed to upgrade database" in raw and "unsupported database schema" not in raw


def prepare_store(
    url: str, list_devices: ListDevices, *, attempts: int = UPGRADE_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Create/upgrade whatsmeow's tables under the advisory lock; return the stored devices.

    Blocking (the neonize client process calls it before it connects).
    """
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (STORE_LOCK_KEY,))
            for attempt in range(1, attempts + 1):
                try:
                    return list_devices(url)
                except SessionStoreError as exc:
                    if attempt == attempts or not retryable(exc.raw):
                        raise
                    log.warning("whatsapp.store_upgrade_retry", attempt=attempt, error=exc.raw)
                    sleep(0.2 * attempt)
    except psycopg.Error as exc:
        raise SessionStoreError(explain_store_error(str(exc)), raw=str(exc)) from exc
    raise AssertionError("unreachable")


class StoreProvisioner:
    """Creates the store's schema and role in the app database and keeps them fitted.

    ``ensure(numbers)`` is idempotent and cheap when nothing changed; failures are logged
    (the numbers then report the store error on the page) and tried again next time.
    """

    def __init__(
        self, admin_url: str, *, schema: str, role: str, password: str, per_number: int,
    ) -> None:
        self._admin = admin_url
        self._schema = schema
        self.role = self._role = role
        self._password = password
        self._per_number = per_number
        self._applied: int | None = None

    def limit(self, numbers: int) -> int:
        """Connections the role may open: per number, plus one for the upgrade lock."""
        return self._per_number * max(1, numbers) + 1

    async def ensure(self, numbers: int) -> bool:
        limit = self.limit(numbers)
        if self._applied == limit:
            return True
        try:
            await asyncio.to_thread(self._apply, limit)
        except psycopg.Error as exc:
            log.error("whatsapp.store_setup_failed", role=self._role, schema=self._schema,
                      error=explain_store_error(str(exc)))
            return False
        self._applied = limit
        log.info("whatsapp.store_ready", role=self._role, schema=self._schema,
                 connection_limit=limit)
        return True

    def _apply(self, limit: int) -> None:
        role, schema = sql.Identifier(self._role), sql.Identifier(self._schema)
        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (STORE_LOCK_KEY,))
            with conn.transaction():
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (self._role,)).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
                conn.execute(sql.SQL(
                    "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
                    "NOBYPASSRLS CONNECTION LIMIT {} PASSWORD {}"
                ).format(role, sql.Literal(limit), sql.Literal(self._password)))
                database = conn.info.dbname
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(database), role))
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                    schema, role))
                conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, role))
                conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
                    role, sql.Identifier(database), schema))
                self._adopt_tables(conn)

    def _adopt_tables(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Tables an older Atiende created in the app's schema move into the store's own."""
        rows = conn.execute(
            "SELECT schemaname, tablename, tableowner FROM pg_tables "
            "WHERE tablename LIKE 'whatsmeow\\_%%'").fetchall()
        ours = [r for r in rows if r[0] == self._schema]
        elsewhere = [r for r in rows if r[0] != self._schema]
        if elsewhere and not any(r[1] == "whatsmeow_version" for r in ours):
            for old_schema, table, _ in elsewhere:
                conn.execute(sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
                    sql.Identifier(str(old_schema)), sql.Identifier(str(table)),
                    sql.Identifier(self._schema)))
            log.warning("whatsapp.store_tables_moved", tables=len(elsewhere),
                        schema=self._schema)
            ours = [(self._schema, r[1], r[2]) for r in elsewhere] + ours
        elif elsewhere:
            log.warning("whatsapp.store_tables_elsewhere", schema=self._schema,
                        tables=sorted({f"{r[0]}.{r[1]}" for r in elsewhere})[:5])
        for _, table, owner in ours:
            if owner != self._role:
                conn.execute(sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(
                    sql.Identifier(self._schema), sql.Identifier(str(table)),
                    sql.Identifier(self._role)))

    async def connections(self) -> dict[str, int]:
        """Open store connections per number (``application_name``), as the server sees them."""
        def count() -> dict[str, int]:
            with psycopg.connect(self._admin, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE usename = %s GROUP BY 1", (self._role,)).fetchall()
            return {str(name): int(n) for name, n in rows}

        return await asyncio.to_thread(count)
