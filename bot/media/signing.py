"""HMAC-signed, expiring media links served by our own API (the local backend's URLs)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import quote, urlencode

MEDIA_ROUTE = "/api/v1/media/signed"


class UrlSigner:
    """Signs ``key`` + expiry with a key derived from ``Settings.secret_key``."""

    def __init__(self, secret: str, *, now: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"atiende-media-url:" + secret.encode()).digest()
        self._now = now

    def _sign(self, key: str, expires: int) -> str:
        return hmac.new(self._key, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, key: str, *, expires_in: int) -> str:
        expires = int(self._now()) + expires_in
        query = urlencode({"expires": expires, "sig": self._sign(key, expires)})
        return f"{MEDIA_ROUTE}/{quote(key)}?{query}"

    def verify(self, key: str, expires: int, signature: str) -> bool:
        if expires < self._now():
            return False
        return hmac.compare_digest(self._sign(key, expires), signature)
