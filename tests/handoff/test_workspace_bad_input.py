"""Bad input to the inbox workspace API gets a 422 with a reason (in the caller's language)
and changes nothing: list pages and filters, the business schedule, label colours, the
contact panel, attachments (nothing left in the media store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from bot.wiring.runtime import Runtime
from tests.conftest import ask
from tests.handoff.conftest import StaffFactory
from tests.voice.test_inbox_media_page import real_png


def reasons(response: httpx.Response) -> list[str]:
    detail: Any = response.json()["detail"]
    return [d["msg"] for d in detail] if isinstance(detail, list) else [detail]


def stored_files(runtime: Runtime) -> list[Path]:
    root = runtime.settings.media.root or runtime.settings.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_list_and_schedule_refuse_bad_input(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    admin = await staff("admin")
    spanish = {**admin.headers, "Accept-Language": "es"}
    bad = await client.get("/api/v1/conversations", params={"cursor": "no-es-un-cursor"},
                           headers=admin.headers)
    assert bad.status_code == 422 and reasons(bad) == ["the page cursor is not valid"]
    bad = await client.get("/api/v1/conversations", params={"cursor": "no-es-un-cursor"},
                           headers=spanish)
    assert reasons(bad) == ["la página pedida no es válida"]
    bad = await client.get("/api/v1/conversations", params={"status": "pending"},
                           headers=admin.headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]

    good = {"hours": "mon-fri 09:00-18:00", "timezone": "America/Mexico_City",
            "holidays": ["2026-12-25"]}
    saved = await client.put("/api/v1/handoff/schedule", json=good, headers=admin.headers)
    assert saved.status_code == 200 and saved.json()["source"] != "environment"
    for body, reason in (
        ({**good, "timezone": "Marte/Olympus"}, "zona horaria desconocida"),
        ({**good, "holidays": ["25/12/2026"]}, "no es una fecha (AAAA-MM-DD): '25/12/2026'"),
        ({**good, "hours": "lunes a viernes"}, None),
    ):
        refused = await client.put("/api/v1/handoff/schedule", json=body, headers=spanish)
        assert refused.status_code == 422, body
        if reason:
            assert reasons(refused)[0].startswith(reason), reasons(refused)
    # what was saved before stays in force
    now = (await client.get("/api/v1/handoff/schedule", headers=admin.headers)).json()
    assert (now["hours"], now["timezone"], now["holidays"]) == (
        good["hours"], good["timezone"], good["holidays"])
    assert runtime.schedule.live.spec == good["hours"]


async def test_contact_and_labels_refuse_bad_input_and_keep_what_was_there(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    supervisor = await staff("supervisor")
    out = await ask(client, "quiero hablar con un asesor", phone="+525540404040",
                    name="Nora Núñez")
    url = f"/api/v1/conversations/{out['conversation_id']}/contact"
    kept = await client.patch(url, json={"email": "nora@example.mx", "notes": "cliente VIP"},
                              headers=supervisor.headers)
    assert kept.status_code == 200
    bad = await client.patch(url, json={"email": "nora arroba example", "notes": "otra"},
                             headers=supervisor.headers)
    assert bad.status_code == 422 and reasons(bad) == ["that is not an e-mail address"]
    after = (await client.get(url, headers=supervisor.headers)).json()
    assert (after["email"], after["notes"], after["name"]) == (
        "nora@example.mx", "cliente VIP", "Nora Núñez")  # the PATCH without a name kept it
    assert after["phone"] == "+525540404040"  # the number as typed, not the simulator's key
    # a partial update changes only what it gives: the e-mail and notes stay
    renamed = await client.patch(url, json={"name": "Nora N."}, headers=supervisor.headers)
    assert (renamed.json()["name"], renamed.json()["email"], renamed.json()["notes"]) == (
        "Nora N.", "nora@example.mx", "cliente VIP")
    cleared = await client.patch(url, json={"notes": ""}, headers=supervisor.headers)
    assert (cleared.json()["notes"], cleared.json()["email"]) == (None, "nora@example.mx")
    bad = await client.patch(url, json={"phone": "+520000000000"}, headers=supervisor.headers)
    assert bad.status_code == 422  # only name, e-mail and notes are editable

    await client.put("/api/v1/labels/vip", json={"color": "#1f6feb"}, headers=supervisor.headers)
    for label, body in (("vip", {"color": "rojo"}), ("vip", {"color": "#12345"}),
                        ("x" * 41, {"color": "#cf222e"})):
        refused = await client.put(f"/api/v1/labels/{label}", json=body,
                                   headers=supervisor.headers)
        assert refused.status_code == 422, (label, body)
    labels = (await client.get("/api/v1/labels", headers=supervisor.headers)).json()
    assert [x["color"] for x in labels if x["name"] == "vip"] == ["#1f6feb"]


async def test_attachments_refused_leave_nothing_stored(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    agent = await staff("agent")
    out = await ask(client, "quiero hablar con un asesor", phone="+525541414141")
    url = f"/api/v1/conversations/{out['conversation_id']}/attachments"
    before = stored_files(runtime)

    # a text file, and text named and declared as a PNG: refused before anything is stored
    for name, data, mime in (("nota.txt", b"hola", "text/plain"),
                             ("foto.png", b"no soy una imagen", "image/png")):
        refused = await client.post(url, files={"file": (name, data, mime)},
                                    headers=agent.headers)
        assert refused.status_code == 422, refused.text
        assert reasons(refused)[0].startswith("media rejected"), reasons(refused)
    # a real image to a conversation another agent holds: refused, and the stored file
    # removed again
    holder = await staff("agent")
    claimed = await client.post(f"/api/v1/conversations/{out['conversation_id']}/claim",
                                headers=holder.headers)
    assert claimed.status_code == 200, claimed.text
    refused = await client.post(url, files={"file": ("foto.png", real_png(8, 8), "image/png")},
                                headers=agent.headers)
    assert refused.status_code in (403, 404, 409), refused.text
    assert stored_files(runtime) == before
    # from the agent who holds it, the same image goes out
    sent = await client.post(url, files={"file": ("foto.png", real_png(8, 8), "image/png")},
                             data={"caption": "tu recibo"}, headers=holder.headers)
    assert sent.status_code == 200 and sent.json()["message_id"], sent.text
    assert len(stored_files(runtime)) == len(before) + 1
