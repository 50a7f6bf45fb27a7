"""Atiende's own exceptions. Vendor errors are translated into these at the adapter.

    AtiendeError
    ├── ServiceStartError          an embedded service (PostgreSQL, Redis) did not start
    ├── InvalidPhoneNumber         a phone number that cannot be normalized to E.164
    ├── InvalidMessage             an inbound message that breaks our rules (empty, too big)
    ├── ChannelError               a channel could not send (``channel``, ``retry_after``)
    │   ├── ChannelRateLimited     slow down; ``retry_after`` seconds when the provider says
    │   ├── ChannelUnavailable     not connected here right now (reconnecting, banned, other node)
    │   └── ChannelRefused         permanent: retrying the same message cannot succeed
    │       └── OutsideServiceWindow   Cloud API free text after the 24-hour window
    ├── SessionStoreError          whatsmeow's session store cannot be used (``raw``: its words)
    ├── InvalidWebhook             a webhook body that is not what the provider sends (400)
    ├── NotFound                   a conversation or message id that does not exist
    │   └── MediaNotFound          no stored media under that key
    ├── CampaignRejected           a contact list or campaign that breaks the rules (``details``)
    ├── CampaignStateError         start/pause/resume/cancel not allowed in the current state
    ├── SequenceRejected           a sequence or enrollment that breaks the rules (``details``)
    ├── SequenceConflict           already enrolled, opted out, probably blocked, in use (409)
    ├── MediaRejected              media refused before it was stored (``reason``, ``kind``)
    ├── MediaStoreError            the media backend (folder, S3) failed (``backend``)
    ├── TranscriptionError         a voice note could not be turned into text
    │   ├── AudioUnusable          the audio itself is bad: corrupt, empty, too long (``reason``)
    │   └── TranscriberUnavailable a backend is not installed or its provider failed
    ├── QueueUnavailable           the job queue (PostgreSQL) could not take or move a job
    ├── WebhookTargetRefused       a webhook URL we will not call (scheme, private address)
    ├── WebhookDeliveryFailed      one webhook delivery attempt failed (retried with backoff)
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


class ChannelUnavailable(ChannelError):
    """The sender is not connected on this node right now; the message waits, uncounted."""


class ChannelRefused(ChannelError):
    """The provider refused this message for good (bad recipient, policy, window)."""

    def __init__(
        self, message: str, *, channel: str, code: int | str | None = None
    ) -> None:
        super().__init__(message, channel=channel)
        self.code = code


class OutsideServiceWindow(ChannelRefused):
    """Free text to a customer who has not written in 24 hours (send a template instead)."""


class SessionStoreError(AtiendeError):
    """whatsmeow's session store (PostgreSQL) cannot be used; the message says why in an
    operator's words, ``raw`` keeps the driver's own text."""

    def __init__(self, message: str, *, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class InvalidWebhook(AtiendeError):
    pass


class NotFound(AtiendeError):
    pass


class MediaNotFound(NotFound):
    pass


class MediaRejected(AtiendeError):
    """Media refused before it was stored: too big, wrong or disguised type."""

    def __init__(self, reason: str, *, kind: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class MediaStoreError(AtiendeError):
    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class TranscriptionError(AtiendeError):
    pass


class AudioUnusable(TranscriptionError):
    """The audio cannot be transcribed whatever the backend: corrupt, empty, too long."""

    def __init__(self, reason: str, *, code: str = "corrupt") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # corrupt | empty | too_long


class TranscriberUnavailable(TranscriptionError):
    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class CampaignRejected(AtiendeError):
    """A contact list or campaign that breaks the rules (bad CSV, unknown variable…)."""

    def __init__(self, reason: str, *, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or []


class CampaignStateError(AtiendeError):
    """A campaign action that its current state does not allow (resume a cancelled one…)."""


class SequenceRejected(AtiendeError):
    """A sequence or an enrollment that breaks the rules (no steps, unknown variable…)."""

    def __init__(self, reason: str, *, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or []


class SequenceConflict(AtiendeError):
    """The contact or sequence's state refuses the action (``code``: already_enrolled,
    opted_out, probably_blocked, active_enrollments, name_taken, not_active, erased)."""

    def __init__(self, code: str, reason: str, **extra: object) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.extra = extra


class QueueUnavailable(AtiendeError):
    """The job queue could not take or move a job (its database did not answer)."""


class LLMConfigError(AtiendeError):
    pass


class LLMError(AtiendeError):
    def __init__(
        self, message: str, *, provider: str | None = None, model: str | None = None
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        # the deployments tried before giving up (adapter's ``Attempt``s; may grow a moment)
        self.attempts: list[object] = []


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


class WebhookTargetRefused(AtiendeError):
    """A webhook URL we will not call (bad scheme, or it resolves to a refused address)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class WebhookDeliveryFailed(AtiendeError):
    """One delivery attempt failed; the job queue retries it with backoff."""
