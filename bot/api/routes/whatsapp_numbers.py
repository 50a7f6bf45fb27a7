"""Admin: the business's WhatsApp numbers (neonize): add, link (QR or pairing code), health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from bot.api.auth import AdminDep, audit, require_page_role
from bot.api.deps import RuntimeDep
from bot.api.pages import render
from bot.channels.numbers import NumberRecord
from bot.channels.qr import qr_svg
from bot.errors import NotFound
from bot.phones import normalize_phone
from handoff.auth import Principal
from handoff.roles import Role

router = APIRouter(prefix="/api/v1/whatsapp/numbers", tags=["whatsapp numbers"])
pages = APIRouter(include_in_schema=False)
AdminPage = Annotated[Principal, Depends(require_page_role(Role.ADMIN))]


class NumberCreate(BaseModel):
    account: str = Field(min_length=8, max_length=25, description="the business number")
    label: str | None = Field(default=None, max_length=100)


class LinkRequest(BaseModel):
    mode: Literal["qr", "code"] = "qr"
    phone: str | None = Field(default=None, max_length=25,
                              description="for a pairing code: the number to link")


class NumberPublic(BaseModel):
    account: str
    label: str | None
    state: str
    detail: str | None
    linked: bool
    enabled: bool
    restarts: int
    retry_at: datetime | None
    has_qr: bool
    qr_expires_at: datetime | None
    pairing_code: str | None
    owner_node: str | None
    updated_at: datetime | None


def _public(record: NumberRecord) -> NumberPublic:
    now = datetime.now(UTC)
    live_qr = bool(record.qr) and (record.qr_expires_at is None or record.qr_expires_at > now)
    return NumberPublic(
        account=record.account, label=record.label, state=record.state, detail=record.detail,
        linked=record.jid is not None, enabled=record.enabled, restarts=record.restarts,
        retry_at=record.retry_at, has_qr=live_qr, qr_expires_at=record.qr_expires_at,
        pairing_code=record.pairing_code, owner_node=record.owner_node,
        updated_at=record.updated_at,
    )


async def _get(runtime: RuntimeDep, account: str) -> NumberRecord:
    region = runtime.settings.default_region
    record = await runtime.whatsapp.book.get(normalize_phone(account, region))
    if record is None:
        raise NotFound(f"no WhatsApp number {account}")
    return record


@router.get("", response_model=list[NumberPublic])
async def list_numbers(runtime: RuntimeDep, _: AdminDep) -> list[NumberPublic]:
    """Every number with its health (state, last detail, restarts, ban expiry)."""
    return [_public(r) for r in await runtime.whatsapp.book.all()]


@router.post("", response_model=NumberPublic, status_code=201)
async def add_number(body: NumberCreate, runtime: RuntimeDep, admin: AdminDep) -> NumberPublic:
    account = normalize_phone(body.account, runtime.settings.default_region)
    record = await runtime.whatsapp.book.add(account, body.label)
    await audit(runtime, admin, "whatsapp.number.add", f"whatsapp_number:{account}")
    return _public(record)


@router.post("/{account}/link", response_model=NumberPublic, status_code=202)
async def link_number(
    account: str, body: LinkRequest, runtime: RuntimeDep, admin: AdminDep
) -> NumberPublic:
    """Start linking: a fresh QR (or a pairing code for ``phone``) appears on the page."""
    record = await _get(runtime, account)
    phone = None
    if body.mode == "code":
        phone = normalize_phone(body.phone or record.account, runtime.settings.default_region)
    linking = await runtime.whatsapp.book.request_link(record.account, pairing_phone=phone)
    await audit(runtime, admin, "whatsapp.number.link", f"whatsapp_number:{record.account}",
                mode=body.mode)
    return _public(linking)


@router.post("/{account}/disable", response_model=NumberPublic)
async def disable_number(account: str, runtime: RuntimeDep, admin: AdminDep) -> NumberPublic:
    record = await _get(runtime, account)
    await runtime.whatsapp.book.disable(record.account)
    await audit(runtime, admin, "whatsapp.number.disable", f"whatsapp_number:{record.account}")
    return _public(await _get(runtime, account))


@router.get("/{account}/qr.svg", response_class=Response)
async def number_qr(account: str, runtime: RuntimeDep, _: AdminDep) -> Response:
    """The QR to scan from WhatsApp › Linked devices (404 once used or expired)."""
    public = _public(record := await _get(runtime, account))
    if not public.has_qr or record.qr is None:
        raise NotFound("no QR to scan right now: start the link again")
    return Response(qr_svg(record.qr), media_type="image/svg+xml",
                    headers={"Cache-Control": "no-store"})


@pages.get("/admin/whatsapp", response_class=HTMLResponse)
async def numbers_page(request: Request, principal: AdminPage) -> HTMLResponse:
    return render(request, "whatsapp_numbers.html", user=principal, areas=("whatsapp",),
                  title="nav.whatsapp", script="whatsapp")
