"""The running app on a provider's embedding model (from settings): the admin API saves and
retrieves through it, and a provider outage answers 503 with the reason, storing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.api import create_app
from bot.llm.embeddings import ProviderEmbedder
from bot.llm.scripted import Behaviour, ScriptedServer
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from knowledge.config import KnowledgeConfig


@pytest.fixture
async def provider_client(
    settings: Settings, database_url: str, redis_url: str, provider: ScriptedServer
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    knowledge = KnowledgeConfig.model_validate({
        "embedding_model": "openai/bow-embed", "embedding_api_base": provider.url,
        "embedding_api_key": "os.environ/ATIENDE_TEST_EMBED_KEY", "embedding_retries": 0,
    })
    import os

    os.environ["ATIENDE_TEST_EMBED_KEY"] = "sk-from-env"
    runtime = await Runtime.create(settings.model_copy(update={"knowledge": knowledge}),
                                   database_url=database_url, redis_url=redis_url)

    async def factory() -> Runtime:
        return runtime

    app = create_app(factory, run_worker=False)
    app.state.runtime = runtime
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://atiende.test") as client:
            yield client, runtime
    finally:
        await runtime.close()
        os.environ.pop("ATIENDE_TEST_EMBED_KEY", None)


async def admin_headers(client: httpx.AsyncClient, runtime: Runtime) -> dict[str, str]:
    from handoff.roles import Role

    await runtime.auth.create_user(email="ana@seguros.mx", name="Ana", role=Role.ADMIN,
                                   password="contraseña-segura")
    r = await client.post("/api/v1/auth/login",
                          json={"email": "ana@seguros.mx", "password": "contraseña-segura"})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_admin_api_on_a_provider_model(
    provider_client: tuple[httpx.AsyncClient, Runtime], provider: ScriptedServer
) -> None:
    client, runtime = provider_client
    assert isinstance(runtime.knowledge.embedder, ProviderEmbedder)
    admin = await admin_headers(client, runtime)
    article = {"title": "Formas de pago", "kind": "policy",
               "body": "Puedes pagar con tarjeta, SPEI o en efectivo en OXXO."}
    r = await client.put("/api/v1/kb/articles/formas-pago", json=article, headers=admin)
    assert r.status_code == 200, r.text
    assert provider.received[-1].authorization == "Bearer sk-from-env"
    r = await client.post("/api/v1/kb/try", json={"text": "puedo pagar en oxxo?"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["hits"][0]["source_id"] == "formas-pago"
    assert r.json()["hits"][0]["similarity"] > 0.3

    provider.default = Behaviour.error(500)
    r = await client.put("/api/v1/kb/articles/horario", headers=admin,
                         json={"title": "Horario", "kind": "faq", "body": "De 9 a 18 horas."})
    assert r.status_code == 503 and "bow-embed" in r.json()["detail"]
    assert (await client.get("/api/v1/kb/articles/horario", headers=admin)).status_code == 404
    r = await client.put("/api/v1/kb/products/KIT-VIAL", headers=admin,
                         json={"name": "Kit vial", "price": "899.00"})
    assert r.status_code == 503
    assert (await client.get("/api/v1/kb/products/KIT-VIAL", headers=admin)).status_code == 404
