"""Where a customer's data lives: one entry per table, how one customer's rows are found,
what an export shows of them and what an erasure does to them.

A new table holding customer data is one more entry in ``HOLDINGS`` (the coverage test
in tests/privacy fails until every table of the schema is listed either here or in
``NOT_PERSONAL``). whatsmeow's tables (the neonize numbers' session store, in a schema of
its own) are erased by ``bot.privacy.whatsmeow``. Entries run in order inside the
erasure's transaction; the parameters every ``where`` may use:

- ``:contacts`` (uuid[]) the contacts erased; ``:conversations`` (uuid[]) theirs;
- ``:numbers`` (text[]) their real phone numbers, ``:keys`` (text[]) every contact key
  (``+52…``, ``sim:+52…``, ``lid:…``);
- ``:targets`` (text[]) audit targets (``conversation:<id>``, ``contact:<id>``).

``owner`` is a SQL expression of the row (before the change) giving the text[] it is
counted under: contact ids, conversation ids, numbers or targets (mapped to the contact).

Analytics keep their counts because the rows analytics count (messages, conversations,
tickets, LLM calls, transcriptions) are anonymised in place, never deleted: their text,
media and identifiers go, their timestamps, kinds, intents and outcomes stay.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HOLDINGS", "NOT_PERSONAL", "Holding"]


@dataclass(frozen=True, slots=True)
class Holding:
    """One table with customer data. ``scrub`` None deletes the rows; else it is the
    ``SET`` list that anonymises them. ``export`` is the JSON of one row (alias ``t``);
    None leaves the table out of exports (transient work, not data)."""

    table: str
    where: str
    owner: str
    scrub: str | None = None
    export: str | None = "to_jsonb(t)"
    order: str = "1"
    prepare: str | None = None  # run first (e.g. link rows to the contact, locking them)


_BY_CONVERSATION = "conversation_id = ANY(:conversations)"
_CONVERSATION_OWNER = "ARRAY[conversation_id::text]"

HOLDINGS: tuple[Holding, ...] = (
    # queued work and event payloads of these conversations: nothing left to do or send
    Holding("inbound_work", _BY_CONVERSATION, _CONVERSATION_OWNER, export=None),
    Holding("webhook_deliveries", _BY_CONVERSATION, _CONVERSATION_OWNER, order="id"),
    Holding("conversation_notes", _BY_CONVERSATION, _CONVERSATION_OWNER, order="created_at"),
    # knowledge suggestions learnt from these conversations (masked questions and replies):
    # a pending suggestion that only they fed goes whole; the others lose these items
    Holding(
        "kb_suggestions",
        "t.status = 'pending' AND EXISTS (SELECT 1 FROM kb_suggestion_items i WHERE "
        "i.suggestion_id = t.id AND i.conversation_id = ANY(:conversations)) AND NOT EXISTS "
        "(SELECT 1 FROM kb_suggestion_items i WHERE i.suggestion_id = t.id AND NOT "
        "i.conversation_id = ANY(:conversations))",
        "ARRAY(SELECT DISTINCT i.conversation_id::text FROM kb_suggestion_items i WHERE "
        "i.suggestion_id = t.id AND i.conversation_id = ANY(:conversations))",
        export=None,
    ),
    Holding("kb_suggestion_items", _BY_CONVERSATION, _CONVERSATION_OWNER, order="id",
            export="to_jsonb(t) - 'question_vec' - 'reply_vec'"),
    Holding("conversation_labels", _BY_CONVERSATION, _CONVERSATION_OWNER, order="label"),
    Holding(
        "messages", _BY_CONVERSATION, _CONVERSATION_OWNER, order="seq",
        scrub="text = NULL, transcript = NULL, media = NULL, raw = NULL, error = NULL, "
        "provider_message_id = NULL, status = CASE WHEN status = 'received' THEN 'processed' "
        "WHEN status IN ('pending', 'sending') THEN 'cancelled' ELSE status END",
    ),
    Holding(
        "handoff_tickets", _BY_CONVERSATION, _CONVERSATION_OWNER, order="opened_at",
        # a reason code (no_answer, customer_request…) stays for the analytics; anything
        # else could be words about the customer
        scrub="reason = CASE WHEN reason ~ '^[a-z_]{1,40}$' THEN reason END, "
        "csat_open = false, closed_at = COALESCE(closed_at, now()), "
        "outcome = COALESCE(outcome, 'erased')",
    ),
    Holding(
        "llm_calls", _BY_CONVERSATION, _CONVERSATION_OWNER, order="id",
        # analytics count attempts per provider/model/outcome: only their error text goes
        scrub="error = NULL, attempts = CASE WHEN jsonb_typeof(attempts) = 'array' THEN "
        "(SELECT jsonb_agg(CASE WHEN jsonb_typeof(a) = 'object' THEN a - 'error' "
        "ELSE 'null'::jsonb END) FROM jsonb_array_elements(attempts) a) END",
    ),
    Holding("transcriptions", _BY_CONVERSATION, _CONVERSATION_OWNER, order="id",
            scrub="error = NULL"),
    Holding(
        # the cartera's number and fields, whatever channel the campaign used
        "campaign_recipients", "contact_id = ANY(:contacts) OR phone_e164 = ANY(:numbers)",
        "ARRAY[CASE WHEN phone_e164 = ANY(:numbers) THEN phone_e164 ELSE contact_id::text END]",
        order="campaign_id, position",
        # locked before the contacts: the campaign scheduler locks a recipient, then its
        # contact, so this order makes either wait for the other instead of deadlocking
        prepare="SELECT 1 FROM campaign_recipients WHERE contact_id = ANY(:contacts) "
        "OR phone_e164 = ANY(:numbers) ORDER BY id FOR UPDATE",
        scrub="phone_e164 = 'erased-' || left(replace(id::text, '-', ''), 13), name = NULL, "
        "fields = '{}'::jsonb, status = CASE WHEN status = 'pending' THEN 'cancelled' "
        "ELSE status END, reason = CASE WHEN status = 'pending' THEN 'erased' ELSE reason END",
    ),
    Holding("contact_list_entries", "phone_e164 = ANY(:numbers)", "ARRAY[phone_e164::text]",
            order="list_id, row_number"),
    Holding(
        "contact_lists",
        "jsonb_typeof(report) = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements(report)"
        " e WHERE e->>'phone' = ANY(:numbers))",
        "ARRAY(SELECT DISTINCT e->>'phone' FROM jsonb_array_elements(report) e "
        "WHERE e->>'phone' = ANY(:numbers))",
        # the upload report of a list: only this customer's rows, never the others'
        export="jsonb_build_object('list_id', id, 'name', name, 'rows', (SELECT jsonb_agg(e) "
        "FROM jsonb_array_elements(report) e WHERE e->>'phone' = ANY(:numbers)))",
        scrub="report = (SELECT jsonb_agg(CASE WHEN e->>'phone' = ANY(:numbers) THEN "
        "e || '{\"phone\": \"(erased)\"}'::jsonb ELSE e END ORDER BY o) "
        "FROM jsonb_array_elements(report) WITH ORDINALITY x(e, o))",
    ),
    # what staff did to these conversations stays (who, what, when), not what it held
    Holding("audit_log", "target = ANY(:targets)", "ARRAY[target::text]", order="id",
            scrub="details = '{}'::jsonb"),
    # follow-up sequences: the per-step figures count sends and enrollments, so the rows
    # stay without the person (a step written for a task may quote them: its text goes);
    # an active enrollment stops, so no later step is queued for an erased customer
    Holding("sequence_sends", _BY_CONVERSATION, _CONVERSATION_OWNER, order="created_at, step",
            scrub="text = NULL"),
    Holding(
        "sequence_enrollments", "contact_id = ANY(:contacts) OR conversation_id = "
        "ANY(:conversations)", "ARRAY[contact_id::text]", order="enrolled_at",
        # locked before the contacts, like the sequence ticker does (enrollment, then contact)
        prepare="SELECT 1 FROM sequence_enrollments WHERE contact_id = ANY(:contacts) "
        "OR conversation_id = ANY(:conversations) ORDER BY id FOR UPDATE",
        scrub="phone_e164 = 'erased-' || left(replace(id::text, '-', ''), 13), name = NULL, "
        "fields = '{}'::jsonb, state = CASE WHEN state = 'active' THEN 'stopped' ELSE state "
        "END, stop_reason = CASE WHEN state = 'active' THEN 'erased' ELSE stop_reason END, "
        "paused_reason = NULL, due_at = NULL, finished_at = COALESCE(finished_at, now())",
    ),
    # the blocked-contact detector's watch of these conversations (message ids as evidence)
    Holding("contact_blocks", "contact_id = ANY(:contacts) OR conversation_id = "
            "ANY(:conversations)", "ARRAY[contact_id::text]", order="conversation_id"),
    Holding(
        "conversations", "contact_id = ANY(:contacts)", "ARRAY[contact_id::text]",
        order="created_at",
        # closed for good (frees the queue and the agent); owner_reason stays: analytics
        scrub="owner = 'closed', assigned_agent_id = NULL, erased_at = now()",
    ),
    Holding(
        "contacts", "id = ANY(:contacts)", "ARRAY[id::text]", order="created_at",
        scrub="phone_e164 = NULL, wa_lid = NULL, name = NULL, erased_at = now()",
    ),
)

# Tables that hold no customer data (staff, settings, the knowledge base, queues, logs
# of this feature that keep only hashes and ids).
NOT_PERSONAL: frozenset[str] = frozenset({
    "alembic_version", "users", "auth_tokens", "api_keys", "teams", "team_members",
    "agent_presence", "canned_responses", "campaigns", "webhooks", "whatsapp_numbers",
    "llm_chain_configs", "kb_articles", "kb_chunks", "kb_embedding_staging",
    "kb_chunk_vectors", "kb_lexicon", "sequences", "sequence_intent_cursor", "delivery_health",
    "kb_intent_examples", "kb_products", "kb_state", "kb_versions",
    # the inbox's settings and an agent's read marks (a message position, no text)
    "business_schedule", "conversation_reads", "label_colors",
    "procrastinate_jobs", "procrastinate_events", "procrastinate_periodic_defers",
    "procrastinate_workers", "privacy_salt", "privacy_optouts", "privacy_erasures",
    "privacy_retention", "kb_harvested_tickets",
})
