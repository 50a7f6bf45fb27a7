"""QR rendering for linking a number (segno: the only importer)."""

from __future__ import annotations

import io

import segno


def qr_svg(data: str) -> bytes:
    """The QR of ``data`` as a standalone SVG (scannable from a laptop screen)."""
    buffer = io.BytesIO()
    segno.make_qr(data, error="l").save(buffer, kind="svg", scale=6, border=2)
    return buffer.getvalue()
