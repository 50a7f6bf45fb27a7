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


# The benchmark's voice notes: (words per minute, text). Customer Spanish as it is spoken in
# Mexico (informal, slang, some English), 4-20 s each, at three speaking rates.
BENCH_NOTES: tuple[tuple[int, str], ...] = (
    (150, "Hola, buenas tardes. Quisiera saber cuánto cuesta el seguro de auto para un carro "
     "del dos mil dieciocho y si puedo pagarlo a meses sin intereses."),
    (150, "Oiga, ayer choqué saliendo del estacionamiento, el otro coche tiene el faro roto. "
     "¿Qué tengo que hacer para reportar el siniestro con la aseguradora?"),
    (150, "Buenos días, necesito la factura de mi póliza de gastos médicos. Mi número de cliente "
     "es cuatro cinco ocho dos. Se la pueden mandar a mi correo por favor."),
    (150, "Quiero cancelar mi seguro de vida porque ya no lo voy a usar, me dicen qué papeles "
     "necesito y si me regresan algo del pago anual que hice en enero."),
    (135, "Qué onda, porfa mándenme el link para pagar mi póliza."),
    (165, "Buenas, ¿a qué hora abren mañana? Quiero pasar en la tarde a dejar unos papeles."),
    (150, "Oye, neta ya me urge, llevo tres días esperando que me marque el ajustador y nadie "
     "me contesta. ¿Qué onda con mi reporte?"),
    (135, "Hola, me llegó un cobro doble en mi tarjeta este mes. ¿Me pueden ayudar a checar qué "
     "pasó y cuándo me regresan la lana?"),
    (165, "Buenas noches, quiero cotizar un seguro de gastos médicos para mi mamá. Tiene sesenta "
     "y dos años y es diabética. ¿Sí la aseguran? ¿Y cuánto saldría más o menos al mes?"),
    (150, "Disculpe, mi hijo va a empezar a manejar el carro de la familia y quiero agregarlo a "
     "la póliza. Tiene diecinueve años y apenas sacó su licencia. ¿Qué necesito mandarles y "
     "cuánto sube el pago? Y otra cosa, ¿el deducible sigue siendo el mismo si él choca?"),
    (135, "Muchas gracias por la ayuda, muy amables. Ahí les encargo mi trámite."),
    (165, "Mire, le explico: el sábado en la noche se metieron a robar a la casa de mi hermana y "
     "se llevaron la tele, la computadora y unas joyas. Ella tiene seguro de hogar con ustedes. "
     "¿Cómo le hacemos para el reclamo y qué papeles les tenemos que llevar?"),
    (150, "Hey, sorry, ¿me pueden aceptar el pago por transferencia? No tengo tarjeta de crédito "
     "y el cajero me queda bien lejos."),
)
BENCH_SENTENCES = tuple(text for _rate, text in BENCH_NOTES)
