"""Atiende's own exceptions. Vendor errors are translated into these at the adapter.

    AtiendeError
    ├── ServiceStartError          an embedded service (PostgreSQL, Redis) did not start
    ├── InvalidPhoneNumber         a phone number that cannot be normalized to E.164
    ├── InvalidMessage             an inbound message that breaks our rules (empty, too big)
    ├── ChannelError               a channel could not send (``channel``, ``retry_after``)
    │   └── ChannelRateLimited
    ├── NotFound                   a conversation or message id that does not exist
    ├── LLMConfigError             the LLM chain configuration is invalid (``ATIENDE_LLM_CONFIG``)
    └── LLMError                   an LLM chain call gave no usable answer (``provider``, ``model``)
        ├── LLMUnavailable         not configured, or no provider reachable / all cooling down
        ├── LLMTimeout             a provider timeout or the message's time budget ran out
        ├── LLMRateLimited         the provider said 429 (``retry_after``)
        └── LLMBadResponse         an answer that is not valid (malformed, empty, refused)
"""

from __future__ import annotations


class AtiendeError(Exception):
    """Base of every error Atiende raises on purpose."""


class ServiceStartError(AtiendeError):
    pass


class InvalidPhoneNumber(AtiendeError):
    def __init__(self, raw: str, reason: str = "not a valid phone number") -> None:
        super().__init__(f"{raw!r}: {reason}")
        self.raw = raw
        self.reason = reason


class InvalidMessage(AtiendeError):
    pass


class ChannelError(AtiendeError):
    def __init__(self, message: str, *, channel: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.channel = channel
        self.retry_after = retry_after


class ChannelRateLimited(ChannelError):
    pass


class NotFound(AtiendeError):
    pass


class LLMConfigError(AtiendeError):
    pass


class LLMError(AtiendeError):
    def __init__(
        self, message: str, *, provider: str | None = None, model: str | None = None
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model


class LLMUnavailable(LLMError):
    pass


class LLMTimeout(LLMError):
    pass


class LLMRateLimited(LLMError):
    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model)
        self.retry_after = retry_after


class LLMBadResponse(LLMError):
    pass
