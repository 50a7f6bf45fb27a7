"""Magic-byte sniffing: what a file really is, whatever its name or declared MIME type says."""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: Bytes of the head of a file that sniffing (and image dimension parsing) looks at.
SNIFF_BYTES = 64 * 1024

_EXTENSIONS = {
    "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/wav": ".wav",
    "audio/webm": ".webm", "audio/amr": ".amr", "audio/aac": ".aac", "audio/flac": ".flac",
    "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
    "application/pdf": ".pdf", "application/zip": ".zip", "video/mp4": ".mp4",
    "application/x-ole-storage": ".doc", "text/plain": ".txt",
}

# Declared types that mean the same container as what we sniff.
_ALIASES = {
    "audio/opus": "audio/ogg", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav", "audio/mp3": "audio/mpeg", "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4", "audio/3gpp": "audio/mp4", "audio/x-flac": "audio/flac",
    "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "video/webm": "audio/webm",
    "application/ogg": "audio/ogg", "application/msword": "application/x-ole-storage",
    "application/vnd.ms-excel": "application/x-ole-storage",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "application/zip",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "application/zip",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation":
        "application/zip",
    "text/csv": "text/plain",
}

GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


@dataclass(frozen=True, slots=True)
class Sniffed:
    mime_type: str
    width: int | None = None
    height: int | None = None

    @property
    def pixels(self) -> int | None:
        return self.width * self.height if self.width and self.height else None


def base_type(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` → ``audio/ogg``; aliases folded to the sniffed name."""
    plain = mime_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(plain, plain)


def extension(mime_type: str) -> str:
    return _EXTENSIONS.get(base_type(mime_type), ".bin")


def mime_for_key(key: str) -> str:
    """The type a stored key was saved as (keys end in the sniffed type's extension)."""
    suffix = "." + key.rsplit(".", 1)[-1] if "." in key else ""
    for mime_type, ext in _EXTENSIONS.items():
        if ext == suffix:
            return mime_type
    return "application/octet-stream"


def sniff(head: bytes) -> Sniffed | None:  # noqa: C901 - one flat table of signatures
    """The real type of a file from its first bytes, or None when unrecognised."""
    if head.startswith(b"OggS"):
        return Sniffed("audio/ogg")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("audio/wav")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
                                   and head[1] & 0x06 != 0):
        return Sniffed("audio/mpeg")
    if head.startswith(b"\xff\xf1") or head.startswith(b"\xff\xf9"):
        return Sniffed("audio/aac")
    if head.startswith(b"#!AMR"):
        return Sniffed("audio/amr")
    if head.startswith(b"fLaC"):
        return Sniffed("audio/flac")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("audio/webm")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B ", b"3gp4", b"3gp5", b"3gp6", b"3ge6", b"3ge7", b"3gg6"):
            return Sniffed("audio/mp4")
        return Sniffed("video/mp4")
    if head.startswith(b"\xff\xd8\xff"):
        return _jpeg(head)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        width, height = struct.unpack(">II", head[16:24]) if len(head) >= 24 else (0, 0)
        return Sniffed("image/png", width, height)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", head[6:10]) if len(head) >= 10 else (0, 0)
        return Sniffed("image/gif", width, height)
    if head.startswith(b"%PDF-"):
        return Sniffed("application/pdf")
    if head.startswith(b"PK\x03\x04"):
        return Sniffed("application/zip")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return Sniffed("application/x-ole-storage")
    if _looks_like_text(head):
        return Sniffed("text/plain")
    return None


def _webp(head: bytes) -> Sniffed:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        width = 1 + int.from_bytes(head[24:27], "little")
        height = 1 + int.from_bytes(head[27:30], "little")
        return Sniffed("image/webp", width, height)
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return Sniffed("image/webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return Sniffed("image/webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return Sniffed("image/webp")


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(head: bytes) -> Sniffed:
    """Walk the JPEG markers in the head to the frame header for the dimensions."""
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            i += 1
            continue
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(head[i + 2:i + 4], "big")
        if marker in _SOF:
            height, width = struct.unpack(">HH", head[i + 5:i + 9])
            return Sniffed("image/jpeg", width, height)
        i += 2 + length
    return Sniffed("image/jpeg")


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head[:4096]:
        return False
    try:
        head[:4096].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= 4090  # a multi-byte character cut at the end of the sample
    return True
