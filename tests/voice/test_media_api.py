"""The signed media route of our API (the local backend's links)."""

from __future__ import annotations

import httpx

from bot.container import Runtime
from bot.messages import MessageKind
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
