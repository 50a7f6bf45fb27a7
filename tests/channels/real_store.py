"""The real neonize 0.5.2 offline, against the tests' real PostgreSQL: whatsmeow's store
in the test database (its own schema and role, as production sets it up), number client
processes (``neonize_host``), and what the server sees of their connections.

No internet here, so every dial to WhatsApp fails: exactly the failure path under test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bot.channels.session_process import ProcessSession
from bot.channels.session_wire import HostConfig
from bot.channels.wa_store import APP_NAME_PREFIX, number_store_url
from bot.channels.wiring import NeonizeStore, neonize_store
from bot.settings import DEV_SECRET_KEY, Settings
from bot.settings.channels import ChannelsConfig, NeonizeConfig

SECRET = DEV_SECRET_KEY  # what the test runtimes derive the store role's password from
SCHEMA = "whatsmeow"


def device_row(jid: str) -> dict[str, Any]:
    """A device row as whatsmeow stores one (keys of the right sizes, never valid ones)."""
    return {
        "jid": jid, "registration_id": 1, "noise_key": b"\x01" * 32,
        "identity_key": b"\x02" * 32, "signed_pre_key": b"\x03" * 32,
        "signed_pre_key_id": 1, "signed_pre_key_sig": b"\x04" * 64, "adv_key": b"\x05" * 32,
        "adv_details": b"\x00", "adv_account_sig": b"\x06" * 64,
        "adv_account_sig_key": b"\x07" * 32, "adv_device_sig": b"\x08" * 64,
    }


@dataclass
class RealStore:
    database_url: str
    store: NeonizeStore
    role: str

    def host(self, account: str, jid: str | None = None, *, verify: bool = True) -> HostConfig:
        return HostConfig(account=account, store=number_store_url(self.store.url, account),
                          session_id=f"atiende-{account.lstrip('+')}", jid=jid,
                          verify_device=verify)

    def session(self, account: str, jid: str | None = None, *, verify: bool = True,
                stop_timeout: float = 10.0) -> ProcessSession:
        return ProcessSession(self.host(account, jid, verify=verify), stop_timeout=stop_timeout)

    @contextlib.contextmanager
    def admin(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            yield conn

    def add_device(self, jid: str) -> None:
        row = device_row(jid)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in row)
        values = sql.SQL(", ").join(sql.Placeholder(c) for c in row)
        with self.admin() as conn:
            conn.execute(sql.SQL("INSERT INTO {}.whatsmeow_device ({}) VALUES ({})").format(
                sql.Identifier(SCHEMA), columns, values), row)

    def connections(self) -> dict[str, int]:
        """Open connections of number clients, by application_name."""
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE application_name LIKE %s AND pid <> pg_backend_pid() GROUP BY 1",
                (f"{APP_NAME_PREFIX}%",)).fetchall()
        return {str(name): int(n) for name, n in rows}

    def tables(self) -> list[tuple[str, str]]:
        with self.admin() as conn:
            rows = conn.execute("SELECT schemaname, tableowner FROM pg_tables "
                                "WHERE tablename LIKE 'whatsmeow%'").fetchall()
        return [(str(s), str(o)) for s, o in rows]

    async def all_closed(self, timeout: float = 10.0) -> bool:
        """True once the server has no number-client connection left (backends exit a
        moment after their client process does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.connections():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True


def make_real_store(database_url: str) -> RealStore:
    store = neonize_store(NeonizeConfig(enabled=True), database_url, SECRET)
    assert store.provisioner is not None
    return RealStore(database_url, store, store.provisioner.role)


@contextlib.asynccontextmanager
async def provisioned_store(database_url: str) -> AsyncIterator[RealStore]:
    """whatsmeow's store in the test database: its schema and role, provisioned as in
    production (the role is server-wide, so it is dropped afterwards)."""
    store = make_real_store(database_url)
    assert store.store.provisioner is not None
    try:
        assert await store.store.provisioner.ensure(5)
        yield store
    finally:
        drop_role(database_url, store.role)


def drop_role(database_url: str, role: str) -> None:
    """Roles are server-wide: remove the test database's store role after the test."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                     (role,))
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def real_settings(tmp_path: Path, **neonize: Any) -> Settings:
    """A runtime whose numbers run the real neonize in client processes, fast retries."""
    options: dict[str, Any] = {
        # a lease long enough that a busy machine's event-loop lag never loses it mid-test
        "enabled": True, "poll_seconds": 0.1, "lease_seconds": 10, "restart_cap": 1,
        "backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.3,
        "qr_timeout_seconds": 5.0, "connect_timeout_seconds": 30.0,
    }
    options.update(neonize)
    return Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        channels=ChannelsConfig(neonize=NeonizeConfig(**options)),
    )
