"""Prometheus metrics, held in one registry built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self._message_path(self.registry)
        self._channels(self.registry)
        self._follow_ups(self.registry)

    def _follow_ups(self, r: CollectorRegistry) -> None:
        """Sequence ticks and blocked-contact marks."""
        self.sequence_steps = Counter(
            "atiende_sequence_steps_total",
            "Due sequence steps by what the tick did: send, by_hand, wait, stop", ["action"],
            registry=r,
        )
        self.sequence_batch_seconds = Histogram(
            "atiende_sequence_batch_seconds", "One find-and-queue transaction of the tick",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5), registry=r,
        )
        self.blocked_marks = Counter(
            "atiende_blocked_contacts_marked_total", "Conversations marked probably blocked",
            registry=r,
        )

    def _message_path(self, r: CollectorRegistry) -> None:
        """Inbound, processing and the work lists."""
        self.messages_in = Counter(
            "atiende_messages_in_total", "Inbound messages accepted", ["channel", "kind"],
            registry=r,
        )
        self.duplicates = Counter(
            "atiende_inbound_duplicates_total", "Inbound deliveries already stored", ["channel"],
            registry=r,
        )
        self.messages_out = Counter(
            "atiende_messages_out_total", "Outbound messages by final send outcome",
            ["channel", "outcome"], registry=r,
        )
        self.processing_seconds = Histogram(
            "atiende_processing_seconds", "Inbound accepted to reply in the outbox",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r,
        )
        self.batch_conversations = Histogram(
            "atiende_worker_batch_conversations",
            "Conversations drained together by one inbound batch (grows with the backlog)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r,
        )
        self.intents = Counter("atiende_intents_total", "Routed intents", ["intent"], registry=r)
        self.escalations = Counter(
            "atiende_escalations_total", "Conversations handed to humans", ["reason"], registry=r
        )
        self.silenced = Counter(
            "atiende_bot_silenced_total", "Inbound messages the bot did not answer (not bot-owned)",
            ["owner"], registry=r,
        )
        self.failures = Counter(
            "atiende_processing_failures_total", "Processing attempts that raised", registry=r
        )
        self.parked = Counter(
            "atiende_messages_parked_total", "Messages parked after exhausting retries", registry=r
        )
        self.queue_depth = Gauge(
            "atiende_queue_depth",
            "Waiting work by status: todo, doing, failed (jobs), retrying (conversations)",
            ["status"], registry=r
        )
        self.outbox_pending = Gauge(
            "atiende_outbox_pending", "Outbound messages not yet sent", registry=r
        )
        self.inbound_pending = Gauge(
            "atiende_inbound_pending", "Inbound messages not yet processed", registry=r
        )

    def _channels(self, r: CollectorRegistry) -> None:
        """Sends, pacing and the WhatsApp numbers."""
        self.pacing_waits = Counter(
            "atiende_pacing_waits_total", "Sends postponed by pacing, by reason",
            ["channel", "reason"], registry=r,
        )
        self.number_health = Gauge(
            "atiende_whatsapp_number_up",
            "1 when a WhatsApp number is connected on this node, 0 otherwise",
            ["account", "state"], registry=r,
        )
        self.number_restarts = Counter(
            "atiende_whatsapp_number_restarts_total", "Reconnects of a WhatsApp number",
            ["account", "reason"], registry=r,
        )
        self.store_connections = Gauge(
            "atiende_whatsapp_store_connections",
            "Open connections of a WhatsApp number's client to whatsmeow's store",
            ["account"], registry=r,
        )
        self.stage_seconds = Histogram(
            "atiende_stage_seconds", "Time spent per pipeline stage (decide, commit, send)",
            ["stage"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.channel_send_seconds = Histogram(
            "atiende_channel_send_seconds", "One send through a channel, by channel and outcome",
            ["channel", "outcome"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
