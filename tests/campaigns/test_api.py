"""Campaigns over HTTP: roles, CSV upload report, validation before launch, progress, pages."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import update

from bot.campaigns.models import CampaignRecipient
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.campaigns.helpers import other_day_window
from tests.campaigns.test_lifecycle import fake_scheduler, release

CSV = (
    b"telefono,nombre,monto,poliza\n"
    b"5512345001,<b>Ana</b>,$1200,AUTO-1\n"
    b"+52 1 55 1234 5002,Beto,$900,VIDA-2\n"
    b"5512345001,Ana repetida,$1,X\n"
    b"no-es-numero,Malo,$3,Y\n"
)


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes = CSV
                 ) -> httpx.Response:
    return await client.post(
        "/api/v1/contact-lists", headers=headers, data={"name": "Renovaciones diciembre"},
        files={"file": ("cartera.csv", data, "text/csv")},
    )


async def test_roles_upload_report_validation_lifecycle_and_progress(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await auth_headers("admin")
    agent = await auth_headers("agent")
    assert (await upload(client, {})).status_code == 401
    assert (await upload(client, agent)).status_code == 403
    assert (await client.get("/api/v1/campaigns", headers=agent)).status_code == 403

    bad = await upload(client, admin, b"nombre,correo\nAna,a@b.mx\n")
    assert bad.status_code == 422 and "no phone column" in bad.json()["detail"][0]["msg"]
    r = await upload(client, admin)
    assert r.status_code == 201, r.text
    cartera = r.json()
    assert (cartera["total_rows"], cartera["accepted"]) == (4, 2)
    assert cartera["fields"] == ["monto", "poliza"]
    assert [(x["row"], x["reason"]) for x in cartera["rejected"]] == [
        (4, "duplicate"), (5, "invalid_phone"),
    ]

    window, _ = other_day_window()
    body = {
        "name": "Renovación", "list_id": cartera["id"],
        "variants": ["Hola {nombre}, tu póliza {poliza} vence; saldo {saldo}."],
        "window": {**window.to_json(), "days": list(window.days)},
        "pacing": {"per_hour": 30, "per_day": 150},
    }
    unknown = await client.post("/api/v1/campaigns", headers=admin, json=body)
    assert unknown.status_code == 422 and "saldo" in unknown.json()["detail"][0]["msg"]
    body["variants"] = ["Hola {nombre}, tu póliza {poliza} vence.", "{nombre}: renueva {poliza}."]
    assert (await client.post("/api/v1/campaigns", headers=admin,
                              json={**body, "window": {"timezone": "Luna/Crater"}})
            ).status_code == 422
    cloud = await client.post("/api/v1/campaigns", headers=admin,
                              json={**body, "channel": "whatsapp_cloud", "account": "123"})
    assert cloud.status_code == 422 and "template" in cloud.json()["detail"][0]["msg"]
    created = await client.post("/api/v1/campaigns", headers=admin, json=body)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert created.json()["status"] == "draft"

    assert (await client.post(f"/api/v1/campaigns/{cid}/resume", headers=admin)).status_code == 409
    launched = await client.post(f"/api/v1/campaigns/{cid}/launch", headers=admin)
    assert launched.status_code == 200 and launched.json()["status"] == "running"
    assert launched.json()["progress"]["waiting"] == 2
    assert (await client.post(f"/api/v1/campaigns/{cid}/launch", headers=admin)).status_code == 409
    assert (await client.post(f"/api/v1/campaigns/{cid}/explode", headers=admin)).status_code == 422

    assert launched.json()["launched_by"] == launched.json()["created_by"] is not None
    # release both on a fake clock inside the window, send, then receipts move them on
    # (status updates as the channels' receipt recorder writes them)
    sched, clock = fake_scheduler(runtime)
    for _ in range(2):
        conv = await release(sched, clock, uuid.UUID(cid))
        assert conv is not None
        await runtime.outbox.send_pending(conv)
    async with runtime.sessions() as s, s.begin():
        ids = (await s.execute(
            update(Message).where(Message.author == "campaign").values(status="delivered")
            .returning(Message.id)
        )).scalars().all()
        await s.execute(update(Message).where(Message.id == ids[0]).values(status="read"))
    progress = (await client.get(f"/api/v1/campaigns/{cid}", headers=admin)).json()["progress"]
    assert {k: progress[k] for k in ("sent", "delivered", "read", "failed", "waiting")} == {
        "sent": 2, "delivered": 2, "read": 1, "failed": 0, "waiting": 0,
    }
    supervisor = await auth_headers("supervisor")
    people = (await client.get(f"/api/v1/campaigns/{cid}/recipients", headers=supervisor)).json()
    assert [(p["name"], p["variant"], p["status"]) for p in people] == [
        ("<b>Ana</b>", 0, "queued"), ("Beto", 1, "queued"),
    ]
    async with runtime.sessions() as s:
        assert await s.get(CampaignRecipient, uuid.UUID(people[1]["id"])) is not None

    page = await client.get(f"/admin/campaigns/{cid}", headers=admin)
    assert page.status_code == 200
    assert "&lt;b&gt;Ana&lt;/b&gt;" in page.text and "<b>Ana</b>" not in page.text
    assert "Entregados" in page.text and "Delivered" not in page.text  # one language
    english = await client.get(f"/admin/campaigns/{cid}",
                               headers={**admin, "Cookie": "atiende_lang=en"})
    assert "Delivered" in english.text and "Entregados" not in english.text
    listing = await client.get("/admin/campaigns", headers=admin)
    assert listing.status_code == 200 and "Renovación" in listing.text
    assert (await client.get("/admin/campaigns")).status_code in (303, 307)


async def test_lists_assigned_to_an_agent(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await auth_headers("admin")
    agent = await auth_headers("agent", email="lupita@example.mx")
    me = await client.get("/api/v1/auth/me", headers=agent)
    assert me.status_code == 200
    agent_id = me.json()["id"]
    nobody = await client.post(
        "/api/v1/contact-lists", headers=admin,
        data={"name": "x", "assigned_agent_id": str(uuid.uuid4())},
        files={"file": ("c.csv", CSV, "text/csv")},
    )
    assert nobody.status_code == 422 and "no active staff user" in nobody.json()["detail"][0]["msg"]
    mine = await client.post(
        "/api/v1/contact-lists", headers=admin,
        data={"name": "Cartera de Lupita", "assigned_agent_id": agent_id},
        files={"file": ("c.csv", CSV, "text/csv")},
    )
    assert mine.status_code == 201 and mine.json()["assigned_agent_id"] == agent_id
    await upload(client, admin)  # not assigned to anyone
    seen_by_agent = (await client.get("/api/v1/contact-lists", headers=agent)).json()
    assert [x["name"] for x in seen_by_agent] == ["Cartera de Lupita"]
    assert len((await client.get("/api/v1/contact-lists", headers=admin)).json()) == 2


async def test_lists_assigned_to_a_team_reach_its_agents(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await auth_headers("admin")
    agent = await auth_headers("agent")
    outsider = await auth_headers("agent")
    agent_id = (await client.get("/api/v1/auth/me", headers=agent)).json()["id"]
    team = await client.post("/api/v1/teams", headers=admin, json={"name": "Cobranza"})
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    members = await client.put(f"/api/v1/teams/{team_id}/members", headers=admin,
                               json={"user_ids": [agent_id]})
    assert members.status_code == 204, members.text
    nowhere = await client.post(
        "/api/v1/contact-lists", headers=admin,
        data={"name": "x", "assigned_team_id": str(uuid.uuid4())},
        files={"file": ("c.csv", CSV, "text/csv")},
    )
    assert nowhere.status_code == 422 and "no team" in nowhere.json()["detail"][0]["msg"]
    created = await client.post(
        "/api/v1/contact-lists", headers=admin,
        data={"name": "Cartera de cobranza", "assigned_team_id": team_id},
        files={"file": ("c.csv", CSV, "text/csv")},
    )
    assert created.status_code == 201
    assert [x["name"] for x in (await client.get("/api/v1/contact-lists", headers=agent)).json()
            ] == ["Cartera de cobranza"]
    assert (await client.get("/api/v1/contact-lists", headers=outsider)).json() == []
