"""Who owns a conversation: one state machine, shared by the bot, the channels and the inbox.

    bot ──escalate──▶ queued ──claim──▶ human ──resolve──▶ bot
     │                  │                 │
     └──takeover────────┴─────────────────┘ (agent starts, or owner types on the phone)
    any ──close──▶ closed ──customer_writes──▶ bot

Conversations owned by ``bot`` get the bot's replies; one waiting in the queue (no
agent has claimed it yet) gets only answers from the knowledge base, with a note that
a person is still coming; ``human`` and ``closed`` never get one.
"""

from __future__ import annotations

import enum


class Owner(enum.StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    HUMAN = "human"
    CLOSED = "closed"


class OwnerEvent(enum.StrEnum):
    ESCALATE = "escalate"  # the bot hands over
    CLAIM = "claim"  # an agent takes a queued conversation
    TAKEOVER = "takeover"  # an agent or the phone's owner writes first
    RESOLVE = "resolve"  # the human is done: back to the bot, fresh context
    RELEASE = "release"  # an agent returns a claimed conversation to the queue
    TIMEOUT = "timeout"  # an idle human conversation goes back to the bot
    CLOSE = "close"
    CUSTOMER_WRITES = "customer_writes"  # a closed conversation reopens


class TransitionRefused(Exception):
    """The event is not allowed from the conversation's current owner."""

    def __init__(self, current: Owner, event: OwnerEvent) -> None:
        super().__init__(f"cannot {event.value} a conversation owned by {current.value}")
        self.current = current
        self.event = event


_TRANSITIONS: dict[tuple[Owner, OwnerEvent], Owner] = {
    (Owner.BOT, OwnerEvent.ESCALATE): Owner.QUEUED,
    (Owner.QUEUED, OwnerEvent.ESCALATE): Owner.QUEUED,
    (Owner.QUEUED, OwnerEvent.CLAIM): Owner.HUMAN,
    (Owner.BOT, OwnerEvent.TAKEOVER): Owner.HUMAN,
    (Owner.QUEUED, OwnerEvent.TAKEOVER): Owner.HUMAN,
    (Owner.HUMAN, OwnerEvent.TAKEOVER): Owner.HUMAN,
    (Owner.CLOSED, OwnerEvent.TAKEOVER): Owner.HUMAN,
    (Owner.HUMAN, OwnerEvent.RESOLVE): Owner.BOT,
    (Owner.QUEUED, OwnerEvent.RESOLVE): Owner.BOT,
    (Owner.HUMAN, OwnerEvent.RELEASE): Owner.QUEUED,
    (Owner.HUMAN, OwnerEvent.TIMEOUT): Owner.BOT,
    (Owner.BOT, OwnerEvent.CLOSE): Owner.CLOSED,
    (Owner.QUEUED, OwnerEvent.CLOSE): Owner.CLOSED,
    (Owner.HUMAN, OwnerEvent.CLOSE): Owner.CLOSED,
    (Owner.CLOSED, OwnerEvent.CUSTOMER_WRITES): Owner.BOT,
}


def next_owner(current: Owner, event: OwnerEvent) -> Owner:
    """Return the owner after ``event``; raise TransitionRefused when not allowed."""
    try:
        return _TRANSITIONS[(current, event)]
    except KeyError:
        raise TransitionRefused(current, event) from None


def bot_may_reply(owner: Owner, *, from_knowledge: bool = False) -> bool:
    """The one rule that keeps the bot from talking over a human: it replies in its own
    conversations, and in a queued one (nobody has claimed it) only ``from_knowledge``
    (an answer the knowledge base holds), never once an agent holds it."""
    return owner is Owner.BOT or (owner is Owner.QUEUED and from_knowledge)
