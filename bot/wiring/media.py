"""Wiring of media: the store (folder or S3), signed links, speech-to-text, agent voice notes."""

from __future__ import annotations

from dataclasses import dataclass

from bot.media import MediaStore, UrlSigner, build_media_store
from bot.messages import MessageKind
from bot.settings import Settings
from bot.speech.agent_notes import AgentVoiceNotes
from bot.speech.service import SpeechService, build_speech
from handoff.service import HandoffService


@dataclass
class Media:
    url_signer: UrlSigner
    media: MediaStore
    speech: SpeechService


async def build_media(settings: Settings, *, speech: SpeechService | None = None) -> Media:
    """The media store (its bucket created when asked) and the transcriber; the Whisper
    model itself loads on first use or when a worker warms it."""
    url_signer = UrlSigner(settings.secret_key.get_secret_value())
    media = await media_store(settings, url_signer)
    return Media(url_signer, media, speech or build_speech(settings.speech))


async def media_store(settings: Settings, url_signer: UrlSigner | None = None) -> MediaStore:
    """The media store alone (a command that reads or deletes media, no transcriber)."""
    url_signer = url_signer or UrlSigner(settings.secret_key.get_secret_value())
    media = build_media_store(settings.media, data_dir=settings.data_dir, signer=url_signer)
    if settings.media.backend == "s3" and settings.media.s3_create_bucket:
        from bot.media.s3 import S3MediaStore

        assert isinstance(media, S3MediaStore)
        await media.ensure_bucket()
    return media


def agent_voice_notes(settings: Settings, media: MediaStore, handoff: HandoffService
                      ) -> AgentVoiceNotes:
    """Voice notes agents record in the inbox, checked and converted for WhatsApp."""
    limits = settings.media.limits_for(MessageKind.VOICE)
    return AgentVoiceNotes(
        media=media, handoff=handoff,
        max_bytes=limits.max_bytes if limits else 16 * 1024 * 1024,
        max_seconds=settings.speech.max_duration_seconds,
    )
