"""Prometheus metrics of the LLM chain, registered in the runtime's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class LLMMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.calls = Counter(
            "atiende_llm_calls_total", "LLM chain calls by outcome (ok, fallback, timeout, error)",
            ["purpose", "model", "outcome"], registry=r,
        )
        self.latency = Histogram(
            "atiende_llm_call_seconds", "LLM chain call latency (all attempts)", ["purpose"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16), registry=r,
        )
        self.tokens = Counter(
            "atiende_llm_tokens_total", "Tokens used", ["model", "kind"], registry=r
        )
        self.cost = Counter(
            "atiende_llm_cost_usd_total", "Cost from litellm's offline cost map", ["model"],
            registry=r,
        )
        self.attempt_failures = Counter(
            "atiende_llm_attempt_failures_total", "Failed requests to one provider deployment",
            ["provider", "model", "outcome"], registry=r,
        )
        self.rejected = Counter(
            "atiende_llm_drafts_rejected_total", "Drafts our checks refused to send", ["reason"],
            registry=r,
        )
        self.unavailable = Counter(
            "atiende_llm_unavailable_total",
            "Calls answered without an LLM (unconfigured, budget spent, all providers down)",
            ["reason"], registry=r,
        )
        self.configured = Gauge(
            "atiende_llm_configured", "1 when an LLM chain is configured and built", registry=r
        )
