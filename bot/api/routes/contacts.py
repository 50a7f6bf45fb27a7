"""Customer data over HTTP (admins): export everything held about a customer (JSON, or
an archive with their media), erase it, read the erasure log; and the admin page.

``{phone}`` is a number in any usual form (``+52 55 1234 5678``), a simulator key
(``sim:+52…``), a WhatsApp LID key (``lid:…``) or a contact id. Thin handlers: parse,
call ``runtime.privacy``, record the audit entry, return.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict
from starlette.background import BackgroundTask

from bot.api.auth import AdminDep, Principal, Role, audit, require_page_role
from bot.api.deps import RuntimeDep
from bot.api.pages import render, request_lang
from bot.privacy import CustomerRef
from bot.wiring.runtime import Runtime
from handoff.audit import Actor

router = APIRouter(prefix="/api/v1/contacts", tags=["customer data"])
pages = APIRouter(include_in_schema=False)
AdminPage = Annotated[Principal, Depends(require_page_role(Role.ADMIN))]

LABELS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Datos de clientes", "phone": "Teléfono del cliente (o id de contacto)",
        "look": "Ver qué tenemos", "json": "Descargar JSON",
        "archive": "Descargar todo (.zip, con archivos)", "erase": "Borrar todos sus datos",
        "confirm": "Escribe de nuevo el número para confirmar el borrado",
        "erased": "Datos borrados", "held": "Datos guardados", "table": "Tabla",
        "rows": "Filas", "log": "Borrados recientes", "when": "Fecha (UTC)", "who": "Quién",
        "contact": "Contacto", "state": "Estado", "none": "Ningún borrado todavía",
        "mismatch": "El número no coincide; no se borró nada",
        "note": "El borrado elimina mensajes, transcripciones, archivos, memoria, notas, "
                "etiquetas, campañas y secuencias del cliente. Las cifras de analítica se "
                "conservan sin sus datos, y si pidió no recibir mensajes, eso se sigue respetando.",
    },
    "en": {
        "title": "Customer data", "phone": "Customer phone (or contact id)",
        "look": "See what we hold", "json": "Download JSON",
        "archive": "Download everything (.zip, with files)", "erase": "Erase all their data",
        "confirm": "Type the number again to confirm the erasure",
        "erased": "Data erased", "held": "Data held", "table": "Table", "rows": "Rows",
        "log": "Recent erasures", "when": "When (UTC)", "who": "Who", "contact": "Contact",
        "state": "State", "none": "No erasures yet",
        "mismatch": "The number does not match; nothing was erased",
        "note": "Erasing removes the customer's messages, transcripts, files, memory, notes, "
                "labels, campaigns and sequences. Analytics keep their counts without their "
                "data, and an opt-out keeps being honoured.",
    },
}


class ErasedPublic(BaseModel):
    """``erased`` is always true; the other keys are rows deleted or anonymised per table
    (``messages``, ``handoff_tickets``, ``conversation_notes``, …)."""

    model_config = ConfigDict(extra="allow")

    erased: bool
    contact_id: uuid.UUID
    erasure_id: uuid.UUID
    media_objects: int
    opt_out_kept: bool
    complete: bool
    resumed: bool


class ErasurePublic(BaseModel):
    id: uuid.UUID
    contact_id: uuid.UUID
    requested_at: datetime
    source: str
    actor_kind: str
    actor_email: str | None
    state: str
    opted_out: bool
    counts: dict[str, Any]
    pending_objects: int
    finished_at: datetime | None


def _ref(runtime: Runtime, phone: str) -> CustomerRef:
    return CustomerRef.parse(phone, region=runtime.settings.default_region)


@router.get("/erasures", response_model=list[ErasurePublic])
async def erasures(
    runtime: RuntimeDep, admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ErasurePublic]:
    """The erasure log, newest first: who erased which contact and when (no numbers)."""
    return [ErasurePublic(**row) for row in await _log(runtime, limit)]


@router.get("/{phone}/export")
async def export_json(phone: str, runtime: RuntimeDep, admin: AdminDep) -> dict[str, Any]:
    """Everything held about the customer as JSON (404 for an unknown or erased number);
    media are listed with their keys (the archive has the files)."""
    document = await runtime.privacy.exporter.document(_ref(runtime, phone))
    await audit(runtime, admin, "contacts.export", f"contact:{document['contact']['id']}",
                format="json")
    return document


@router.get("/{phone}/export/archive", response_class=FileResponse)
async def export_archive(phone: str, runtime: RuntimeDep, admin: AdminDep) -> FileResponse:
    """A zip with ``export.json`` and every media file of the customer (streamed from a
    temporary file, removed once sent)."""
    ref = _ref(runtime, phone)
    handle = tempfile.NamedTemporaryFile(prefix="atiende-export-", suffix=".zip", delete=False)
    handle.close()
    path = Path(handle.name)
    try:
        summary = await runtime.privacy.exporter.archive(ref, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    await audit(runtime, admin, "contacts.export", f"contact:{summary.contact_id}",
                format="archive", media_files=summary.media_files, missing=summary.missing)
    return FileResponse(
        path, media_type="application/zip", filename=f"cliente-{summary.contact_id}.zip",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.delete("/{phone}", response_model=ErasedPublic)
async def erase(phone: str, runtime: RuntimeDep, admin: AdminDep) -> dict[str, Any]:
    """Erase the customer's data in one operation (the audit entry commits with it);
    404 for an unknown number or one erased before. The opt-out survives as a salted
    hash; ``complete`` is false while media or memory are left to delete (retried)."""
    erased = await runtime.privacy.eraser.erase(
        _ref(runtime, phone), actor=Actor.of(admin), source="api"
    )
    return erased.to_json()


@pages.get("/admin/contacts", response_class=HTMLResponse)
async def contacts_page(request: Request, runtime: RuntimeDep, admin: AdminPage) -> HTMLResponse:
    """Look a customer up, export or erase them; the recent erasures."""
    lang = request_lang(request)
    return render(request, "contacts.html", user=admin, title="nav.contacts", script="contacts",
                  context={"L": LABELS[lang], "erasures": await _log(runtime, 20)})


async def _log(runtime: Runtime, limit: int) -> list[dict[str, Any]]:
    return await runtime.privacy.eraser.recent(limit=limit)
