"""Phone numbers to E.164 with ``phonenumbers``; Mexico's +521 and +52 are one number.

Until 2019 Mexican mobiles were dialled from abroad as +52 1 XXXXXXXXXX; WhatsApp
still reports many of them with the ``1``. Both forms are normalized to +52XXXXXXXXXX.
"""

from __future__ import annotations

import re

import phonenumbers

from bot.errors import InvalidPhoneNumber

_WHATSAPP_SUFFIX = re.compile(r"@(s\.whatsapp\.net|c\.us)$")
_MX_LEGACY_MOBILE = re.compile(r"^\+521(\d{10})$")


def normalize_phone(raw: str, default_region: str = "MX") -> str:
    """Return ``raw`` as E.164 (``+52…``); raise InvalidPhoneNumber otherwise."""
    text = _WHATSAPP_SUFFIX.sub("", raw.strip())
    text = text.split(":", 1)[0]  # whatsmeow device suffix "5215512345678:12"
    if not text:
        raise InvalidPhoneNumber(raw, "empty")
    digits = re.sub(r"[^\d+]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+") and len(digits) > 10:
        digits = "+" + digits  # WhatsApp ids carry the country code without '+'
    legacy = _MX_LEGACY_MOBILE.match(digits)
    if legacy:
        digits = "+52" + legacy.group(1)
    try:
        parsed = phonenumbers.parse(digits, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(raw, str(exc)) from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhoneNumber(raw, "not a possible number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    legacy = _MX_LEGACY_MOBILE.match(e164)
    return "+52" + legacy.group(1) if legacy else e164
