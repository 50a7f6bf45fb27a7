from __future__ import annotations

import httpx

from tests.conftest import ask


async def test_greeting_end_to_end(client: httpx.AsyncClient) -> None:
    out = await ask(client, "holaaa buenas tardes", name="Ana López")
    assert out["status"] == "processed"
    assert out["intent"] == "greeting"
    assert out["owner"] == "bot"
    assert len(out["replies"]) == 1
    assert "Hola Ana" in out["replies"][0]
