"""Voice notes: the transcript of a waiting voice note, and the transcription log."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.pipeline.state import Pending
from bot.errors import AudioUnusable, TranscriberUnavailable
from bot.logs import get_logger
from bot.media import MediaStore
from bot.speech.records import TranscriptionRecord
from bot.speech.service import SpeechService
from handoff.conversations import MESSAGES

log = get_logger("atiende.pipeline")


class VoiceTranscriber:
    """Transcribes a voice note once, before the bot decides what to answer."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        media: MediaStore | None,
        speech: SpeechService | None,
    ) -> None:
        self._sessions = sessions
        self._media = media
        self._speech = speech

    async def transcribe(self, pending: Pending) -> Pending:
        """Transcribe a voice note and store the text in its own transaction, before deciding:
        a retried job finds the transcript and never transcribes twice."""
        ref = pending.media_ref
        if self._speech is None or self._media is None or ref is None:
            return replace(pending, voice_problem="corrupt" if ref is None else "failed")
        if ref.key is None:  # refused by the media checks, or the download failed
            log.warning(
                "voice.not_stored", message_id=str(pending.id),
                conversation_id=str(pending.conversation_id),
            )
            return replace(pending, voice_problem="refused")
        usage = {"message_id": pending.id, "conversation_id": pending.conversation_id}
        try:
            transcript = await self._speech.transcribe_media(self._media, ref)
        except AudioUnusable as exc:
            log.warning(
                "voice.unusable", code=exc.code, reason=exc.reason, media_key=ref.key,
                message_id=str(pending.id), conversation_id=str(pending.conversation_id),
            )
            await self._record(
                **usage, backend="none", outcome="unusable", error=f"{exc.code}: {exc.reason}"
            )
            return replace(pending, voice_problem=exc.code)
        except TranscriberUnavailable as exc:
            log.error(
                "voice.transcriber_unavailable", backend=exc.backend, error=str(exc),
                message_id=str(pending.id), conversation_id=str(pending.conversation_id),
            )
            await self._record(
                **usage, backend=exc.backend, outcome="failed", error=str(exc)[:500]
            )
            return replace(pending, voice_problem="failed")
        async with self._sessions() as session, session.begin():
            done = await session.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == pending.id, MESSAGES.c.transcript.is_(None))
                .values(transcript=transcript.text)
            )
            if done.rowcount:  # type: ignore[attr-defined]  # once per voice note
                await session.execute(insert(TranscriptionRecord).values(
                    **usage, backend=transcript.backend[:100], outcome="ok",
                    audio_seconds=transcript.duration, elapsed_seconds=transcript.elapsed,
                ))
        return replace(pending, transcript=transcript.text)

    async def _record(self, **values: object) -> None:
        """The transcription log (analytics: volume and audio minutes per backend)."""
        async with self._sessions() as session, session.begin():
            await session.execute(insert(TranscriptionRecord).values(**values))
