"""Catalog and intent-example admin API: roles, CRUD with versions, filters, reasons on bad
input, and the running classifier picking up an edited example set within 5 seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from bot.wiring.runtime import Runtime

Headers = Callable[..., Awaitable[dict[str, str]]]


async def test_roles_on_catalog_and_examples(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    agent = await auth_headers("agent")
    supervisor = await auth_headers("supervisor")
    for method, path, body in [
        ("GET", "/api/v1/kb/products", None),
        ("PUT", "/api/v1/kb/products/X-1", {"name": "x", "price": "1"}),
        ("DELETE", "/api/v1/kb/products/X-1", None),
        ("GET", "/api/v1/kb/intent-examples", None),
        ("POST", "/api/v1/kb/intent-examples", {"intent": "greeting", "text": "holi"}),
        ("DELETE", "/api/v1/kb/intent-examples/1", None),
    ]:
        assert (await client.request(method, path, json=body)).status_code == 401
        for headers in (agent, supervisor):
            r = await client.request(method, path, json=body, headers=headers)
            assert r.status_code == 403, (method, path, r.text)
    for path in ("/admin/kb/catalog", "/admin/kb/intents"):
        page = await client.get(path, headers=agent)
        assert page.status_code in (302, 303, 307) or page.status_code == 403


async def test_product_crud_versions_and_reasons(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    admin = await auth_headers("admin", email="ana@seguros.mx")
    kit = {"name": "Kit vial <b>", "description": "Triángulos y extintor", "price": "899.00",
           "currency": "MXN", "stock": 25, "category": "Accesorios"}
    r = await client.put("/api/v1/kb/products/KIT-VIAL", json=kit, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["updated_by"] == "ana@seguros.mx"
    r = await client.put("/api/v1/kb/products/KIT-VIAL", json={**kit, "price": "949.50",
                                                                 "stock": None}, headers=admin)
    assert r.json()["version"] == 2 and r.json()["stock"] is None
    assert r.json()["price"] == "949.50"
    found = await client.get("/api/v1/kb/products", params={"q": "accesorios"}, headers=admin)
    assert [p["sku"] for p in found.json()] == ["KIT-VIAL"]
    history = (await client.get("/api/v1/kb/products/KIT-VIAL/versions", headers=admin)).json()
    assert [(v["version"], v["action"]) for v in history] == [(2, "update"), (1, "create")]
    r = await client.post("/api/v1/kb/products/KIT-VIAL/versions/1/restore", headers=admin)
    assert r.json()["price"] == "899.00" and r.json()["stock"] == 25 and r.json()["version"] == 3
    r = await client.delete("/api/v1/kb/products/KIT-VIAL", headers=admin)
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert (await client.get("/api/v1/kb/products", headers=admin)).json() == []
    listed = await client.get("/api/v1/kb/products", params={"include_deleted": True},
                              headers=admin)
    assert [p["sku"] for p in listed.json()] == ["KIT-VIAL"]
    assert (await client.delete("/api/v1/kb/products/KIT-VIAL", headers=admin)).status_code == 404

    for bad, where in [({**kit, "price": "-5"}, "price"), ({**kit, "price": "12.345"}, "price"),
                       ({**kit, "price": "caro"}, "price"), ({**kit, "stock": -1}, "stock"),
                       ({**kit, "currency": "PESOS"}, "currency"), ({**kit, "name": ""}, "")]:
        r = await client.put("/api/v1/kb/products/KIT-2", json=bad, headers=admin)
        assert r.status_code == 422, (bad, r.text)
        detail = r.json()["detail"]
        assert detail and detail[0]["msg"], detail
        assert where in str(detail[0]["loc"]) or not where
    r = await client.put("/api/v1/kb/products/sku%20con%20espacios", json=kit, headers=admin)
    assert r.status_code == 422
    assert (await client.get("/api/v1/kb/products/KIT-2", headers=admin)).status_code == 404


async def _label(runtime: Runtime, text: str) -> tuple[str, str]:
    routed = (await runtime.intent_router.route(text)).routed
    return routed.intent.value, routed.stage


async def _until(runtime: Runtime, text: str, want: str, *, seconds: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if (await _label(runtime, text))[0] == want:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} is still {await _label(runtime, text)}, not {want}")


async def test_examples_edit_and_the_classifier_follows(
    client: httpx.AsyncClient, auth_headers: Headers, runtime: Runtime
) -> None:
    admin = await auth_headers("admin", email="ana@seguros.mx")
    phrase = "zorbak plin plon"
    before, _ = await _label(runtime, phrase)  # seeds the shipped examples, caches them
    target = "opt_out" if before != "opt_out" else "product"
    seeded = (await client.get("/api/v1/kb/intent-examples", headers=admin)).json()
    assert len(seeded) > 40 and {e["created_by"] for e in seeded} == {"seed"}

    added = []
    for text in (phrase, "zorbak plin plon!!", "zorbak  plin plon 😡"):
        r = await client.post("/api/v1/kb/intent-examples", headers=admin,
                              json={"intent": target, "text": text})
        assert r.status_code == 201, r.text
        added.append(r.json())
    assert added[2]["text"] == "zorbak plin plon 😡" and added[0]["created_by"] == "ana@seguros.mx"
    waited = await _until(runtime, phrase, target)
    assert waited < 5
    assert (await _label(runtime, phrase))[1] == "embedding"

    mine = await client.get("/api/v1/kb/intent-examples", headers=admin,
                            params={"intent": target, "q": "ZÓRBAK"})
    assert [e["id"] for e in mine.json()] == [e["id"] for e in added]
    assert (await client.get("/api/v1/kb/intent-examples", headers=admin,
                             params={"intent": "nope"})).status_code == 422

    for e in added:
        r = await client.delete(f"/api/v1/kb/intent-examples/{e['id']}", headers=admin)
        assert r.status_code == 204
    await _until(runtime, phrase, before)
    r = await client.delete(f"/api/v1/kb/intent-examples/{added[0]['id']}", headers=admin)
    assert r.status_code == 404 and "not found" in r.json()["detail"]

    for bad in ({"intent": "venta", "text": "hola"}, {"intent": "greeting", "text": ""},
                {"intent": "greeting", "text": "   "}, {"intent": "greeting", "text": "x" * 501}):
        r = await client.post("/api/v1/kb/intent-examples", json=bad, headers=admin)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["detail"][0]["msg"]
