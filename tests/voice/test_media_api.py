"""The signed media route of our API (the local backend's links)."""

from __future__ import annotations

import httpx

from bot.messages import MessageKind
from bot.wiring.runtime import Runtime
from tests.conftest import staff_outcome
from tests.voice.conftest import chunks_of, png


async def test_signed_route_serves_only_valid_links(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    image = png(320, 240)
    ref = await runtime.media.save(chunks_of(image), kind=MessageKind.IMAGE,
                                   mime_type="image/png")
    assert ref.key is not None
    url = await runtime.media.url(ref.key, expires_in=60)

    ok = await client.get(url)
    assert ok.status_code == 200
    assert ok.content == image
    assert ok.headers["content-type"] == "image/png"
    assert ok.headers["x-content-type-options"] == "nosniff"

    tampered = url.replace("sig=", "sig=0")[:-1]
    assert (await client.get(tampered)).status_code == 403
    other = url.replace(ref.key, ref.key.replace(".png", "x.png"))
    assert (await client.get(other)).status_code == 403
    assert (await client.get(url.split("?")[0])).status_code == 422

    await runtime.media.delete(ref.key)
    assert (await client.get(url)).status_code == 404


async def test_staff_get_a_message_media_link_and_content(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    import uuid
    from datetime import UTC, datetime

    from bot.messages import InboundMessage

    image = png(640, 480)
    ref = await runtime.media.save(chunks_of(image), kind=MessageKind.IMAGE,
                                   mime_type="image/png", filename="choque.png")
    accepted = await runtime.ingestor.accept(InboundMessage(
        channel="simulator", account="demo", provider_message_id=f"img-{uuid.uuid4()}",
        sender_phone="+5215511112222", kind=MessageKind.IMAGE, received_at=datetime.now(UTC),
        media=ref,
    ))
    path = f"/api/v1/media/messages/{accepted.message_id}"
    assert (await client.get(path)).status_code == 401
    assert (await client.get(f"{path}/content")).status_code == 401

    # an agent sees a conversation once it is handed over (the photo escalates it)
    processed = await staff_outcome(client, runtime, accepted.message_id)
    assert processed.json()["status"] == "processed"
    headers = await auth_headers("agent")
    link = await client.get(path, headers=headers)
    assert link.status_code == 200, link.text
    body = link.json()
    assert body["mime_type"] == "image/png" and body["filename"] == "choque.png"
    assert body["size"] == len(image) and body["kind"] == "image"
    fetched = await client.get(body["url"])  # the signed link itself needs no login
    assert fetched.status_code == 200 and fetched.content == image

    content = await client.get(f"{path}/content", headers=headers)
    assert content.status_code == 200 and content.content == image
    missing = await client.get(f"/api/v1/media/messages/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404


async def test_agents_get_media_only_of_conversations_they_may_see(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    import uuid
    from datetime import UTC, datetime

    from bot.messages import InboundMessage

    team = await runtime.inbox.create_team("General", ["general"])
    member = await auth_headers("agent", email="ana@seguros.mx")
    outsider = await auth_headers("agent", email="beto@seguros.mx")
    supervisor = await auth_headers("supervisor")
    ana = next(a for a in await runtime.inbox.agents() if a.email == "ana@seguros.mx")
    await runtime.inbox.set_members(team.id, [ana.id])

    ref = await runtime.media.save(chunks_of(png(64, 48)), kind=MessageKind.IMAGE,
                                   mime_type="image/png", filename="choque.png")
    accepted = await runtime.ingestor.accept(InboundMessage(
        channel="simulator", account="demo", provider_message_id=f"img-{uuid.uuid4()}",
        sender_phone="+5215533334444", kind=MessageKind.IMAGE, received_at=datetime.now(UTC),
        media=ref,
    ))
    done = await staff_outcome(client, runtime, accepted.message_id)
    assert done.json()["owner"] == "queued"  # the photo went to the General team's queue

    path = f"/api/v1/media/messages/{accepted.message_id}"
    for headers, status in ((member, 200), (supervisor, 200), (outsider, 404)):
        assert (await client.get(path, headers=headers)).status_code == status
        assert (await client.get(f"{path}/content", headers=headers)).status_code == status
