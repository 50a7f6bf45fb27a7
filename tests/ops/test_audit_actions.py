"""Every admin and agent action, done over HTTP, leaves its row in the audit log:
who (actor), what (action) and on which thing (target); the backup commands too."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from bot.cli.app import app
from bot.infra.backup import create_backup, restore_backup
from bot.llm.scripted import Behaviour, ScriptedServer
from bot.wiring.runtime import Runtime
from handoff.audit import Actor
from tests.conftest import ask

ARTICLE = {"title": "Horario", "kind": "faq", "body": "Atendemos de 9 a 18 h de lunes a viernes."}
PRODUCT = {"name": "Seguro de moto", "price": "1999.00", "currency": "MXN"}


class Trail:
    """Reads the audit log through the admin API and finds one action's row."""

    def __init__(self, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
        self.client, self.admin = client, admin

    async def find(self, action: str, target: str | None, email: str | None) -> dict[str, Any]:
        r = await self.client.get(
            "/api/v1/admin/audit", headers=self.admin, params={"action": action}
        )
        assert r.status_code == 200, r.text
        rows = [e for e in r.json() if target is None or e["target"] == target]
        assert rows, f"no audit row for {action} {target}"
        row: dict[str, Any] = rows[0]
        assert row["actor_email"] == email, row
        assert row["actor_kind"] == ("user" if email else "cli"), row
        return row


async def _me(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, str]:
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    return me["id"], me["email"]


async def test_knowledge_base_actions_are_audited(
    client: httpx.AsyncClient, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await auth_headers("admin")
    _, email = await _me(client, admin)
    trail = Trail(client, admin)
    kb = "/api/v1/kb"

    async def ok(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code < 300, response.text
        return response.json() if response.content else {}

    await ok(await client.put(f"{kb}/articles/horario", json=ARTICLE, headers=admin))
    await trail.find("kb.article.create", "article:horario", email)
    edited = {**ARTICLE, "body": "Atendemos de 9 a 19 h, sábados de 10 a 14 h."}
    await ok(await client.put(f"{kb}/articles/horario", json=edited, headers=admin))
    row = await trail.find("kb.article.update", "article:horario", email)
    assert row["details"]["version"] == 2
    await ok(await client.delete(f"{kb}/articles/horario", headers=admin))
    await trail.find("kb.article.delete", "article:horario", email)
    await ok(await client.post(f"{kb}/articles/horario/versions/1/restore", headers=admin))
    row = await trail.find("kb.article.restore", "article:horario", email)
    assert row["details"]["restored_version"] == 1

    await ok(await client.put(f"{kb}/products/MOTO-1", json=PRODUCT, headers=admin))
    await trail.find("kb.product.create", "product:MOTO-1", email)
    await ok(await client.put(f"{kb}/products/MOTO-1", json={**PRODUCT, "price": "2100"},
                              headers=admin))
    await trail.find("kb.product.update", "product:MOTO-1", email)
    await ok(await client.delete(f"{kb}/products/MOTO-1", headers=admin))
    await trail.find("kb.product.delete", "product:MOTO-1", email)
    await ok(await client.post(f"{kb}/products/MOTO-1/versions/2/restore", headers=admin))
    await trail.find("kb.product.restore", "product:MOTO-1", email)

    csv = (b"sku,name,description,price,currency,stock,category\n"
           b"GMM-1,Gastos medicos,,900,MXN,,salud\n")
    await ok(await client.post(f"{kb}/import", headers=admin,
                               files=[("files", ("catalogo.csv", csv, "text/csv"))]))
    row = await trail.find("kb.import", None, email)
    assert row["details"]["files"] == ["catalogo.csv"]

    example = await ok(await client.post(
        f"{kb}/intent-examples", json={"intent": "complaint", "text": "ya me hartaron"},
        headers=admin))
    await trail.find("kb.intent_example.create", f"intent_example:{example['id']}", email)
    await ok(await client.delete(f"{kb}/intent-examples/{example['id']}", headers=admin))
    await trail.find("kb.intent_example.delete", f"intent_example:{example['id']}", email)


async def test_inbox_and_user_actions_are_audited(
    client: httpx.AsyncClient, runtime: Runtime, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await auth_headers("admin")
    agent = await auth_headers("agent")
    supervisor = await auth_headers("supervisor")
    admin_email = (await _me(client, admin))[1]
    agent_id, agent_email = await _me(client, agent)
    sup_email = (await _me(client, supervisor))[1]
    trail = Trail(client, admin)

    asked = await ask(client, "quiero hablar con una persona por favor", phone="+5215511112222")
    assert asked["owner"] == "queued", asked
    cid = asked["conversation_id"]
    target = f"conversation:{cid}"
    api = f"/api/v1/conversations/{cid}"

    async def post(url: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
        r = await client.post(url, headers=headers, json=body)
        assert r.status_code < 300, (url, r.text)
        return r

    await post(f"{api}/claim", agent)
    await trail.find("conversation.claim", target, agent_email)
    sent = (await post(f"{api}/messages", agent, {"text": "Hola, soy Ana, te ayudo"})).json()
    row = await trail.find("conversation.reply", target, agent_email)
    assert row["details"]["message_id"] == sent["message_id"]
    note = (await post(f"{api}/notes", agent, {"text": "cliente molesto"})).json()
    row = await trail.find("conversation.note", target, agent_email)
    assert row["details"]["note_id"] == note["id"]
    r = await client.put(f"{api}/labels", headers=agent, json={"labels": ["cobranza"]})
    assert r.status_code == 200, r.text
    await trail.find("conversation.labels", target, agent_email)
    await post(f"{api}/release", agent)
    await trail.find("conversation.release", target, agent_email)
    await post(f"{api}/assign", supervisor, {"agent_id": agent_id})
    row = await trail.find("conversation.assign", target, sup_email)
    assert row["details"]["agent_id"] == agent_id
    team = (await post("/api/v1/teams", admin, {"name": "Cobranza", "skills": ["pagos"]})).json()
    await trail.find("team.create", f"team:{team['id']}", admin_email)
    r = await client.put(f"/api/v1/teams/{team['id']}/members", headers=admin,
                         json={"user_ids": [agent_id]})
    assert r.status_code == 204, r.text
    await trail.find("team.members", f"team:{team['id']}", admin_email)
    await post(f"{api}/transfer", agent, {"team_id": team["id"]})
    await trail.find("conversation.transfer", target, agent_email)
    await post(f"{api}/claim", agent)
    await post(f"{api}/resolve", agent)
    await trail.find("conversation.resolve", target, agent_email)
    started = (await post("/api/v1/conversations", agent,
                          {"phone": "+52 55 3333 4444", "text": "Hola, le escribo de Seguros"}))
    await trail.find("conversation.start", f"conversation:{started.json()['conversation_id']}",
                     agent_email)

    canned = (await post("/api/v1/canned-responses", supervisor,
                         {"shortcut": "hola", "text": "¡Hola! ¿En qué te ayudo?"})).json()
    await trail.find("canned.create", f"canned:{canned['id']}", sup_email)
    r = await client.delete(f"/api/v1/canned-responses/{canned['id']}", headers=supervisor)
    assert r.status_code == 204
    await trail.find("canned.delete", f"canned:{canned['id']}", sup_email)

    user = (await post("/api/v1/users", admin, {
        "email": "nuevo@example.mx", "name": "Nuevo", "role": "agent",
        "password": "contraseña-larga"})).json()
    row = await trail.find("users.create", f"user:{user['id']}", admin_email)
    assert row["details"] == {"email": "nuevo@example.mx", "role": "agent"}
    r = await client.patch(f"/api/v1/users/{user['id']}", headers=admin, json={"active": False})
    assert r.status_code == 200, r.text
    row = await trail.find("users.update", f"user:{user['id']}", admin_email)
    assert row["details"] == {"active": False} and "password" not in str(row)


async def test_llm_channel_and_backup_actions_are_audited(
    client: httpx.AsyncClient, runtime: Runtime, database_url: str, tmp_path: Path,
    auth_headers,  # type: ignore[no-untyped-def]
) -> None:
    admin = await auth_headers("admin")
    email = (await _me(client, admin))[1]
    trail = Trail(client, admin)
    with ScriptedServer(default=Behaviour.answer("ok")) as provider:
        document = yaml.safe_dump({
            "model_list": [{"model_name": "primary", "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_base": provider.url,
                "api_key": "sk-secreta-123456", "timeout": 2}}],
            "atiende": {"answer_model": "primary", "warm_up": False},
        })
        r = await client.put("/api/v1/llm/chain", headers=admin, json={"yaml": document})
        assert r.status_code == 200, r.text
        row = await trail.find("llm.chain.update", None, email)
        assert row["details"] == {"models": ["primary"]}
        assert "sk-secreta" not in str(row) and row["target"].startswith("llm_config:")
        r = await client.post("/api/v1/llm/chain/test", headers=admin)
        assert r.status_code == 200, r.text
        await trail.find("llm.chain.test", row["target"], email)

    numbers = "/api/v1/whatsapp/numbers"
    r = await client.post(numbers, headers=admin, json={"account": "+52 55 1111 0000"})
    assert r.status_code == 201, r.text
    account = r.json()["account"]
    await trail.find("whatsapp.number.add", f"whatsapp_number:{account}", email)
    r = await client.post(f"{numbers}/{account}/link", headers=admin, json={"mode": "qr"})
    assert r.status_code == 202, r.text
    await trail.find("whatsapp.number.link", f"whatsapp_number:{account}", email)
    r = await client.post(f"{numbers}/{account}/disable", headers=admin)
    assert r.status_code == 200, r.text
    await trail.find("whatsapp.number.disable", f"whatsapp_number:{account}", email)

    # the backup commands (the CLI runs these functions): recorded as the command line
    backup = tmp_path / f"respaldo-{uuid.uuid4().hex[:6]}.tar.gz"
    create_backup(database_url, backup, media_root=None)
    await trail.find("backup.create", f"backup:{backup.name}", None)
    await runtime.stop_worker()  # a restore wants the database to itself
    await runtime.engine.dispose()
    restore_backup(database_url, backup, media_root=None, force=True)
    await trail.find("backup.restore", f"backup:{backup.name}", None)


async def test_audit_page_lists_filters_escapes_and_is_for_admins_only(
    client: httpx.AsyncClient, runtime: Runtime, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await auth_headers("admin")
    agent = await auth_headers("agent")
    await runtime.audit.record(Actor.cli(), "kb.import", None, {"files": ["<script>x</script>.md"]})
    await runtime.audit.record(Actor.cli(), "backup.create", "backup:respaldo.tar.gz")
    page = await client.get("/admin/audit", headers=admin, params={"action": "kb.*"})
    assert page.status_code == 200
    assert "kb.import" in page.text and "backup.create" not in page.text
    assert "<script>x" not in page.text and "Registro de auditoría" in page.text
    english = await client.get("/admin/audit", headers=admin, params={"lang": "en"})
    assert "Audit log" in english.text and "backup:respaldo.tar.gz" in english.text
    refused = await client.get("/admin/audit", headers=agent, follow_redirects=False)
    assert refused.status_code in (303, 403), refused.status_code
    anonymous = await client.get("/admin/audit", follow_redirects=False)
    assert anonymous.status_code in (302, 303, 307) and "/login" in anonymous.headers["location"]


def test_kb_import_command_is_audited_as_the_command_line(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATIENDE_DATABASE_URL", database_url)
    monkeypatch.setenv("ATIENDE_KNOWLEDGE__EMBEDDER", "hashing")
    monkeypatch.setenv("ATIENDE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("ATIENDE_DATA_DIR", str(tmp_path))
    article = tmp_path / "pagos.md"
    article.write_text("---\nid: pagos\ntitle: Pagos\n---\nAceptamos OXXO y tarjeta.\n", "utf-8")
    done = CliRunner().invoke(app, ["kb", "import", str(article), "--editor", "lupita"])
    assert done.exit_code == 0, done.output
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT actor_kind, details FROM audit_log WHERE action = 'kb.import'").fetchone()
    assert row is not None and row[0] == "cli", row
    assert row[1]["editor"] == "lupita" and row[1]["files"] == [str(article)], row
