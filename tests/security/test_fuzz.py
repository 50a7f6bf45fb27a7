"""Bounded fuzzing from the route table against the app on 127.0.0.1: random routes,
roles, conversations, ids, bodies and query strings. No answer may be a 5xx, and none may
grant more than the table (and, for an agent, the ownership policy at that moment) says.
300 requests in the suite; ``ATIENDE_RELIABILITY=full`` (``make reliability``) sends
10,000 and prints the figures (RELIABILITY.md)."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from bot.wiring.runtime import Runtime
from handoff.conversations import Conversation
from tests.security.conftest import World, serve
from tests.security.route_table import BODIES, KINDS, ROLES, TABLE, expected_denied, fill_path

REQUESTS = 10_000 if os.environ.get("ATIENDE_RELIABILITY") == "full" else 300
# these end the sessions the fuzzer uses (the table test covers them)
SKIPPED = {"GET /api/v1/inbox/stream", "POST /api/v1/auth/logout",
           "POST /api/v1/auth/logout-everywhere", "POST /api/v1/auth/password"}
JUNK = ["", "a", "ñandú", "\u0000", "x" * 5000, "<script>alert(1)</script>", "' OR 1=1 --",
        "../../etc/passwd", "os.environ/ATIENDE_SECRET_KEY", "+525511110003", "🙂" * 50]


def junk(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth < 2 and pick < 0.25:
        return {rng.choice(["text", "phone", "labels", "team_id", "agent_id", "email", "name",
                            "role", "online", "yaml", rng.choice(JUNK)[:20]]): junk(rng, depth + 1)
                for _ in range(rng.randint(0, 4))}
    if depth < 2 and pick < 0.35:
        return [junk(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if pick < 0.5:
        return rng.choice([0, -1, 1, 10**12, 1.5, True, None])
    return rng.choice(JUNK + [str(uuid.uuid4())])


def request_for(rng: random.Random, route: str) -> dict[str, Any]:
    method = route.split(" ", 1)[0]
    options: dict[str, Any] = {}
    if rng.random() < 0.3:
        options["params"] = {rng.choice(["limit", "q", "status", "cursor", "owner", "wait",
                                         "after", "replace"]): rng.choice(JUNK + ["-1", "0"])}
        if "wait" in options["params"]:
            options["params"]["wait"] = "0"  # never hold the fuzzer for a minute
    if method in ("POST", "PUT", "PATCH"):
        roll = rng.random()
        if roll < 0.4 and route in BODIES:
            options["json"] = BODIES[route]
        elif roll < 0.9:
            options["json"] = junk(rng)
        elif roll < 0.995:
            options["content"] = rng.choice([b"{", b"\xff\xfe", b"null", b"[1,2"])
            options["headers"] = {"Content-Type": "application/json"}
        else:
            options["content"] = b"[" + b"1," * 700_000 + b"1]"  # over the 1 MB limit
            options["headers"] = {"Content-Type": "application/json"}
    return options


async def _allowed_now(runtime: Runtime, world: World, rule: str, conv: str) -> bool:
    """For the agent: does the policy allow it on this conversation right now?"""
    conversation_id = uuid.UUID(conv)
    if not await runtime.handoff.may_see(world.agent_b.principal, conversation_id):
        return False
    if rule == "holder":
        async with runtime.sessions() as session:
            found = await session.get(Conversation, conversation_id)
            return found is not None and found.assigned_agent_id == world.agent_b.id
    return True


async def test_random_requests_grant_nothing_and_never_fail(
    runtime: Runtime, world: World, figures: list[str]
) -> None:
    rng = random.Random(23)
    routes = sorted(r for r in TABLE if r not in SKIPPED)
    conversations = {"own": world.mine_b, "other": world.other, "unassigned": world.unassigned,
                     "bot_only": world.bot_only}
    headers = {"anonymous": {}, "agent": world.agent_b.headers,
               "supervisor": world.supervisor.headers, "admin": world.admin.headers}
    statuses: Counter[int] = Counter()
    over, failures = [], []
    async with serve(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        started = time.perf_counter()
        for _ in range(REQUESTS):
            route = rng.choice(routes)
            role = rng.choice(ROLES)
            method, path = route.split(" ", 1)
            rule = TABLE[route]
            kind = rng.choice(KINDS) if "{conversation_id}" in path or rule == "sim_msg" else None
            ids = {}
            if kind is not None:
                ids = {"conversation_id": conversations[kind],
                       "message_id": world.message_ids["mine_b" if kind == "own" else kind]}
            options = request_for(rng, route)
            options["headers"] = {**headers[role], **options.get("headers", {})}
            url = fill_path(path, ids, rng)
            denied = expected_denied(rule, role, kind)
            if role == "agent" and kind is not None and rule in ("conv", "holder"):
                denied = not await _allowed_now(runtime, world, rule, ids["conversation_id"])
            response = await http.request(method, url, **options)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{method} {url} {role}: {response.status_code}")
            if denied and 200 <= response.status_code < 400:
                over.append(f"{method} {url} {role} {kind}: {response.status_code}")
        elapsed = time.perf_counter() - started
    figures.append("fuzz: " + json.dumps({
        "requests": REQUESTS, "seconds": round(elapsed, 1),
        "requests_per_second": round(REQUESTS / elapsed, 1), "over_granting": len(over),
        "server_errors": len(failures), "statuses": dict(sorted(statuses.items()))}))
    assert failures == [], failures[:20]
    assert over == [], over[:20]


async def test_login_takes_as_long_for_unknown_accounts(
    client: httpx.AsyncClient, world: World, figures: list[str]
) -> None:
    """A figure, not an assertion on time: the median login of a real account with a wrong
    password and of an unknown e-mail (both pay one argon2 check)."""
    times: dict[str, list[float]] = {"real": [], "unknown": []}
    for n in range(10):
        for kind, email in (("real", world.agent_a.principal.email),
                            ("unknown", f"nadie-{n}@seguros.mx")):
            started = time.perf_counter()
            r = await client.post("/api/v1/auth/login", json={"email": email,
                                                              "password": f"wrong-{n}"})
            times[kind].append((time.perf_counter() - started) * 1000)
            assert r.status_code in (401, 429)
    medians = {k: round(sorted(v)[len(v) // 2], 1) for k, v in times.items()}
    figures.append(f"login ms (median of 10, wrong password): {json.dumps(medians)}")
