"""Proof: every LLM provider failing or hanging, and still every customer gets one reply
within the time budget, or a clear handoff (owner queued, reason recorded).

The providers are real HTTP servers on 127.0.0.1 (``bot.llm.scripted``): one answers
500, one 429 with ``Retry-After``, one accepts the request and never answers. The
chain (litellm Router, ``ATIENDE_LLM_CONFIG``) asks the hanging one first and falls
back to the other two. Questions go through the simulator endpoint as customers
write them; each message's wall time is measured from the POST to its outcome.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from bot.llm.scripted import Behaviour, ScriptedServer
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from knowledge.demo import load_demo_if_empty
from knowledge.embeddings import Embedder
from tests.conftest import app_client
from tests.ops.proof import FULL, phone

BUDGET_SECONDS = 1.5  # atiende.budget_seconds: the most one chain call may take
# A message may make two chain calls (the intent classifier, then the answer), each
# capped at the budget; the rest (retrieval, the database, the outbox) takes well under
# a second on an idle machine; 3 s leaves room for a 2-core machine shared by several test
# suites (the whole suite once measured 5.3 s for one message at load average ~10).
MESSAGE_BUDGET_SECONDS = 2 * BUDGET_SECONDS + 3.0

QUESTIONS = [
    "oye cuanto es el deducible si me roban el carro??",
    "q cubre la amplia?",
    "me chocaron ahorita, a quien le hablo 😰",
    "se me ponchó la llanta, me mandan grua?",
    "abren los sabados?",
    "se puede pagar en oxxo o nomas con tarjeta",
    "aceptan meses sin intereses?",
    "como cancelo mi seguro, ya no lo quiero",
    "si cancelo me regresan mi lana?",
    "que papeles necesito pa contratar el seguro de mi coche",
    "no entiendo que es eso del deducible jaja",
    "cuantas gruas tengo al año",
    "quiero hablar con alguien por favor",
    "ya les pague y me siguen cobrando!! 😡",
    "hola buenas tardes",
    "how many tow trucks do I get per year?",
]


@pytest.fixture
def providers() -> Iterator[dict[str, ScriptedServer]]:
    started = {
        "hangs": ScriptedServer(default=Behaviour.hang(120)).start(),
        "fails": ScriptedServer(default=Behaviour.error(500)).start(),
        "limited": ScriptedServer(default=Behaviour.rate_limited(30)).start(),
    }
    yield started
    for server in started.values():
        server.stop()


def _config(tmp_path: Path, providers: dict[str, ScriptedServer]) -> Path:
    def deployment(name: str, server: ScriptedServer, model: str) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": model, "api_base": server.url, "api_key": f"sk-{name}-0000",
            "timeout": 1.0, "max_retries": 0}}

    path = tmp_path / "llm.yaml"
    path.write_text(yaml.safe_dump({
        "model_list": [
            deployment("primary", providers["hangs"], "openai/gpt-4o-mini"),
            deployment("backup", providers["fails"], "openai/gpt-4o"),
            deployment("spare", providers["limited"], "openai/gpt-3.5-turbo"),
        ],
        "router_settings": {
            "fallbacks": [{"primary": ["backup", "spare"]}], "num_retries": 0,
            # make reliability: short cooldowns, so the failing providers are asked again
            # and again (the hang paid many times); make test: litellm's default
            "cooldown_time": 3 if FULL else 30,
        },
        "atiende": {
            "answer_model": "primary", "intent_model": "primary", "summary_model": "primary",
            "budget_seconds": BUDGET_SECONDS,
        },
    }))
    return path


async def _send(client: httpx.AsyncClient, n: int, text: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    accepted = await client.post(
        "/api/v1/simulator/messages",
        json={"from": phone(900 + n), "text": text, "message_id": f"down-{n}"},
    )
    assert accepted.status_code == 202, accepted.text
    outcome = await client.get(
        f"/api/v1/simulator/messages/{accepted.json()['message_id']}", params={"wait": 30}
    )
    assert outcome.status_code == 200, outcome.text
    return time.perf_counter() - started, outcome.json()


# When our budget cancels a litellm call mid-way, litellm can leave one of its own
# coroutines unawaited (its internals, not ours): Python reports it at garbage collection.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <coroutine object OpenAIChatCompletion"
    ":pytest.PytestUnraisableExceptionWarning",
    "ignore:coroutine 'OpenAIChatCompletion.acompletion' was never awaited:RuntimeWarning",
)
async def test_every_customer_answered_or_handed_over_with_all_providers_down(
    settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder,
    providers: dict[str, ScriptedServer], tmp_path: Path, figures: list[str],
) -> None:
    configured = settings.model_copy(update={"llm_config": _config(tmp_path, providers)})
    runtime = await Runtime.create(
        configured, database_url=database_url, redis_url=redis_url, embedder=kb_embedder
    )
    runtime.start_worker()
    rounds = 6 if FULL else 1
    texts = [q for _ in range(rounds) for q in QUESTIONS]
    results: list[tuple[float, dict[str, Any]]] = []
    try:
        assert runtime.llm.configured
        await load_demo_if_empty(runtime.knowledge)

        async with app_client(runtime, timeout=60) as client:
            # the first message pays the intent examples' loading (not the providers'
            # fault, and the same with providers up): a warm-up, not measured
            warm = await client.post("/api/v1/simulator/messages", json={
                "from": phone(899), "text": "oigan una pregunta, abren hoy?"})
            assert warm.status_code == 202
            done = await client.get(f"/api/v1/simulator/messages/{warm.json()['message_id']}",
                                    params={"wait": 30})
            assert done.json()["status"] == "processed"
            # waves as wide as the worker, so the wall time is the message's own
            wave = settings.worker_concurrency
            for start in range(0, len(texts), wave):
                results += await asyncio.gather(*[
                    _send(client, start + i, text)
                    for i, text in enumerate(texts[start:start + wave])
                ])
            # the worker is still there: one more customer, answered by the rules
            wall, after = await _send(client, len(texts), "muchas graciaas!!")
            assert after["status"] == "processed" and after["replies"], after
        await runtime.llm.calls.flush()
    finally:
        await runtime.close()

    with psycopg.connect(database_url) as conn:
        replies = dict(conn.execute(
            "SELECT m.provider_message_id, count(r.id) FROM messages m "
            "LEFT JOIN messages r ON r.in_reply_to = m.id AND r.direction = 'out' "
            "WHERE m.direction = 'in' GROUP BY m.provider_message_id").fetchall())
        handed = dict(conn.execute(
            "SELECT m.provider_message_id, c.owner || ':' || coalesce(c.owner_reason, '') "
            "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE m.direction = 'in' AND m.escalated").fetchall())
        calls = conn.execute(
            "SELECT outcome, count(*) FROM llm_calls GROUP BY 1 ORDER BY 1").fetchall()
        slowest_call = conn.execute("SELECT max(latency_ms) FROM llm_calls").fetchone()

    # the chain's own promise, whatever the machine's load: no call past its budget
    # (+1 s: event-loop lag when the 2 shared cores are saturated; 2.1 s seen once)
    assert slowest_call and slowest_call[0] <= BUDGET_SECONDS * 1000 + 1000, slowest_call
    walls = [wall for wall, _ in results]
    late = [(o["message_id"], round(w, 2)) for w, o in results if w > MESSAGE_BUDGET_SECONDS]
    assert not late, f"past the {MESSAGE_BUDGET_SECONDS}s budget: {late}"
    answered = escalated = 0
    assert replies.get(f"down-{len(texts)}") == 1
    for n, (_, outcome) in enumerate(results):
        key = f"down-{n}"
        assert outcome["status"] == "processed", outcome
        assert replies.get(key) == 1, (key, outcome, replies.get(key))
        if outcome["escalated"]:
            # a clear handoff: the conversation waits for a person, with the reason
            escalated += 1
            owner, _, reason = handed[key].partition(":")
            assert owner == "queued" and reason, (key, handed[key])
        else:
            answered += 1
            assert outcome["owner"] == "bot" and outcome["replies"], outcome
    assert answered >= len(texts) // 2, "most questions are in the knowledge base"
    # the providers were really asked, and every call ended as a failure
    assert providers["hangs"].calls > 0 and providers["fails"].calls > 0
    assert dict(calls).keys() <= {"timeout", "error"}, calls
    figures.append(
        f"providers down (hang + 500 + 429, budget {BUDGET_SECONDS}s per call): "
        f"{len(texts)} messages, {answered} answered from the knowledge base, "
        f"{escalated} handed to a person (owner queued, reason recorded); wall time per "
        f"message p50 {statistics.median(walls):.2f}s max {max(walls):.2f}s "
        f"(limit {MESSAGE_BUDGET_SECONDS}s); slowest chain call {slowest_call[0]:.0f} ms; "
        f"chain calls {dict(calls)}; provider requests "
        f"hang {providers['hangs'].calls} / 500 {providers['fails'].calls} / "
        f"429 {providers['limited'].calls}"
    )
