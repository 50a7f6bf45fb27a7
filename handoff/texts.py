"""What the handoff says to customers: Spanish first, English beside it."""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, dict[str, str]]] = {
    "queued": {
        "es": "Te paso con una persona de nuestro equipo{team}. Tiempo de espera estimado: "
        "{wait}. Tu conversación queda en la fila; no necesitas volver a escribir.",
        "en": "I'm passing you to a person on our team{team}. Estimated wait: {wait}. "
        "Your conversation is in the queue; no need to write again.",
    },
    "queued_nobody": {
        "es": "Te paso con una persona de nuestro equipo{team}. En este momento no hay "
        "asesores conectados; te atenderá el primero que se conecte. Tu conversación "
        "queda en la fila.",
        "en": "I'm passing you to a person on our team{team}. No agents are online right now; "
        "the first one who connects will help you. Your conversation is in the queue.",
    },
    "out_of_office": {
        "es": "Gracias por escribirnos. Nuestro horario de atención es {hours}. Ahora estamos "
        "fuera de horario; una persona te responderá {next_open}. Tu conversación ya "
        "está en la fila.",
        "en": "Thanks for writing to us. Our business hours are {hours}. We are closed now; "
        "a person will answer you {next_open}. Your conversation is already in the queue.",
    },
    "idle_timeout": {
        "es": "Como no hubo actividad en un rato, cerramos esta atención con el asesor. "
        "Si necesitas algo más, escríbeme y con gusto te ayudo.",
        "en": "Since there was no activity for a while, we closed this chat with the agent. "
        "If you need anything else, write to me and I'll gladly help.",
    },
    "csat_question": {
        "es": "¿Cómo calificarías la atención que recibiste? Responde con un número del 1 "
        "(mala) al 5 (excelente).",
        "en": "How would you rate the help you got? Reply with a number from 1 (poor) "
        "to 5 (excellent).",
    },
    "csat_thanks": {
        "es": "¡Gracias por tu calificación! Nos ayuda a mejorar. 🙌",
        "en": "Thanks for your rating! It helps us improve. 🙌",
    },
}

MINUTES: Final[dict[str, str]] = {"es": "unos {n} minutos", "en": "about {n} minutes"}
NEXT_OPEN: Final[dict[str, str]] = {"es": "a partir del {when}", "en": "from {when}"}
DAY_NAMES: Final[dict[str, list[str]]] = {
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}


def text(key: str, language: str = "es", **values: str) -> str:
    entry = TEXTS[key]
    return entry.get(language, entry["es"]).format(**values)
