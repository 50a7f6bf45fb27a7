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


# what decides where a deployment's key is sent: changing any of these needs the key again
DESTINATION_PARAMS = ("model", "api_base", "base_url", "custom_llm_provider", "api_version",
                      "aws_region_name", "vertex_project", "vertex_location", "organization")


def destination(model_name: str, params: dict[str, Any]) -> tuple[Any, ...]:
    return (model_name, *(str(params.get(k) or "") for k in DESTINATION_PARAMS))


def unmask(edited: dict[str, Any], current: ChainConfig | None) -> dict[str, Any]:
    """Replace masked values an admin sent back by the secrets they stand for.

    A masked key (or an ``os.environ/`` reference) is kept only for a deployment whose
    destination (model name, model, provider, api_base, ...) is unchanged: a key never
    follows its entry to a new URL or provider. Any other ``os.environ/`` reference is
    refused: those are read from the config file on disk, never typed in the admin API
    (litellm would send the named server secret wherever the entry points)."""
    known: dict[tuple[Any, ...], dict[str, set[str]]] = {}
    for deployment in current.model_list if current is not None else ():
        params = deployment.litellm_params
        slot = known.setdefault(destination(deployment.model_name, params), {})
        for key, value in params.items():
            if isinstance(value, str) and (key in SECRET_PARAMS or value.startswith(ENV_REF)):
                slot.setdefault(f"{key}={mask(value)}", set()).add(value)
    result = dict(edited)
    model_list = []
    for raw in edited.get("model_list", []):
        entry = dict(raw)
        name = str(entry.get("model_name", ""))
        params = dict(entry.get("litellm_params") or {})
        slot = known.get(destination(name, params), {})
        for key, value in params.items():
            if isinstance(value, str) and (value.startswith(MASK) or value.startswith(ENV_REF)):
                params[key] = _restore(name, key, value, slot)
        entry["litellm_params"] = params
        model_list.append(entry)
    result["model_list"] = model_list
    _refuse_env_refs({k: v for k, v in result.items() if k != "model_list"},
                     current.to_document() if current is not None else {})
    return result


def _restore(name: str, key: str, value: str, slot: dict[str, set[str]]) -> str:
    candidates = set(slot.get(f"{key}={value}", set()))  # masked as sent, or the env ref
    if value.startswith(ENV_REF) and value not in candidates:
        raise LLMConfigError(
            f"{name}: {key}: os.environ/ references are accepted only from the config file "
            "on disk (ATIENDE_LLM_CONFIG); paste the key itself")
    if len(candidates) != 1:
        raise LLMConfigError(
            f"{name}: {key}: enter the key again (the model, provider or api_base changed, "
            "or the masked key is unknown)")
    return candidates.pop()


def _refuse_env_refs(document: Any, current: Any) -> None:
    """os.environ/ outside model_list: only where the current document has the same."""
    if isinstance(document, dict):
        for key, value in document.items():
            _refuse_env_refs(value, current.get(key) if isinstance(current, dict) else None)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            here = current[index] if isinstance(current, list) and index < len(current) else None
            _refuse_env_refs(value, here)
    elif isinstance(document, str) and document.startswith(ENV_REF) and document != current:
        raise LLMConfigError("os.environ/ references are accepted only from the config file "
                             "on disk (ATIENDE_LLM_CONFIG)")
