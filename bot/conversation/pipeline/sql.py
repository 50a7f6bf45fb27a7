"""The pipeline's two raw statements: the batch read and the commit of plain text runs.

Both take arrays (one element per conversation, message or reply) so a whole batch
costs one round trip each; they run on the autocommit pool (psycopg parameters).
"""

from __future__ import annotations

from handoff.service import close_csat_sql

# The next unprocessed messages of several conversations (at most ``limit`` each, in
# order) with each conversation's state, in one round trip.
PENDING_SQL = """
SELECT m.id, m.conversation_id, m.kind, m.text, m.transcript, m.attempts, m.media,
       c.owner, ct.name, c.context_started_at, c.last_inbound_at, c.channel,
       extract(epoch FROM clock_timestamp() - m.created_at) AS waited
FROM unnest(%(ids)s::uuid[]) AS q(id)
JOIN conversations c ON c.id = q.id
JOIN contacts ct ON ct.id = c.contact_id
CROSS JOIN LATERAL (
    SELECT * FROM messages m
    WHERE m.conversation_id = q.id AND m.direction = 'in' AND m.status = 'received'
    ORDER BY m.seq
    LIMIT %(limit)s
) m
ORDER BY m.conversation_id, m.seq
"""

# The commit of the runs of several conversations, in one statement (atomic on its own;
# see Runs.commit). The latency of each message marked (accepted -> processed,
# both stamped by PostgreSQL) comes back for the metrics. A run's messages are
# committed at once; their processed_at stamps (a microsecond apart) keep the order in
# which they were decided.
COMMIT_RUNS_SQL = f"""
WITH runs AS (
    SELECT * FROM unnest(%(run_ids)s::uuid[], %(run_fresh)s::bool[], %(run_intent)s::text[])
        AS r(id, fresh, last_intent)
),
conversation AS (
    -- NO KEY UPDATE: serialized with a takeover, while a new message's foreign key
    -- check (KEY SHARE) on the same conversation does not wait for this statement
    SELECT id, channel FROM conversations
    WHERE id IN (SELECT id FROM runs) AND owner = 'bot'
    ORDER BY id
    FOR NO KEY UPDATE
),
marked AS (
    UPDATE messages AS m
    SET status = 'processed', error = NULL,
        processed_at = statement_timestamp() + (v.n - 1) * interval '1 microsecond',
        intent = v.intent, confidence = v.confidence, escalated = false,
        sources = v.sources::jsonb
    FROM unnest(%(ids)s::uuid[], %(intents)s::text[], %(confidences)s::float8[],
                %(sources)s::text[]) WITH ORDINALITY AS v(id, intent, confidence, sources, n),
         conversation
    WHERE m.id = v.id AND m.status = 'received' AND m.conversation_id = conversation.id
    RETURNING m.id, m.conversation_id,
              extract(epoch FROM m.processed_at - m.created_at) AS latency
),
replies AS (
    INSERT INTO messages (id, conversation_id, direction, author, kind, channel, text,
                          status, in_reply_to, reply_seq)
    SELECT r.id, conversation.id, 'out', 'bot', 'text', conversation.channel, r.text,
           'pending', r.in_reply_to, r.reply_seq
    FROM unnest(%(reply_ids)s::uuid[], %(reply_to)s::uuid[], %(reply_seq)s::int[],
                %(reply_text)s::text[]) WITH ORDINALITY AS r(id, in_reply_to, reply_seq, text, n)
    JOIN marked ON marked.id = r.in_reply_to
    JOIN conversation ON conversation.id = marked.conversation_id
    ORDER BY r.n  -- the outbox sends in seq order: replies keep the messages' order
),
closed_csat AS (
    {close_csat_sql("SELECT conversation_id FROM marked")}
),
moved AS (
    UPDATE conversations AS c SET
        last_inbound_at = %(now)s, last_message_at = %(now)s, last_intent = runs.last_intent,
        context_started_at = CASE WHEN runs.fresh THEN %(now)s ELSE c.context_started_at END
    FROM runs
    WHERE c.id = runs.id AND c.id IN (SELECT conversation_id FROM marked)
)
SELECT id, latency FROM marked
"""
