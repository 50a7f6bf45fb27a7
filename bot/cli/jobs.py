"""``atiende jobs``: operator actions: see what failed, and put it back in line.

Each action opens only the database, Redis and the job queue (no speech model, no LLM
chain, no WhatsApp sessions): ``bot.wiring.core.core_for``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import typer
from sqlalchemy import select, update

from bot.cli.common import settings_for_cli
from bot.conversation.inbound_queue import InboundQueue
from bot.db import driver_connection
from bot.infra.jobs import JobQueue
from bot.settings import Settings
from bot.wiring.core import Core, core_for
from handoff.conversations import Message

app = typer.Typer(help="Background jobs: see and replay failures.", no_args_is_help=True)


@dataclass
class _Queues:
    core: Core
    jobs: JobQueue
    inbound: InboundQueue


@asynccontextmanager
async def _queues(settings: Settings) -> AsyncIterator[_Queues]:
    async with core_for(settings) as core:
        jobs = core.job_queue()
        await jobs.open()
        try:
            yield _Queues(core, jobs, InboundQueue(
                core.database_url, core.autocommit,
                retry_base_seconds=settings.job_retry_base_seconds,
            ))
        finally:
            await jobs.close()


async def list_failed(settings: Settings) -> str:
    async with _queues(settings) as queues:
        jobs = await queues.jobs.failed()
        retrying = await queues.inbound.retrying()
        async with queues.core.sessions() as session:
            parked = (
                await session.execute(
                    select(Message.id, Message.conversation_id, Message.attempts, Message.error)
                    .where(Message.direction == "in", Message.status == "failed")
                    .order_by(Message.seq)
                )
            ).all()
    lines = [f"failed jobs: {len(jobs)}"]
    lines += [f"  job {j.id} {j.task} attempts={j.attempts} args={j.args}" for j in jobs]
    lines.append(f"conversations retrying: {len(retrying)}")
    lines += [
        f"  conversation {cid} attempts={attempts} error={error}"
        for cid, attempts, error in retrying
    ]
    lines.append(f"parked messages: {len(parked)}")
    lines += [
        f"  message {p.id} conversation={p.conversation_id} attempts={p.attempts} error={p.error}"
        for p in parked
    ]
    return "\n".join(lines)


async def replay(settings: Settings, *, job_id: int | None, message_id: str | None) -> str:
    async with _queues(settings) as queues:
        if job_id is not None:
            await queues.jobs.replay(job_id)
            return f"job {job_id} queued again"
        if message_id is None:
            return "nothing to replay: give --job or --message"
        async with queues.core.sessions() as session, session.begin():
            conversation_id = (
                await session.execute(
                    update(Message)
                    .where(Message.id == uuid.UUID(message_id), Message.status == "failed")
                    .values(status="received", attempts=0, error=None)
                    .returning(Message.conversation_id)
                )
            ).scalar_one_or_none()
            if conversation_id is None:
                return f"message {message_id} is not parked"
            await queues.inbound.enqueue(
                [conversation_id], connection=await driver_connection(session)
            )
        return f"message {message_id} queued again"


@app.command("failed")
def jobs_failed() -> None:
    """List jobs that exhausted their retries, and parked messages."""
    settings = settings_for_cli()
    typer.echo(asyncio.run(list_failed(settings)))


@app.command("replay")
def jobs_replay(
    job_id: Annotated[int | None, typer.Option("--job")] = None,
    message_id: Annotated[str | None, typer.Option("--message")] = None,
) -> None:
    """Run a failed job again, or put a parked message back in line."""
    settings = settings_for_cli()
    typer.echo(asyncio.run(replay(settings, job_id=job_id, message_id=message_id)))
