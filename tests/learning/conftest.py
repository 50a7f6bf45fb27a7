"""Learning-from-agents fixtures: open business hours, the demo base, staff, and the
conversation steps (a customer asks, an agent answers and resolves)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.settings import Settings
from handoff.config import HandoffConfig
from tests.conftest import ask
from tests.handoff.conftest import Staff, StaffFactory, staff_factory

HELD_OUT = Path(__file__).with_name("unanswered.yaml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        handoff=HandoffConfig(hours="", csat=False),
    )


@pytest.fixture
def staff(runtime: Any, client: httpx.AsyncClient) -> StaffFactory:
    return staff_factory(runtime, client)


def held_out() -> list[dict[str, Any]]:
    topics: list[dict[str, Any]] = yaml.safe_load(HELD_OUT.read_text("utf-8"))["topics"]
    return topics


def fresh_paraphrases(name: str = "paraphrases2.yaml") -> dict[str, list[str]]:
    """A later set of paraphrases (tests/learning/paraphrases2.yaml, paraphrases3.yaml),
    by topic id."""
    raw = yaml.safe_load((HELD_OUT.parent / name).read_text("utf-8"))
    paraphrases: dict[str, list[str]] = raw["paraphrases"]
    return paraphrases


async def handed_over(client: httpx.AsyncClient, text: str, *, phone: str,
                      name: str | None = None) -> str:
    """A customer asks what the base cannot answer: the conversation id (queued)."""
    out = await ask(client, text, phone=phone, name=name, wait=30)  # a busy shared machine
    assert out["escalated"] is True and out["owner"] == "queued", (text, out)
    return str(out["conversation_id"])


async def answer_and_resolve(client: httpx.AsyncClient, agent: Staff, conversation_id: str,
                             replies: Sequence[str], *, resolve: bool = True) -> None:
    """The agent claims, replies (each text in turn) and resolves."""
    base = f"/api/v1/conversations/{conversation_id}"
    r = await client.post(f"{base}/claim", headers=agent.headers)
    assert r.status_code == 200, r.text
    for reply in replies:
        r = await client.post(f"{base}/messages", json={"text": reply}, headers=agent.headers)
        assert r.status_code == 200, r.text
    if resolve:
        r = await client.post(f"{base}/resolve", headers=agent.headers)
        assert r.status_code == 200, r.text


async def suggestions(client: httpx.AsyncClient, who: Staff, **params: str
                      ) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/knowledge/suggestions", params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found
