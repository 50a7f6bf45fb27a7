"""The WhatsApp Cloud API webhook (CONTRACTS.md): verify challenge, signed deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from bot.api.deps import RuntimeDep
from bot.channels.cloud_webhook import SignatureCheck
from bot.errors import InvalidWebhook
from bot.logs import get_logger

router = APIRouter(prefix="/webhooks/whatsapp-cloud", tags=["whatsapp-cloud"])
log = get_logger("atiende.api.whatsapp_cloud")


@router.get("", response_class=PlainTextResponse, summary="Meta's webhook verification")
async def verify(
    runtime: RuntimeDep,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> PlainTextResponse:
    answer = runtime.cloud_webhook.challenge(mode, token, challenge)
    if answer is None:
        log.warning("cloud.verify_refused", mode=mode)
        return PlainTextResponse("verify token does not match", status_code=403)
    return PlainTextResponse(answer)


@router.post("", summary="Meta's webhook deliveries (messages and statuses)")
async def receive(
    request: Request,
    runtime: RuntimeDep,
    signature: Annotated[str | None, Header(alias="X-Hub-Signature-256")] = None,
) -> JSONResponse:
    raw = await request.body()
    check = runtime.cloud_webhook.verify(raw, signature)
    if check is not SignatureCheck.OK:
        status = 401 if check is SignatureCheck.MISSING else 403
        log.warning("cloud.signature_refused", reason=check.value, size=len(raw))
        return JSONResponse({"detail": f"signature {check.value}"}, status_code=status)
    try:
        outcome = await runtime.cloud_webhook.receive(raw)
    except InvalidWebhook as exc:
        log.warning("cloud.invalid_webhook", error=str(exc), size=len(raw))
        return JSONResponse({"detail": str(exc)}, status_code=400)
    return JSONResponse(
        {"stored": outcome.stored, "duplicates": outcome.duplicates,
         "statuses": outcome.statuses, "media_failed": outcome.media_failed}
    )
