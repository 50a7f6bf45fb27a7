"""Speech: voice notes to text (local Whisper, or a provider with local fallback), audio out.

Light on purpose: the decoders and Whisper runtimes load from their own modules
(``bot.speech.service`` builds them) only when a process uses them.
"""

from __future__ import annotations

from bot.settings.speech import SpeechSettings
from bot.speech.base import AudioClip, Transcriber, Transcript
from bot.speech.outbound import OGG_OPUS, to_ogg_opus

__all__ = [
    "OGG_OPUS",
    "AudioClip",
    "SpeechSettings",
    "Transcriber",
    "Transcript",
    "to_ogg_opus",
]
