"""Staff accounts and logins: users, argon2 passwords, opaque expiring tokens.

The same token works as an API bearer token and as the pages' session cookie.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.passwords import Passwords
from handoff.roles import Role
from handoff.tables import AuthToken, User

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AuthError(Exception):
    """Login refused (the message is safe to show)."""


class LoginThrottled(AuthError):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed logins; try again later")
        self.retry_after = retry_after


class UserExists(Exception):
    pass


class UnknownUser(LookupError):
    pass


class InvalidUser(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a logged-in staff member (or an API key acting with a role)."""

    id: uuid.UUID
    email: str
    name: str
    role: Role
    client: str | None = None  # the caller's IP, for the audit log


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime
    principal: Principal


class RateLimiter(Protocol):
    """Counts failures per key in a window."""

    async def blocked(self, key: str, *, limit: int) -> int | None:
        """Seconds to wait when ``key`` has reached ``limit`` events, else None."""
        ...

    async def hit(self, key: str, *, window_seconds: int) -> int:
        """Record one event; return the count in the current window."""
        ...

    async def reset(self, key: str) -> None: ...


class AuthService:
    """Creates users, logs them in, and resolves tokens to principals."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        limiter: RateLimiter,
        clock: Callable[[], datetime],
        token_ttl: timedelta = timedelta(hours=12),
        max_failures: int = 5,
        failure_window_seconds: int = 900,
        idle_timeout: timedelta | None = None,
    ) -> None:
        self._sessions = sessions
        self._limiter = limiter
        self._clock = clock
        self._ttl = token_ttl
        self._max_failures = max_failures
        self._window = failure_window_seconds
        self._idle = idle_timeout
        self._passwords = Passwords()

    async def create_user(self, *, email: str, name: str, role: Role, password: str) -> Principal:
        email = email.strip().lower()
        if not _EMAIL.match(email):
            raise InvalidUser(f"invalid email: {email!r}")
        if not name.strip():
            raise InvalidUser("name must not be empty")
        self.require_strong(password, email, name)
        user = User(
            id=uuid.uuid4(), email=email, name=name.strip(), role=role.value,
            password_hash=self._passwords.hash(password),
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(user)
        except IntegrityError as exc:
            raise UserExists(f"a user with email {email} already exists") from exc
        return Principal(user.id, user.email, user.name, role)

    async def login(self, email: str, password: str, *, client: str) -> IssuedToken:
        """Check the password (failures rate-limited per email and client); issue a token."""
        email = email.strip().lower()
        key = f"login:{email}:{client}"
        wait = await self._limiter.blocked(key, limit=self._max_failures)
        if wait is not None:
            raise LoginThrottled(wait)
        async with self._sessions() as session:
            user = (
                await session.execute(select(User).where(User.email == email, User.active))
            ).scalar_one_or_none()
        # an unknown e-mail costs one argon2 check too: timing tells nothing
        if not self._passwords.verify(user.password_hash if user else None, password) or (
            user is None
        ):
            await self._limiter.hit(key, window_seconds=self._window)
            raise AuthError("wrong email or password")
        await self._limiter.reset(key)
        return await self._issue(user)

    async def _issue(self, user: User) -> IssuedToken:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + self._ttl
        async with self._sessions() as session, session.begin():
            # A password change (or deactivation) that committed after the password was
            # checked wins: the row is locked and re-read, so no token outlives it.
            current = (
                await session.execute(
                    select(User.password_hash, User.active)
                    .where(User.id == user.id).with_for_update(read=True)
                )
            ).one_or_none()
            if current is None or not current.active or current.password_hash != user.password_hash:
                raise AuthError("wrong email or password")
            session.add(AuthToken(token_hash=_digest(token), user_id=user.id, expires_at=expires,
                                  created_at=now, last_used_at=now))
            await session.execute(update(User).where(User.id == user.id).values(last_login_at=now))
        return IssuedToken(token, expires, _principal(user))

    async def change_password(self, user_id: uuid.UUID, *, current: str, new: str) -> int:
        """The user's own change: checks ``current``; every session of theirs is revoked.
        Returns how many sessions were revoked."""
        async with self._sessions() as session, session.begin():
            user = await self._locked_user(session, user_id)
            if not self._passwords.verify(user.password_hash, current):
                raise AuthError("the current password is wrong")
            return await self._set_password(session, user, new)

    async def reset_password(self, user_id: uuid.UUID, *, new: str) -> int:
        """An admin sets someone's password; every session of theirs is revoked."""
        async with self._sessions() as session, session.begin():
            user = await self._locked_user(session, user_id)
            return await self._set_password(session, user, new)

    def require_strong(self, password: str, *user_inputs: str) -> None:
        """InvalidUser with the reason when ``password`` is too weak (handoff.passwords)."""
        reason = self._passwords.weakness(password, user_inputs=user_inputs)
        if reason is not None:
            raise InvalidUser(reason)

    async def revoke_sessions(self, user_id: uuid.UUID) -> int:
        """Log a user out everywhere (also when deactivated): every token issued so far
        stops working and stays dead, whatever happens to the account later."""
        async with self._sessions() as session, session.begin():
            return await self._revoke_all(session, user_id)

    async def _locked_user(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        user = (
            await session.execute(select(User).where(User.id == user_id).with_for_update())
        ).scalar_one_or_none()
        if user is None:
            raise UnknownUser(f"no user {user_id}")
        return user

    async def _set_password(self, session: AsyncSession, user: User, new: str) -> int:
        self.require_strong(new, user.email, user.name)
        await session.execute(
            update(User).where(User.id == user.id)
            .values(password_hash=self._passwords.hash(new))
        )
        return await self._revoke_all(session, user.id)

    async def _revoke_all(self, session: AsyncSession, user_id: uuid.UUID) -> int:
        await session.execute(
            update(User).where(User.id == user_id).values(sessions_ended_at=self._clock())
        )
        revoked = await session.execute(
            update(AuthToken)
            .where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None))
            .values(revoked_at=self._clock())
            .returning(AuthToken.token_hash)
        )
        return len(revoked.all())

    async def resolve(self, token: str) -> Principal | None:
        """The principal behind a token, or None if unknown, expired, revoked or inactive."""
        if not token or len(token) > 200:
            return None
        now = self._clock()
        conditions = [
            AuthToken.token_hash == _digest(token),
            AuthToken.revoked_at.is_(None),
            AuthToken.expires_at > now,
            User.active,
            or_(User.sessions_ended_at.is_(None), AuthToken.created_at > User.sessions_ended_at),
        ]
        if self._idle is not None:
            conditions.append(AuthToken.last_used_at > now - self._idle)
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(User, AuthToken.last_used_at)
                    .join(AuthToken, AuthToken.user_id == User.id)
                    .where(*conditions)
                )
            ).one_or_none()
            if row is None:
                return None
            user, last_used = row
            if now - last_used > _TOUCH_EVERY:  # one write a minute per session, at most
                await session.execute(
                    update(AuthToken).where(AuthToken.token_hash == _digest(token))
                    .values(last_used_at=now)
                )
                await session.commit()
        return _principal(user)

    async def logout(self, token: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(AuthToken)
                .where(AuthToken.token_hash == _digest(token))
                .values(revoked_at=self._clock())
            )


_TOUCH_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _principal(user: User) -> Principal:
    return Principal(user.id, user.email, user.name, Role(user.role))
