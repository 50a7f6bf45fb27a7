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
_HUMAN = re.compile(
    r"\b(asesor|asesora|agente|humano|una persona|persona real|ejecutivo|ejecutiva|operador|"
    r"operadora|alguien real|hablar con alguien|hablar con una persona|representante|"
    r"real person|a human|an agent|talk to (someone|a person|an agent)|customer service|"
    r"human|representative)\b"
)
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
    r"\b(queja|quejarme|reclamacion formal|pesimo|pesima|malisimo|fatal servicio|mal servicio|"
    r"estafa|estafadores|fraude|rateros|ladrones|transas|abuso|abusivos|condusef|profeco|"
    r"demanda|demandar|harto|harta|hartos|molesto|molesta|indignad[oa]|enojad[oa]|"
    r"encabronad[oa]|me tienen hasta|no sirven|son unos|que poca madre|chingad[oa]s?|"
    r"pinche|pinches|nadie me (contesta|resuelve|responde|hace caso)|ya me canse|"
    r"me cobraron (doble|dos veces|de mas)|nunca llego|nunca llegaron|"
    r"complaint|terrible service|awful|scam|ripoff|rip off|fraud|i'm (angry|upset)|"
    r"worst service|unacceptable)\b"
)
# Requests only a person can fulfil: they touch the customer's own records or
# need an authority the bot does not have. Value: the reason recorded.
_NEEDS_PERSON: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("appeal", re.compile(
        r"\b(apelar|apelacion|reconsidera\w*|inconformidad|impugnar|"
        r"(rechazaron|negaron|declinaron|no (me )?(quieren|quisieron) pagar) (mi|el|la)? ?"
        r"(siniestro|reclamo|reclamacion|reembolso|pago)|"
        r"(siniestro|reclamo|reembolso) (rechazado|negado|declinado)|appeal|denied claim|"
        r"claim (was )?(denied|rejected))\b")),
    ("issue_policy", re.compile(
        r"\b((emit\w*|expid\w*|hag\w*|sac\w*|activ\w*|dar de alta) (me )?(la |mi |una )?"
        r"poliza (hoy|ya|ahorita|ahora|de una vez|ahorita mismo)|"
        r"(quiero|necesito) (la|mi) poliza (hoy|ya|ahorita)|"
        r"(contratar|comprar|contrato|compro) (hoy|ya|ahorita|ahora mismo)|"
        r"issue (my|the|a) policy|buy (it|the policy) (now|today))\b")),
    ("own_records", re.compile(
        r"\b((estatus|estado|status|como va|seguimiento|folio) (de |del )?(mi|mis) "
        r"(siniestro|reclamo|reembolso|poliza|pago|tramite)|"
        r"(mi|mis) (poliza|pagos|recibos?|adeudo|saldo|factura) (numero|no\.?|#)|"
        r"(ya )?(quedo|se reflejo|llego|aplico) mi pago|cuando vence mi poliza|"
        r"(cuanto|que) (debo|me falta pagar)|(mi|mis) (datos|poliza) (registrad[oa]s?|actual)|"
        r"(my|mine) (claim|policy|payment) (status|number)|status of my)\b")),
)


def needs_person(text: str) -> str | None:
    """The reason a request needs a person (appeal, issue_policy, own_records), else None."""
    folded = fold(text)
    for reason, pattern in _NEEDS_PERSON:
        if pattern.search(folded):
            return reason
    return None


def route_rules(text: str) -> Routed | None:
    """Return an intent when a rule is sure, else None (later stages decide)."""
    folded = fold(text)
    if not folded:
        return None
    if _OPT_OUT.match(folded):
        return Routed(Intent.OPT_OUT, 0.99, "rules")
    if _COMPLAINT.search(folded):
        return Routed(Intent.COMPLAINT, 0.95, "rules")
    if _HUMAN.search(folded):
        return Routed(Intent.HUMAN, 0.97, "rules")
    if _GREETING.match(folded):
        return Routed(Intent.GREETING, 0.97, "rules")
    if _THANKS.match(folded):
        return Routed(Intent.THANKS, 0.97, "rules")
    return None
