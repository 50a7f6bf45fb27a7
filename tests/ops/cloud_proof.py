"""Helpers of the proofs with real decisions: customers asking the demo's questions
through the Cloud API channel (signed webhooks in, a fake Graph server out), the
knowledge responder deciding, and what the provider saw.

What must hold whatever the bot decides: every delivery stored once and processed;
each message decided once (its replies numbered 0..k-1, none twice); a message of a
conversation the bot still owned got an answer; every reply sent; replies of one
conversation in the order of their messages. Sends to the provider are at least once:
the duplicates it saw are counted (sends minus replies sent) and printed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import yaml

from tests.channels.fake_graph import FakeGraph
from tests.ops.proof import FULL

APP_SECRET = "proof-app-secret"
PHONE_NUMBER_ID = "106540352242922"
ROOT = Path(__file__).resolve().parents[2]


def sizes(compact: int, full: int) -> int:
    """make test runs the compact size, make reliability the full one."""
    return full if FULL else compact


def questions() -> list[str]:
    """The demo's labelled questions the knowledge base answers (no handoff expected),
    with greetings and thanks between them, as customers write."""
    labelled = yaml.safe_load((ROOT / "knowledge/demo/questions.yaml").read_text())
    asked = [q["q"] for q in labelled if not q.get("escalate") and q.get("sources")]
    small_talk = ["hola", "gracias!!"] * len(asked)
    return [text for pair in zip(asked, small_talk[: len(asked)], strict=True) for text in pair]


@dataclass(frozen=True)
class Delivery:
    wa_id: str  # the customer's WhatsApp id (Mexican mobile, as Meta sends it)
    text: str
    wamid: str


def script(conversations: int, per_conversation: int, prefix: str) -> list[list[Delivery]]:
    texts = questions()
    return [[Delivery(f"52155{30000000 + c:08d}", texts[(c * 7 + k) % len(texts)],
                      f"wamid.{prefix}.{c}.{k}") for k in range(per_conversation)]
            for c in range(conversations)]


def cloud_env(graph: FakeGraph) -> dict[str, str]:
    return {"WHATSAPP_CLOUD_VERIFY_TOKEN": "verify-me", "WHATSAPP_CLOUD_APP_SECRET": APP_SECRET,
            "WHATSAPP_CLOUD_ACCESS_TOKEN": "EAAG-proof", "WHATSAPP_CLOUD_PHONE_NUMBER_ID":
            PHONE_NUMBER_ID, "WHATSAPP_CLOUD_GRAPH_URL": graph.url}


def envelope(d: Delivery) -> bytes:
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Cliente"}, "wa_id": d.wa_id}],
            "messages": [{"from": d.wa_id, "id": d.wamid, "timestamp": "1749416383",
                          "type": "text", "text": {"body": d.text}}],
        }}]}]}).encode()


async def deliver(client: httpx.AsyncClient, d: Delivery) -> None:
    """One signed webhook, as Meta posts it (retried by the caller on failure)."""
    body = envelope(d)
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = await client.post("/webhooks/whatsapp-cloud", content=body, headers={
        "content-type": "application/json", "X-Hub-Signature-256": signature})
    assert response.status_code == 200, response.text


@dataclass
class Decided:
    stored: int
    processed: int
    replies: int
    sent: int
    unanswered_while_bot: list[str]
    gaps: list[str]
    order_violations: list[str]
    provider_sends: int

    @property
    def provider_duplicates(self) -> int:
        return self.provider_sends - self.sent

    def assert_decided_once(self, expected: int) -> None:
        assert self.stored == expected, f"stored {self.stored} of {expected}"
        assert self.processed == expected, f"processed {self.processed} of {expected}"
        assert not self.gaps, self.gaps[:5]
        assert not self.unanswered_while_bot, self.unanswered_while_bot[:5]
        assert self.sent == self.replies, f"{self.replies - self.sent} replies not sent"
        assert not self.order_violations, self.order_violations[:5]
        assert self.provider_sends >= self.sent, "a reply marked sent never reached Graph"


def decided(database_url: str, graph: FakeGraph, prefix: str) -> Decided:
    with psycopg.connect(database_url) as conn:
        inbound = conn.execute(
            "SELECT id, provider_message_id, status, conversation_id, processed_at, seq "
            "FROM messages WHERE direction = 'in' AND provider_message_id LIKE %s",
            (f"wamid.{prefix}.%",)).fetchall()
        replies = conn.execute(
            "SELECT in_reply_to, reply_seq, status, conversation_id, seq FROM messages "
            "WHERE direction = 'out' AND in_reply_to IS NOT NULL ORDER BY seq").fetchall()
        # a message decided while its conversation was no longer the bot's may rightly
        # stay unanswered: those are the ones processed after a handoff began
        handed = dict(conn.execute(
            "SELECT conversation_id, min(opened_at) FROM handoff_tickets GROUP BY 1").fetchall())
    ids = {row[0]: row for row in inbound}
    by_message: dict[object, list[int]] = defaultdict(list)
    order: dict[object, list[object]] = defaultdict(list)
    sent = 0
    for in_reply_to, reply_seq, status, conversation_id, _seq in replies:
        if in_reply_to not in ids:
            continue
        by_message[in_reply_to].append(reply_seq)
        sent += status in ("sent", "delivered", "read")
        order[conversation_id].append(ids[in_reply_to][4])
    gaps = [str(m) for m, seqs in by_message.items() if sorted(seqs) != list(range(len(seqs)))]
    unanswered = [
        row[1] for row in inbound
        if not by_message.get(row[0]) and row[2] == "processed"
        and (row[3] not in handed or row[4] < handed[row[3]])
    ]
    violations = [str(c) for c, times in order.items() if times != sorted(times)]
    distinct = {row[1] for row in inbound}
    return Decided(
        stored=len(distinct) if len(inbound) == len(distinct) else -len(inbound),  # twice: <0
        processed=sum(row[2] == "processed" for row in inbound),
        replies=sum(len(v) for v in by_message.values()), sent=sent,
        unanswered_while_bot=unanswered, gaps=gaps, order_violations=violations,
        provider_sends=len(graph.sends()),
    )
