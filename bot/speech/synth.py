"""Spanish speech synthesized with espeak-ng, encoded like a WhatsApp voice note (OGG/Opus).

Used by the tests and the benchmark: real audio, no recordings checked in.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bot.errors import TranscriberUnavailable


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise TranscriberUnavailable(f"{name} is not installed (make system-deps)", backend=name)
    return path


def synthesize_voice_note(
    text: str, target: Path, *, voice: str = "es-419", words_per_minute: int = 150
) -> Path:
    """Speak ``text`` and write it as mono 16 kHz OGG/Opus (WhatsApp's voice-note format)."""
    wav = target.with_suffix(".wav")
    subprocess.run(
        [_tool("espeak-ng"), "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text],
        check=True, capture_output=True, timeout=60,
    )
    subprocess.run(
        [_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(wav),
         "-ac", "1", "-ar", "16000", "-c:a", "libopus", "-b:a", "24k", "-application", "voip",
         str(target)],
        check=True, capture_output=True, timeout=60,
    )
    wav.unlink(missing_ok=True)
    return target


BENCH_SENTENCES = (
    "Hola, buenas tardes. Quisiera saber cuánto cuesta el seguro de auto para un carro "
    "del dos mil dieciocho y si puedo pagarlo a meses sin intereses.",
    "Oiga, ayer choqué saliendo del estacionamiento, el otro coche tiene el faro roto. "
    "¿Qué tengo que hacer para reportar el siniestro con la aseguradora?",
    "Buenos días, necesito la factura de mi póliza de gastos médicos. Mi número de cliente "
    "es cuatro cinco ocho dos. Se la pueden mandar a mi correo por favor.",
    "Quiero cancelar mi seguro de vida porque ya no lo voy a usar, me dicen qué papeles "
    "necesito y si me regresan algo del pago anual que hice en enero.",
)
