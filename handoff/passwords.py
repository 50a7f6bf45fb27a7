"""Password hashing (argon2id, the only importer of argon2) and the strength rule (zxcvbn,
the only importer of zxcvbn): at least 8 characters, not on the common-password list, and
a zxcvbn score of at least 3 (no dictionary words with digits tacked on, no names of the
user)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_PASSWORD = 8
MIN_SCORE = 3
MAX_CHECKED = 100  # zxcvbn is slow on very long input; a long password is strong anyway


class Passwords:
    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        # verifying against this when an account does not exist costs what a real check
        # costs, so the login's timing does not tell which e-mails have an account
        self._decoy = self._hasher.hash("no account has this password")
        self._common = frozenset(FREQUENCY_LISTS["passwords"])

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            ok = self._hasher.verify(password_hash or self._decoy, password)
            return ok and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def weakness(self, password: str, *, user_inputs: tuple[str, ...] = ()) -> str | None:
        """Why ``password`` is refused, or None when it is strong enough."""
        if len(password) < MIN_PASSWORD:
            return f"password must have at least {MIN_PASSWORD} characters"
        if password.lower() in self._common:
            return "this password is on the list of common passwords"
        whole = [value.strip().lower() for value in user_inputs if value.strip()]
        if password.lower() in whole:
            return "the password must not be your e-mail or name"
        inputs = whole + [part for value in whole
                          for part in value.replace("@", " ").replace(".", " ").split()]
        result = zxcvbn(password[:MAX_CHECKED], user_inputs=inputs)
        if result["score"] < MIN_SCORE:
            hint = result["feedback"].get("warning") or "add more unrelated words"
            return f"password too easy to guess ({hint})"
        return None
