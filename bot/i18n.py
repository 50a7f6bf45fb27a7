"""The bot's own texts: Spanish first, English translation beside it."""

from __future__ import annotations

import re
from typing import Final

TEXTS: Final[dict[str, dict[str, str]]] = {
    "greeting": {
        "es": "¡Hola{name}! 👋 Soy {bot}, el asistente virtual de {business}. "
        "¿En qué te puedo ayudar?",
        "en": "Hi{name}! 👋 I'm {bot}, {business}'s virtual assistant. How can I help you?",
    },
    "thanks": {
        "es": "¡Con gusto! Si necesitas algo más, aquí estoy. 😊",
        "en": "You're welcome! If you need anything else, I'm here. 😊",
    },
    "handoff": {
        "es": "Claro, te paso con una persona de nuestro equipo. En un momento te atienden; "
        "tu conversación queda en la fila.",
        "en": "Sure, I'm passing you to a person on our team. Someone will be with you shortly; "
        "your conversation is in the queue.",
    },
    "holding": {
        "es": "Recibí tu mensaje. Todavía no tengo una respuesta para eso; si quieres, "
        "escribe *asesor* y te paso con una persona.",
        "en": "I got your message. I don't have an answer for that yet; if you like, "
        "type *agent* and I'll pass you to a person.",
    },
    "opt_out": {
        "es": "Listo, no te enviaremos más mensajes promocionales. Si nos escribes, "
        "te seguimos atendiendo.",
        "en": "Done, we won't send you promotional messages anymore. If you write to us, "
        "we'll still help you.",
    },
    "no_answer": {
        "es": "No encontré información confiable sobre eso en lo que tengo de {business}, "
        "y prefiero no inventarte nada. Te paso con una persona de nuestro equipo para que "
        "te ayude. 🙋",
        "en": "I couldn't find reliable information about that in what I have from {business}, "
        "and I'd rather not make anything up. I'm passing you to a person on our team. 🙋",
    },
    "complaint": {
        "es": "Lamento mucho la molestia. 😔 Le paso tu mensaje a una persona de nuestro equipo "
        "para que lo atienda directamente; en un momento te escriben.",
        "en": "I'm really sorry about this. 😔 I'm passing your message to a person on our team "
        "so they can take care of it directly; they'll write to you shortly.",
    },
    "needs_person": {
        "es": "Eso lo tiene que revisar una persona de nuestro equipo (necesita validar tus "
        "datos). Ya te pasé con un asesor; en un momento te escribe.",
        "en": "A person on our team needs to handle that (it requires checking your details). "
        "I've passed you to an agent; they'll write to you shortly.",
    },
    "sales": {
        "es": "¡Con gusto! 🙌 Para eso te paso con una persona de nuestro equipo que te ayuda "
        "a concretarlo; en un momento te escribe.",
        "en": "Happy to help! 🙌 I'm passing you to a person on our team who can get that done "
        "for you; they'll write to you shortly.",
    },
    "account": {
        "es": "Eso lo tiene que revisar una persona de nuestro equipo con tus datos. Ya te pasé "
        "con un asesor; en un momento te escribe.",
        "en": "A person on our team needs to check that with your details. I've passed you to "
        "an agent; they'll write to you shortly.",
    },
    "clarify": {
        "es": "¡Claro! Cuéntame, ¿cuál es tu duda? Escríbemela con el mayor detalle que puedas "
        "y te ayudo. 🙂",
        "en": "Sure! Tell me, what's your question? Give me as much detail as you can and "
        "I'll help. 🙂",
    },
    "decline": {
        "es": "Eso no lo puedo hacer. 🙂 Con gusto te ayudo con cualquier duda sobre "
        "{business}.",
        "en": "I can't do that. 🙂 I'm happy to help with any question about {business}.",
    },
    "still_queued": {
        "es": "Una persona de nuestro equipo sigue en camino para atenderte.",
        "en": "A person on our team is still on the way to help you.",
    },
    "small_talk": {
        "es": "👍 ¿Te ayudo con algo más? Pregúntame lo que necesites sobre {business}.",
        "en": "👍 Anything else I can help with? Ask me anything about {business}.",
    },
    "source_line": {
        "es": "📄 Fuente: {titles}",
        "en": "📄 Source (in Spanish): {titles}",
    },
    "english_intro": {
        "es": "",
        "en": "Here is what our information says (in Spanish):",
    },
    "price_one": {
        "es": "*{name}*: {price}{unit}.",
        "en": "*{name}*: {price}{unit}.",
    },
    "price_list_intro": {
        "es": "Estos son los precios de referencia de nuestro catálogo:",
        "en": "These are the reference prices in our catalog:",
    },
    "price_note": {
        "es": "Son los precios de nuestro catálogo.",
        "en": "These are our catalog prices.",
    },
    "stock_some": {
        "es": "Tenemos {stock} disponibles.",
        "en": "We have {stock} in stock.",
    },
    "stock_none": {
        "es": "Por ahora está agotado.",
        "en": "It is out of stock right now.",
    },
    "unsupported": {
        "es": "Recibí tu mensaje, pero no puedo leer ese tipo de contenido. "
        "¿Me lo puedes escribir?",
        "en": "I got your message, but I can't read that kind of content. "
        "Could you type it for me?",
    },
    "media_received_image": {
        "es": "¡Gracias! Recibí tu imagen 📷.", "en": "Thanks! I got your image 📷.",
    },
    "media_received_document": {
        "es": "¡Gracias! Recibí tu documento 📄.", "en": "Thanks! I got your document 📄.",
    },
    "media_refused_image": {
        "es": "Recibí tu imagen, pero no la pude abrir: el archivo es demasiado grande o no es "
        "una foto válida. ¿Me la mandas de nuevo como foto (JPG o PNG)?",
        "en": "I got your image, but I couldn't open it: the file is too large or not a valid "
        "picture. Could you send it again as a photo (JPG or PNG)?",
    },
    "media_refused_document": {
        "es": "Recibí tu documento, pero no lo pude abrir: el archivo es demasiado grande o de "
        "un tipo que no acepto. ¿Me lo mandas de nuevo en PDF?",
        "en": "I got your document, but I couldn't open it: the file is too large or of a type "
        "I don't accept. Could you send it again as a PDF?",
    },
    "media_review": {
        "es": "Una persona de nuestro equipo lo va a revisar y te contesta aquí mismo "
        "en cuanto pueda.",
        "en": "A person on our team will review it and reply right here as soon as they can.",
    },
    "voice_corrupt": {
        "es": "Recibí tu nota de voz, pero no la pude reproducir (parece dañada). "
        "¿Me la vuelves a enviar o me lo escribes?",
        "en": "I got your voice note, but I couldn't play it (it seems damaged). "
        "Could you send it again or type it?",
    },
    "voice_empty": {
        "es": "Recibí tu nota de voz, pero no se escucha nada. ¿Me la vuelves a grabar "
        "o me lo escribes?",
        "en": "I got your voice note, but I can't hear anything in it. Could you record it "
        "again or type it?",
    },
    "voice_too_long": {
        "es": "Tu nota de voz es demasiado larga para mí. ¿Me mandas una más corta "
        "o me escribes lo que necesitas?",
        "en": "Your voice note is too long for me. Could you send a shorter one "
        "or type what you need?",
    },
    "voice_refused": {
        "es": "Recibí tu nota de voz, pero no la pude recibir: es demasiado grande o no es "
        "audio. ¿Me mandas una más corta o me escribes lo que necesitas?",
        "en": "I got your voice note, but I couldn't receive it: it is too large or not "
        "audio. Could you send a shorter one or type what you need?",
    },
    "voice_failed": {
        "es": "Recibí tu nota de voz, pero ahorita no la puedo escuchar. Te paso con una persona "
        "de nuestro equipo para que te atienda.",
        "en": "I got your voice note, but I can't listen to it right now. I'm passing you to "
        "a person on our team.",
    },
}

_ENGLISH_HINTS = re.compile(
    r"\b(hi|hello|hey|thanks|thank|please|what|how|when|where|can|could|would|need|want|"
    r"the|is|are|my|your|price|do|does|i'm|you)\b",
    re.IGNORECASE,
)
_SPANISH_HINTS = re.compile(
    r"\b(hola|gracias|por|favor|que|qué|como|cómo|cuando|cuándo|donde|dónde|quiero|"
    r"necesito|el|la|los|las|mi|tu|precio|es|son|está|buenas|buenos|oye|cuánto|cuanto)\b",
    re.IGNORECASE,
)


def detect_language(text: str, default: str = "es") -> str:
    """``en`` when the text reads as English, else Spanish (or ``default``)."""
    english = len(_ENGLISH_HINTS.findall(text))
    spanish = len(_SPANISH_HINTS.findall(text))
    if english > spanish:
        return "en"
    if spanish > english:
        return "es"
    return default


def t(key: str, language: str = "es", **values: str) -> str:
    """The text ``key`` in ``language`` (Spanish when missing), formatted with ``values``."""
    entry = TEXTS[key]
    return entry.get(language, entry["es"]).format(**values)
