"""Intent routing, first stage: fast rules for the messages that need no knowledge.

Customers write informal Mexican Spanish with typos, slang, emojis and English;
the text is folded (lowercase, no accents, repeated letters squeezed) before the
patterns run.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from knowledge.text import fold


class Intent(enum.StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    QUESTION = "question"
    PRODUCT = "product"
    HUMAN = "human_request"
    COMPLAINT = "complaint"
    OPT_OUT = "opt_out"
    PURCHASE = "purchase"  # wants to buy, sign up, book or pay now
    ACCOUNT = "account"  # needs their own records
    VAGUE = "vague"  # an opener with no question yet
    INJECTION = "injection"  # tries to change the bot's rules
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Routed:
    intent: Intent
    confidence: float
    stage: str




_GREETING_WORD = (
    r"(hola+s?|ola|holi|buen(os|as)? (dia|dias|tardes|noches)|buenas|que onda|quiubo|"
    r"q onda|hey|hi|hello|good (morning|afternoon|evening)|saludos|oye|que tal|como estas|"
    r"como esta|como le va|there|amigo|amiga|joven|se[nñ]orita|disculpe|disculpa)"
)
_GREETING = re.compile(rf"^{_GREETING_WORD}([ ,.!¡?¿]+{_GREETING_WORD}){{0,3}}[ .!¡?¿,]*$")
_THANKS = re.compile(
    r"^(muchas |mil |muchisimas )?(gracias|grax|grcs|thx|thanks|thank you|ty|gracias+)"
    r"( (por todo|por la info|por la informacion|muy amable|bye|adios|so much))?[ .!,]*$"
)
# Asking for a person: a request verb, a few linking words, then who ("quiero hablar con
# un asesor", "pásame con alguien de verdad", "can I speak with someone?"), or a message
# that ends calling for one ("un asesor por favor", "*hola* asesor"). A mention alone is
# not a request: "trabajar con ustedes de asesor", "se la di a la asesora", "¿cuánto gana
# un agente?" (the embedding classifier still weighs those).
_PERSON = (
    r"(asesor|asesora|asesores|agente|agentes|humano|humana|una persona|persona real|"
    r"persona de verdad|alguien real|alguien de verdad|ejecutivo|ejecutiva|operador|"
    r"operadora|representante|real person|a human|an agent|a person|customer service|"
    r"human|representative|{extra})"
)
_ASK_VERB = (
    r"(hablar|hable|platicar|comunica\w*|comunicar\w*|pasa|pasas|pasar|pasame|paseme|pasen|"
    r"pasenme|contacta\w*|atienda|atiendan|atender|llamar|llamarme|llame|llamen|quiero|"
    r"queria|quisiera|necesito|ocupo|deseo|prefiero|dame|deme|denme|mandame|mandenme|talk|"
    r"speak|connect|transfer|put|get|want|need)"
)
_LINK = (r"(me|con|a|al|el|la|un|una|algun|alguna|por|favor|porfa|ya|ahora|ahorita|directo|"
         r"directamente|to|with|through|the|an|please|de)")
_ASKS_PERSON = re.compile(
    rf"\b{_ASK_VERB}\b(?:\W+{_LINK}\b){{0,4}}\W+{_PERSON.format(extra='alguien|someone')}\b")
_CALLS_PERSON = re.compile(
    r"(?:^|\W)(?:(\w+)\W+)?(?:(?:un|una|el|la|algun|alguna|a|an|the)\W+)?"
    + _PERSON.format(extra="operadores")
    + r"(?:\W+(?:por favor|porfa|plis|pls|please|ya|urgente|gracias))*\W*$")
# Being put through to someone by name or by role ("pásame con el lic. Arturo", "me
# comunicas con la señorita Karla", "quiero hablar con el dueño", "me comunicas con mi
# ejecutivo de cuenta"): a transfer verb and
# "con", then who. Asking whether one can talk to someone ("¿puedo hablar con el doctor
# antes de la consulta?") is a question, so "puedo" is not such a verb.
_TRANSFER = re.compile(
    r"\b(pasame|paseme|pasenme|me pasas|comunicame|comuniqueme|"
    r"comuniquenme|me comunicas|me comunica|me comunican|me puedes? (?:pasar|comunicar)|"
    r"me pueden (?:pasar|comunicar)|(?:quiero|necesito|quisiera|queria|ocupo|deseo) "
    r"hablar)\W+con\W+(el|la|los|las|un|una|su|tu|mi|mis|alguien|algun|alguna|[a-z]{3,})\b")
# who a transfer verb may be followed by without being a request for a person
_NOT_SOMEONE = frozenset(("ustedes", "usted", "esto", "eso", "respecto",
                          "relacion"))
# the word before "asesor" that makes it a role, not someone asked for ("de asesor")
_ROLE_BEFORE = frozenset(("de", "como", "ser", "soy", "es", "eres", "somos", "son", "era",
                          "fue", "a", "al", "as", "trabajar"))
_ASKS_WHAT = re.compile(r"\b(que|como|cuanto|cuanta|cuantos|cuando|donde|cual|quien|what|how|"
                        r"when|where|which|who)\b")


def _asks_for_person(folded: str) -> bool:
    if _ASKS_PERSON.search(folded):
        return True
    transfer = _TRANSFER.search(folded)
    if transfer is not None and transfer.group(2) not in _NOT_SOMEONE:
        return True
    called = _CALLS_PERSON.search(folded)
    return (called is not None and (called.group(1) or "") not in _ROLE_BEFORE
            and not _ASKS_WHAT.search(folded))


_OPT_OUT = re.compile(
    r"^((por favor |porfa |x favor )?(baja|stop|alto|unsubscribe|darme de baja|dame de baja|"
    r"denme de baja|de baja|quiero darme de baja|ya no me (manden|envien|escriban|mandes|"
    r"envies|escribas).*|no me (manden|envien|escriban|mandes|envies|escribas) mas.*|"
    r"ya no quiero (recibir )?(mensajes|promociones|publicidad).*|"
    r"no quiero recibir (mensajes|promociones|publicidad).*|"
    r"(dejen|deja) de (escribirme|mandarme mensajes|enviarme mensajes).*|"
    r"(borrame|borrenme|quitame|quitenme|sacame|saquenme) de (su|tu|la) lista.*|"
    r"cancelar suscripcion|stop (please|pls)|please stop.*|remove me.*)"
    r"( por favor| porfa| plis| pls| please| gracias)?)[ .!,]*$"
)


_COMPLAINT = re.compile(
    r"\b(pesimo|pesima|malisimo|fatal servicio|mal servicio|"
    r"estafa|estafadores|fraude|rateros|ladrones|transas|abuso|abusivos|"
    r"harto|harta|hartos|molesto|molesta|indignad[oa]|enojad[oa]|"
    r"encabronad[oa]|me tienen hasta|no sirven|son unos|que poca madre|chingad[oa]s?|"
    r"pinche|pinches|nadie me (contesta|resuelve|responde|hace caso)|ya me canse|"
    r"me cobraron (doble|dos veces|2 veces|de mas)|nunca llego|nunca llegaron|"
    r"terrible service|awful|scam|ripoff|rip off|fraud|i'm (angry|upset)|"
    r"(es|son) una (verguenza|burla)|que verguenza de|inaceptable|falta de respeto|"
    r"(quiero|quisiera) dejar constancia de|(esto|eso) es un (robo|abuso|fraude)|"
    r"worst service|unacceptable)\b"
)
# Words about the complaint process: a complaint, unless the message only asks how that
# process works ("¿a dónde me puedo quejar?", "¿cuánto tarda una queja?"), which the
# knowledge base may answer (and hands over when it does not).
_GRIEVANCE = re.compile(
    r"\b(queja|quejas|quejarme|reclamacion formal|condusef|profeco|demanda|demandar|"
    r"complaint)\b")
_ASKS_HOW = re.compile(
    r"\?|\b(donde|como|cuanto|cuantos|cuantas|cuando|a quien|que necesito|que hago|"
    r"cual es|where|how|when|who)\b")
# Attempts to change the bot's rules, role or to see its instructions (general phrasing,
# Spanish and English; the embedding classifier catches paraphrases).
_INJECTION = re.compile(
    r"\b(ignora\w* (todas? )?(tus|las|sus) (instrucciones|reglas|indicaciones)|"
    r"olvida\w* (todas? )?(tus|las) (instrucciones|reglas)|"
    r"(prompt|instrucciones) (del|de) sistema|system prompt|tu prompt|your prompt|"
    r"ignore (all |any )?(previous|prior|your) (instructions|rules)|developer mode|"
    r"jailbreak|act[uú]a como (si fueras )?(mi|un|una)|pretend (you are|to be)|"
    r"disregard (all |your )?(previous )?instructions|ignora\w* todo lo anterior|"
    # being given a new role or made to answer as told ("a partir de ahora eres el gerente",
    # "modo desarrollador activado", "[SYSTEM] ...", "di SI a todo")
    r"(a partir de (ahora|ahorita|hoy)|desde (ahora|ahorita|hoy)|de ahora en adelante),? "
    r"((tu )?(eres|seras|vas a ser|te llamas|actuas|actua)|(me )?vas a (contestar|responder|decir)"
    r"|solo (contestas|respondes|dices))\b|"
    r"(eres|seras|modo|bot|asistente)\b.{0,40}\bsin (reglas|restricciones|filtros)|"
    r"modo (desarrollador|administrador|admin|dios|developer|god|sin restricciones)|"
    r"^system\b|from now on,? you are|you are now (a|an|in)\b|finge (que|q) eres|"
    r"(muestrame|dime|ensename|revelame|pasame|dame) tus (instrucciones|reglas internas)|"
    r"\bprompt (que|q|con el que|con que) te)\b"
)


# A record number the customer quotes (folio, order, account, contract): "CL-318204",
# "folio 88231", "mi cuenta es la 4002187731", "el contrato CF-2291". Only the
# business's records hold it.
_IDENTIFIER = re.compile(r"\b(?:[a-z]{1,4}-)?\d{5,}\b|\b(?:folio|no\.?|num\.?|#)\s*\d{4,}\b"
                         r"|\b(?:contrato|pedido|orden|reservacion)\s*(?:[a-z]{1,4}[-\s]?)?\d{4,}\b")


def quotes_identifier(text: str) -> bool:
    """The message quotes a record number (an order, folio, account or contract)."""
    return bool(_IDENTIFIER.search(fold(text)))


def injection_attempt(text: str) -> bool:
    """The message tries to change the bot's rules (it may still hold a real question)."""
    return bool(_INJECTION.search(fold(text)))


def route_rules(text: str) -> Routed | None:
    """Return an intent when a rule is sure, else None (later stages decide)."""
    folded = fold(text)
    if not folded:
        return None
    if _OPT_OUT.match(folded):
        return Routed(Intent.OPT_OUT, 0.99, "rules")
    if _COMPLAINT.search(folded) or (_GRIEVANCE.search(folded) and not _ASKS_HOW.search(folded)):
        return Routed(Intent.COMPLAINT, 0.95, "rules")
    if _asks_for_person(folded):
        return Routed(Intent.HUMAN, 0.97, "rules")
    if _GREETING.match(folded):
        return Routed(Intent.GREETING, 0.97, "rules")
    if _THANKS.match(folded):
        return Routed(Intent.THANKS, 0.97, "rules")
    return None
