"""The owner state machine: every (owner, event) pair is either allowed or refused."""

from __future__ import annotations

import pytest

from handoff.ownership import Owner, OwnerEvent, TransitionRefused, bot_may_reply, next_owner

B, Q, H, C = Owner.BOT, Owner.QUEUED, Owner.HUMAN, Owner.CLOSED
E = OwnerEvent
ALLOWED = {
    (B, E.ESCALATE): Q, (Q, E.ESCALATE): Q, (Q, E.CLAIM): H,
    (B, E.TAKEOVER): H, (Q, E.TAKEOVER): H, (H, E.TAKEOVER): H, (C, E.TAKEOVER): H,
    (H, E.RESOLVE): B, (Q, E.RESOLVE): B, (H, E.RELEASE): Q, (H, E.TIMEOUT): B,
    (B, E.CLOSE): C, (Q, E.CLOSE): C, (H, E.CLOSE): C, (C, E.CUSTOMER_WRITES): B,
}


@pytest.mark.parametrize("owner", list(Owner))
@pytest.mark.parametrize("event", list(OwnerEvent))
def test_every_transition(owner: Owner, event: OwnerEvent) -> None:
    if (owner, event) in ALLOWED:
        assert next_owner(owner, event) is ALLOWED[(owner, event)]
    else:
        with pytest.raises(TransitionRefused) as refused:
            next_owner(owner, event)
        assert refused.value.current is owner and owner.value in str(refused.value)


def test_only_the_bot_owner_lets_the_bot_reply() -> None:
    assert [o for o in Owner if bot_may_reply(o)] == [Owner.BOT]
    # a claimed conversation cannot be claimed again, nor handed back without resolve/timeout
    for event in (E.CLAIM, E.ESCALATE, E.CUSTOMER_WRITES):
        with pytest.raises(TransitionRefused):
            next_owner(H, event)
