"""Handoff errors; each carries a short machine ``code`` and a reason safe to show.

    HandoffError
    ├── ConversationNotFound   (404)
    ├── NotAllowed             (403) not your team / not your conversation
    ├── Conflict               (409) the conversation's state refuses the action
    └── InvalidInput           (422)
"""

from __future__ import annotations


class HandoffError(Exception):
    status = 400

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ConversationNotFound(HandoffError):
    status = 404

    def __init__(self, reason: str = "conversation not found") -> None:
        super().__init__("not_found", reason)


class NotAllowed(HandoffError):
    status = 403


class Conflict(HandoffError):
    status = 409


class InvalidInput(HandoffError):
    status = 422
