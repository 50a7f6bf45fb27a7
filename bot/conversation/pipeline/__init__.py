"""The worker's pipeline: one conversation's inbound messages, strictly in order.

For each stored message: decide (only if the bot owns the conversation), then in
one transaction write the replies to the outbox, move the owner if the bot
escalates, and mark the message processed. A retried job finds the message
processed and does nothing, so a reply is never written twice.

What lives where:

- ``batch``: ``Pipeline``, the façade the inbound dispatcher calls; schedules a batch
  of conversations (runs together, the rest drained one by one) and sends the outbox.
- ``runs``: runs of plain text messages, decided in order and committed together.
- ``one_by_one``: one message on its own: transcribe, decide, commit, retry, park.
- ``deciding``: what the bot answers to one message (responder, CSAT, media, voice).
- ``voice``: the transcript of a voice note and the transcription log.
- ``committing``: the single-message commit, its after-commit effects, failed attempts.
- ``state``: the waiting messages and a conversation's state, and their reads.
- ``sql``: the two raw statements (the batch read, the commit of runs).
"""

from bot.conversation.pipeline.batch import Pipeline
from bot.conversation.pipeline.deciding import MEDIA_NEEDS_PERSON
from bot.conversation.pipeline.state import BATCH

__all__ = ["BATCH", "MEDIA_NEEDS_PERSON", "Pipeline"]
