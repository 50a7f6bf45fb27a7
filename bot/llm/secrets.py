"""Provider keys at rest: Fernet-encrypted with a key derived from ``Settings.secret_key``.

Stored values look like ``fernet:<token>``; litellm's ``os.environ/NAME``
references are not secrets and are kept as written. The admin page only ever
sees masked values (``••••abcd``); a masked value sent back means "keep it".
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.errors import LLMConfigError
from bot.llm.config import SECRET_PARAMS, ChainConfig, parse_chain_config

PREFIX = "fernet:"
ENV_REF = "os.environ/"
MASK = "••••"


class SecretBox:
    """Encrypts and decrypts provider secrets."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"atiende", info=b"llm-provider-secrets"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, value: str) -> str:
        if value.startswith((PREFIX, ENV_REF)):
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value.removeprefix(PREFIX).encode()).decode()
        except InvalidToken as exc:
            raise LLMConfigError(
                "a stored provider key cannot be decrypted (ATIENDE_SECRET_KEY changed?)"
            ) from exc


def mask(value: str) -> str:
    """What the admin sees of a secret: env references in full, keys as ``••••abcd``."""
    if value.startswith(ENV_REF):
        return value
    return MASK + (value[-4:] if len(value) >= 12 else "")


def _map_secrets(document: dict[str, Any], fn: Any) -> dict[str, Any]:
    result = dict(document)
    model_list = []
    for raw in document.get("model_list", []):
        entry = dict(raw)
        params = dict(entry.get("litellm_params") or {})
        for key, value in params.items():
            if key in SECRET_PARAMS and isinstance(value, str) and value:
                params[key] = fn(value)
        entry["litellm_params"] = params
        model_list.append(entry)
    result["model_list"] = model_list
    return result


def seal_config(config: ChainConfig, box: SecretBox) -> dict[str, Any]:
    """The document to store: every literal secret encrypted."""
    return _map_secrets(config.to_document(), box.seal)


def open_config(document: dict[str, Any], box: SecretBox) -> ChainConfig:
    """A stored document back to a usable config (secrets in clear, in memory only)."""
    return parse_chain_config(_map_secrets(document, box.open))


def masked_document(config: ChainConfig) -> dict[str, Any]:
    return _map_secrets(config.to_document(), mask)


def unmask(edited: dict[str, Any], current: ChainConfig | None) -> dict[str, Any]:
    """Replace masked values an admin sent back by the secrets they stand for."""
    known: dict[str, list[str]] = {}
    for _, _, value in current.secrets() if current is not None else ():
        known.setdefault(mask(value), []).append(value)

    def restore(value: str) -> str:
        if not value.startswith(MASK):
            return value
        candidates = set(known.get(value, []))
        if len(candidates) != 1:
            raise LLMConfigError(
                f"{value}: unknown or ambiguous masked key; paste the full key to change it"
            )
        return candidates.pop()

    return _map_secrets(edited, restore)
