"""Who may call each route: one entry per OpenAPI operation (a new route without an
entry fails ``test_route_table``), and the expected outcome per role and, for routes on
one conversation, per kind of conversation (the acting agent is ``agent_b`` of team B).

Rules:
- ``public``: anyone (no 401/403 for lack of a login);
- ``staff`` / ``sup`` / ``admin``: the role's floor (anonymous 401, lower roles 403);
- ``conv``: staff; an agent only on its own or an unassigned conversation;
- ``holder``: staff; an agent only on the conversation it holds;
- ``conv_sup``: supervisors and admins only, any conversation;
- ``sim_msg``: the simulator lookup: staff that may see the conversation, else 404;
- ``author``: staff, on a message they wrote themselves (none of the table's messages is
  the caller's, so every role is refused).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

ROLES = ("anonymous", "agent", "supervisor", "admin")
ERASABLE = "+525511110009"  # a customer the data-rights routes may export and erase
KINDS = ("own", "other", "unassigned", "bot_only")
DENIED = frozenset({401, 403, 404})

TABLE: dict[str, str] = {
    "GET /healthz": "public", "GET /metrics": "public",
    "POST /api/v1/auth/login": "public",
    "GET /api/v1/auth/me": "staff", "POST /api/v1/auth/password": "staff",
    "POST /api/v1/auth/logout": "staff", "POST /api/v1/auth/logout-everywhere": "staff",
    "POST /api/v1/simulator/messages": "public", "POST /api/v1/simulator/voice": "public",
    "GET /api/v1/simulator/messages/{message_id}": "sim_msg",
    "GET /api/v1/simulator/conversations/{phone}": "public",
    "GET /webhooks/whatsapp-cloud": "public", "POST /webhooks/whatsapp-cloud": "public",
    # the inbox
    "GET /api/v1/inbox/counts": "staff", "GET /api/v1/inbox/stream": "stream",
    "GET /api/v1/conversations": "staff", "POST /api/v1/conversations": "staff",
    "GET /api/v1/conversations/{conversation_id}": "conv",
    "POST /api/v1/conversations/{conversation_id}/read": "conv",
    "GET /api/v1/conversations/{conversation_id}/contact": "conv",
    "PATCH /api/v1/conversations/{conversation_id}/contact": "conv",
    "POST /api/v1/conversations/{conversation_id}/notes": "conv",
    "PUT /api/v1/conversations/{conversation_id}/labels": "conv",
    "GET /api/v1/conversations/{conversation_id}/sequences": "conv",
    "POST /api/v1/conversations/{conversation_id}/sequences": "conv",
    "GET /api/v1/conversations/{conversation_id}/blocked": "conv",
    "DELETE /api/v1/conversations/{conversation_id}/blocked": "conv",
    "POST /api/v1/conversations/{conversation_id}/attachments": "conv",
    "POST /api/v1/conversations/{conversation_id}/voice": "conv",
    "POST /api/v1/conversations/{conversation_id}/messages": "conv",
    "POST /api/v1/conversations/{conversation_id}/claim": "conv",
    "POST /api/v1/conversations/{conversation_id}/transfer": "holder",
    "POST /api/v1/conversations/{conversation_id}/assign": "conv_sup",
    "POST /api/v1/conversations/{conversation_id}/release": "holder",
    "POST /api/v1/conversations/{conversation_id}/resolve": "conv",
    "GET /api/v1/labels": "staff", "PUT /api/v1/labels/{label}": "sup",
    "GET /api/v1/dashboard": "sup",
    "GET /api/v1/handoff/schedule": "staff", "PUT /api/v1/handoff/schedule": "admin",
    "DELETE /api/v1/handoff/schedule": "admin",
    "POST /api/v1/agents/me/presence": "staff", "GET /api/v1/agents": "staff",
    "GET /api/v1/teams": "staff", "POST /api/v1/teams": "admin",
    "PATCH /api/v1/teams/{team_id}": "admin", "PUT /api/v1/teams/{team_id}/members": "admin",
    "GET /api/v1/canned-responses": "staff", "POST /api/v1/canned-responses": "sup",
    "DELETE /api/v1/canned-responses/{canned_id}": "sup",
    "GET /api/v1/users": "admin", "POST /api/v1/users": "admin",
    "PATCH /api/v1/users/{user_id}": "admin", "POST /api/v1/users/{user_id}/password": "admin",
    "GET /api/v1/handoff/settings": "admin",
    "GET /api/v1/admin/audit": "admin", "GET /api/v1/admin/analytics": "admin",
    # integrations, numbers, media
    "GET /api/v1/apikeys": "admin", "POST /api/v1/apikeys": "admin",
    "DELETE /api/v1/apikeys/{key_id}": "admin",
    "GET /api/v1/webhooks": "admin", "POST /api/v1/webhooks": "admin",
    "DELETE /api/v1/webhooks/{webhook_id}": "admin",
    "GET /api/v1/webhooks/{webhook_id}/deliveries": "admin",
    "POST /api/v1/webhooks/deliveries/{delivery_id}/replay": "admin",
    "GET /api/v1/whatsapp/numbers": "admin", "POST /api/v1/whatsapp/numbers": "admin",
    "POST /api/v1/whatsapp/numbers/{account}/link": "admin",
    "POST /api/v1/whatsapp/numbers/{account}/disable": "admin",
    "GET /api/v1/whatsapp/numbers/{account}/qr.svg": "admin",
    "GET /api/v1/media/signed/{key}": "public",
    "GET /api/v1/media/messages/{message_id}": "staff",
    "GET /api/v1/media/messages/{message_id}/content": "staff",
    # campaigns and sequences
    "GET /api/v1/contact-lists": "staff",  # an agent: the lists assigned to it
    "POST /api/v1/contact-lists": "sup",
    "GET /api/v1/contact-lists/{list_id}": "sup",
    "GET /api/v1/campaigns": "sup", "POST /api/v1/campaigns": "sup",
    "GET /api/v1/campaigns/{campaign_id}": "sup",
    "POST /api/v1/campaigns/{campaign_id}/{action}": "sup",
    "GET /api/v1/campaigns/{campaign_id}/recipients": "sup",
    "GET /api/v1/sequences": "staff", "POST /api/v1/sequences": "admin",
    "GET /api/v1/sequences/{sequence_id}": "sup", "DELETE /api/v1/sequences/{sequence_id}": "admin",
    "POST /api/v1/sequences/{sequence_id}/enrollments": "sup",
    "GET /api/v1/sequences/{sequence_id}/enrollments": "sup",
    "POST /api/v1/sequences/{sequence_id}/enrollments/from-list": "sup",
    "POST /api/v1/sequence-enrollments/{enrollment_id}/stop": "staff",
    "GET /api/v1/sequence-tasks": "staff", "POST /api/v1/sequence-tasks/{task_id}/done": "staff",
    "GET /api/v1/blocked-contacts": "sup",
    # customer data rights
    "GET /api/v1/contacts/erasures": "admin", "GET /api/v1/contacts/{phone}/export": "admin",
    "GET /api/v1/contacts/{phone}/export/archive": "admin",
    "DELETE /api/v1/contacts/{phone}": "admin",
    # the LLM chain and the knowledge base
    "GET /api/v1/llm/chain": "admin", "PUT /api/v1/llm/chain": "admin",
    "POST /api/v1/llm/chain/test": "admin", "GET /api/v1/llm/calls": "admin",
    # knowledge suggestions (supervisors read, admins decide; agents mark their own replies)
    "GET /api/v1/knowledge/suggestions": "sup", "GET /api/v1/knowledge/suggestions/figures": "sup",
    "GET /api/v1/knowledge/suggestions/{suggestion_id}": "sup",
    "POST /api/v1/knowledge/suggestions/{suggestion_id}/approve": "admin",
    "POST /api/v1/knowledge/suggestions/{suggestion_id}/dismiss": "admin",
    "POST /api/v1/conversations/{conversation_id}/messages/{message_id}/suggestion": "author",
    "GET /api/v1/kb/articles": "admin", "GET /api/v1/kb/articles/{article_id}": "admin",
    "PUT /api/v1/kb/articles/{article_id}": "admin",
    "DELETE /api/v1/kb/articles/{article_id}": "admin",
    "GET /api/v1/kb/articles/{article_id}/versions": "admin",
    "POST /api/v1/kb/articles/{article_id}/versions/{version}/restore": "admin",
    "GET /api/v1/kb/products": "admin", "GET /api/v1/kb/products/{sku}": "admin",
    "PUT /api/v1/kb/products/{sku}": "admin", "DELETE /api/v1/kb/products/{sku}": "admin",
    "GET /api/v1/kb/products/{sku}/versions": "admin",
    "POST /api/v1/kb/products/{sku}/versions/{version}/restore": "admin",
    "POST /api/v1/kb/import": "admin", "POST /api/v1/kb/preview": "admin",
    "POST /api/v1/kb/try": "admin",
    "GET /api/v1/kb/intent-examples": "admin", "POST /api/v1/kb/intent-examples": "admin",
    "DELETE /api/v1/kb/intent-examples/{example_id}": "admin",
}

# bodies that pass validation where the shape matters for the check to be reached
BODIES: dict[str, Any] = {
    "POST /api/v1/conversations/{conversation_id}/notes": {"text": "nota"},
    "POST /api/v1/conversations/{conversation_id}/messages": {"text": "hola"},
    "PUT /api/v1/conversations/{conversation_id}/labels": {"labels": ["vip"]},
    "PATCH /api/v1/conversations/{conversation_id}/contact": {"notes": "cliente"},
    "POST /api/v1/conversations/{conversation_id}/transfer": {"team_id": str(uuid.uuid4())},
    "POST /api/v1/conversations/{conversation_id}/assign": {"agent_id": str(uuid.uuid4())},
    "POST /api/v1/conversations/{conversation_id}/sequences": {"sequence_id": str(uuid.uuid4())},
    "POST /api/v1/conversations": {"phone": "+525599998888", "text": "hola"},
    "POST /api/v1/agents/me/presence": {"online": False},
    "POST /api/v1/simulator/messages": {"from": "+525599997777", "text": "hola"},
    "POST /api/v1/auth/login": {"email": "nadie@seguros.mx", "password": "x"},
    "POST /api/v1/kb/preview": {"body": "# hola"},
}
# read-only or harmless first; then what moves conversations; what ends sessions last
_MOVES = ("/claim", "/transfer", "/assign", "/release", "/resolve", "/messages")
_ENDS = ("/logout", "/logout-everywhere")  # called with a session of their own


@dataclass(frozen=True)
class Case:
    route: str              # "METHOD /path/{template}"
    role: str
    kind: str | None        # for routes on one conversation


def expected_denied(rule: str, role: str, kind: str | None) -> bool:
    """Whether the table says this role may NOT do this (on this kind of conversation)."""
    if rule == "public":
        return False
    if rule == "author":  # only the reply's author, and the table's replies are not theirs
        return True
    if rule == "sim_msg":  # the table test's session did not send these messages
        return role == "anonymous" or (role == "agent" and kind in ("other", "bot_only"))
    if role == "anonymous":
        return True
    floor = {"staff": 0, "conv": 0, "holder": 0, "stream": 0, "sup": 1, "conv_sup": 1,
             "admin": 2}[rule]
    if ("agent", "supervisor", "admin").index(role) < floor:
        return True
    if role == "agent" and rule == "conv":
        return kind in ("other", "bot_only")
    if role == "agent" and rule == "holder":
        return kind != "own"
    return False


def ordered(routes: list[str]) -> list[str]:
    def tier(route: str) -> int:
        if route == "DELETE /api/v1/contacts/{phone}":  # erases the number: after its export
            return 2
        if route.endswith(_ENDS):
            return 3
        if route.endswith("/password") or "/users/" in route:
            return 2
        return 1 if route.endswith(_MOVES) else 0

    # the holder-only ones first (the agent holds only its own), then claim, then resolve
    # (a reply claims too)
    moves = {"/transfer": 0, "/release": 1, "/assign": 2, "/messages": 3, "/claim": 4,
             "/resolve": 5}
    return sorted(routes, key=lambda r: (tier(r), next(
        (v for k, v in moves.items() if r.endswith(k)), 0), r))


def fill_path(path: str, ids: dict[str, str], rng: random.Random | None = None) -> str:
    """Path parameters: the case's conversation/message, else a harmless value."""
    values = {
        "label": "vip", "phone": "+525511110003", "account": "5215500000000", "key": "x",
        "sku": "no-such-sku", "article_id": "no-such-article", "version": "1",
        "action": "pause",
    }
    if path.startswith("/api/v1/contacts/"):  # customer data rights: a number of its own
        values["phone"] = ERASABLE
    out = path
    while "{" in out:
        start = out.index("{")
        name = out[start + 1:out.index("}", start)]
        value = ids.get(name) or values.get(name) or str(uuid.uuid4())
        if rng is not None and name not in ids and rng.random() < 0.2:
            value = rng.choice(["0", "-1", "%2e%2e", "a" * 300, "ñ", str(uuid.uuid4())])
        out = out.replace("{" + name + "}", value, 1)
    return out
