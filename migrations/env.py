"""Alembic environment. The URL comes from the caller (bot.db.migrate) or ATIENDE_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

import bot.blocking.models  # noqa: F401  (blocked-contact tables, undelivered index)
import bot.campaigns.models  # noqa: F401  (campaign tables on the records MetaData)
import bot.channels.records  # noqa: F401  (whatsapp_numbers on the records metadata)
import bot.llm.records  # noqa: F401  (llm_calls, llm_chain_configs on the records metadata)
import bot.integrations.records  # noqa: F401  (webhooks, webhook_deliveries)
import bot.privacy.records  # noqa: F401  (erasure log, kept opt-outs, retention progress)
import bot.sequences.models  # noqa: F401  (follow-up sequence tables)
import bot.speech.records  # noqa: F401  (transcriptions on the records metadata)
import handoff.audit  # noqa: F401  (registers audit_log on HandoffBase)
from handoff.conversations import Base as RecordsBase
from handoff.tables import Base as HandoffBase
from knowledge.models import Base as KnowledgeBase

config = context.config
target_metadata = [RecordsBase.metadata, KnowledgeBase.metadata, HandoffBase.metadata]


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave procrastinate's own schema to procrastinate, and the per-model vector indexes
    (created at run time by ``knowledge.vectors.ensure_index``) to the knowledge store."""
    return not (name or "").startswith(("procrastinate", "ix_kb_chunks_vec_"))


def _url() -> str:
    url = config.attributes.get("url") or os.environ.get("ATIENDE_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL for migrations")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return str(url)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, include_name=include_name
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(
            connection=conn, target_metadata=target_metadata, include_name=include_name
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
