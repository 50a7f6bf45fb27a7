"""Operator actions: see what failed, and put it back in line."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from bot.db import driver_connection
from bot.infra.backing import backing_services
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Message


async def list_failed(settings: Settings) -> str:
    backing = backing_services(settings)
    runtime = await Runtime.create(
        settings, database_url=backing.database_url, redis_url=backing.redis_url
    )
    try:
        jobs = await runtime.jobs.failed()
        retrying = await runtime.inbound.retrying()
        async with runtime.sessions() as session:
            parked = (
                await session.execute(
                    select(Message.id, Message.conversation_id, Message.attempts, Message.error)
                    .where(Message.direction == "in", Message.status == "failed")
                    .order_by(Message.seq)
                )
            ).all()
    finally:
        await runtime.close()
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
    backing = backing_services(settings)
    runtime = await Runtime.create(
        settings, database_url=backing.database_url, redis_url=backing.redis_url
    )
    try:
        if job_id is not None:
            await runtime.jobs.replay(job_id)
            return f"job {job_id} queued again"
        if message_id is None:
            return "nothing to replay: give --job or --message"
        async with runtime.sessions() as session, session.begin():
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
            await runtime.inbound.enqueue(
                [conversation_id], connection=await driver_connection(session)
            )
        return f"message {message_id} queued again"
    finally:
        await runtime.close()
