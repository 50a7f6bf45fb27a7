"""What the agent sees: the LLM summary when configured (else extractive), customer history."""

from __future__ import annotations

import httpx

from bot.messages import Turn
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from tests.conftest import ask
from tests.handoff.conftest import StaffFactory, client_for, staff_factory


class RecordingSummarizer:
    """A ``bot.answering.generation.Summarizer`` that writes a fixed-format summary of what it got,
    and gives up (None) when told to, as a provider that is down would."""

    def __init__(self, *, works: bool) -> None:
        self.works = works
        self.seen: list[tuple[Turn, ...]] = []

    async def summarize(
        self, turns: tuple[Turn, ...], *, language: str, deadline: float
    ) -> str | None:
        self.seen.append(turns)
        if not self.works:
            return None
        return f"[{language}] {len(turns)} turnos; último: {turns[-1].text}"


async def test_llm_summary_when_configured_else_extractive(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    for works in (True, False):
        summarizer = RecordingSummarizer(works=works)
        rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                                  summarizer=summarizer)
        rt.start_worker()
        try:
            async for client in client_for(rt):
                sup = await staff_factory(rt, client)("supervisor")
                phone = "+525500001111" if works else "+525500002222"
                out = await ask(client, "quiero un asesor para mi poliza de auto", phone=phone)
                detail = (await client.get(f"/api/v1/conversations/{out['conversation_id']}",
                                           headers=sup.headers)).json()
        finally:
            await rt.close()
        assert summarizer.seen and summarizer.seen[-1][0].role == "customer"
        if works:
            assert detail["summary_source"] == "llm"
            assert detail["summary"].startswith("[es] 2 turnos")
        else:
            assert detail["summary_source"] == "extractive"
            assert "poliza de auto" in detail["summary"] and "customer_request" in detail["summary"]


async def test_customer_history_keeps_earlier_handoffs_and_ratings(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    phone = "+525500003333"
    agent = await staff("agent")
    first = await ask(client, "quiero un asesor", phone=phone)
    url = f"/api/v1/conversations/{first['conversation_id']}"
    await client.post(f"{url}/claim", headers=agent.headers)
    await client.post(f"{url}/resolve", headers=agent.headers)
    assert (await ask(client, "4", phone=phone))["intent"] == "csat"
    again = await ask(client, "otra vez necesito un asesor", phone=phone)
    assert again["owner"] == "queued"
    detail = (await client.get(url, headers=agent.headers)).json()
    assert detail["ticket"]["outcome"] is None and detail["ticket"]["reason"] == "customer_request"
    assert [(t["outcome"], t["csat_score"]) for t in detail["history"]] == [("resolved", 4)]
    authors = [m["author"] for m in detail["messages"]]
    assert authors.count("customer") == 3 and "system" in authors


async def test_media_and_transcripts_reach_the_agent_as_signed_links(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    from bot.messages import InboundMessage, MessageKind

    async def chunks():  # type: ignore[no-untyped-def]
        yield b"%PDF-1.4\n% poliza\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

    ref = await runtime.media.save(chunks(), kind=MessageKind.DOCUMENT,
                                   mime_type="application/pdf", filename="poliza.pdf")
    ref = replace(ref, filename="<b>poliza</b>.pdf")
    first = await ask(client, "quiero un asesor", phone="+525500004444")
    await runtime.ingestor.accept(
        InboundMessage(
            channel="simulator", account="demo", provider_message_id="doc-1",
            sender_phone="+525500004444", kind=MessageKind.DOCUMENT,
            received_at=datetime.now(UTC), media=ref,
        )
    )
    sup = await staff("supervisor")
    url = f"/api/v1/conversations/{first['conversation_id']}"
    detail = (await client.get(url, headers=sup.headers)).json()
    docs = [m for m in detail["messages"] if m["kind"] == "document"]
    media = docs[0]["media"]
    assert media["filename"] == "<b>poliza</b>.pdf" and media["url"].startswith("/api/v1/media/")
    fetched = await client.get(media["url"])
    assert fetched.status_code == 200 and fetched.content.startswith(b"%PDF")
