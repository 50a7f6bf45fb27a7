"""Prometheus metrics of erasures and retention, on the process's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class PrivacyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.erasures = Counter(
            "atiende_erasures_total", "Customers erased (source: api, page, cli, reapply)",
            ["source"], registry=registry,
        )
        self.erased_rows = Counter(
            "atiende_erased_rows_total", "Rows deleted or anonymised by erasures, per table",
            ["table"], registry=registry,
        )
        self.erased_objects = Counter(
            "atiende_erased_objects_total",
            "Objects deleted by erasures (media files, memory keys)", ["kind"],
            registry=registry,
        )
        self.unfinished = Gauge(
            "atiende_erasures_unfinished",
            "Erasures whose media objects or memory are still to delete (retried)",
            registry=registry,
        )
        self.purged = Counter(
            "atiende_retention_purged_total",
            "Data removed by the retention job, per kind (media, transcripts, texts, notes, "
            "webhook_payloads, sequence_tasks, suggestions)", ["what"], registry=registry,
        )
        self.purge_failures = Counter(
            "atiende_retention_failures_total",
            "Items the retention job could not remove (kept, retried next run)", ["what"],
            registry=registry,
        )
        self.last_run = Gauge(
            "atiende_retention_last_run_timestamp_seconds",
            "When the retention job last finished a run (Unix time)", registry=registry,
        )
