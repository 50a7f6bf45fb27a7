"""Admin API for the knowledge base: roles, CRUD, versions, restore, import, preview, try."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

Headers = Callable[..., Awaitable[dict[str, str]]]

BODY = "# Horario\n\nAbrimos de 9:00 a 18:00. <script>alert('x')</script>\n"


async def test_roles_are_enforced(client: httpx.AsyncClient, auth_headers: Headers) -> None:
    assert (await client.get("/api/v1/kb/articles")).status_code == 401
    agent = await auth_headers("agent")
    assert (await client.get("/api/v1/kb/articles", headers=agent)).status_code == 403
    page = await client.get("/admin/kb")
    assert page.status_code in (302, 303, 307) and "/login" in page.headers["location"]


async def test_crud_versions_restore_and_search(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    admin = await auth_headers("admin", email="ana@example.mx")
    article = {"title": "Horario", "kind": "policy", "tags": ["horario"], "body": BODY}
    r = await client.put("/api/v1/kb/articles/horario", json=article, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["updated_by"] == "ana@example.mx"
    article["body"] = BODY.replace("18:00", "19:00")
    r = await client.put("/api/v1/kb/articles/horario", json=article, headers=admin)
    assert r.json()["version"] == 2
    found = await client.get("/api/v1/kb/articles", params={"q": "19:00"}, headers=admin)
    assert [a["id"] for a in found.json()] == ["horario"]
    history = (await client.get("/api/v1/kb/articles/horario/versions", headers=admin)).json()
    assert [v["version"] for v in history] == [2, 1]
    r = await client.post("/api/v1/kb/articles/horario/versions/1/restore", headers=admin)
    assert r.status_code == 200 and "18:00" in r.json()["body"] and r.json()["version"] == 3
    r = await client.delete("/api/v1/kb/articles/horario", headers=admin)
    assert r.json()["deleted"] is True
    listed = await client.get("/api/v1/kb/articles", headers=admin)
    assert listed.json() == []
    assert (await client.get("/api/v1/kb/articles/nope", headers=admin)).status_code == 404
    bad = await client.put("/api/v1/kb/articles/Mal%20Id", json=article, headers=admin)
    assert bad.status_code == 422
    empty = await client.put("/api/v1/kb/articles/vacio", json={**article, "body": "  "},
                             headers=admin)
    assert empty.status_code == 422 and "empty" in empty.json()["detail"][0]["msg"]

    product = {"name": "Kit vial", "price": "899.00", "currency": "MXN", "stock": 4}
    r = await client.put("/api/v1/kb/products/KIT-VIAL", json=product, headers=admin)
    assert r.status_code == 200 and r.json()["stock"] == 4
    r = await client.put("/api/v1/kb/products/KIT-VIAL", json={**product, "price": "-1"},
                         headers=admin)
    assert r.status_code == 422


async def test_preview_escapes_html(client: httpx.AsyncClient, auth_headers: Headers) -> None:
    admin = await auth_headers("admin")
    r = await client.post("/api/v1/kb/preview", json={"body": BODY + "\n[x](javascript:alert(1))"},
                          headers=admin)
    html = r.json()["html"]
    assert "<h1>Horario</h1>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html


async def test_import_upload_and_try(client: httpx.AsyncClient, auth_headers: Headers) -> None:
    admin = await auth_headers("admin")
    good = b"---\nid: pagos\ntitle: Formas de pago\nkind: policy\n---\nAceptamos pagos en OXXO.\n"
    bad = b"sku,name,description,price,currency,stock,category\nA,B,c,12.345,MXN,,x\n"
    r = await client.post(
        "/api/v1/kb/import", headers=admin,
        files=[("files", ("pagos.md", good)), ("files", ("malo.csv", bad))],
    )
    assert r.status_code == 200, r.text
    files = {f["source"]: f for f in r.json()["files"]}
    assert files["pagos.md"]["ok"] and not files["malo.csv"]["ok"]
    assert files["malo.csv"]["line"] == 2 and "bad price" in files["malo.csv"]["error"]
    r = await client.post("/api/v1/kb/try", json={"text": "¿puedo pagar en oxxo?"},
                          headers=admin)
    body = r.json()
    assert body["hits"] and body["hits"][0]["source_id"] == "pagos"
    assert body["hits"][0]["similarity"] > 0 and body["sources"] == ["pagos"]
    page = await client.get("/admin/kb", headers=admin)
    assert page.status_code == 200 and "Base de conocimiento" in page.text
