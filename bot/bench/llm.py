"""``atiende llm bench``: the chain's own overhead, and what a fallback after a 500 adds.

Providers are scripted OpenAI-compatible servers on 127.0.0.1, so the provider's
time is known exactly (the server measures its own handling time) and subtracted.
The path measured is the one a customer message takes: prompt building, litellm's
Router, HTTP, parsing, the draft checks, metrics. The provider runs in its own
process; its time is the bare HTTP round trip to it, measured interleaved.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import yaml
from prometheus_client import CollectorRegistry

from bot.answering.generation import GenerationRequest, Passage, PersonaText
from bot.clock import system_clock
from bot.llm import scripted
from bot.llm.chain import LLMChain
from bot.llm.config import parse_chain_yaml
from bot.llm.generation import ChainAnswerGenerator
from bot.llm.metrics import LLMMetrics

ANSWER = "¡Claro! El Seguro de Auto Amplio cuesta $1,299 MXN al mes [seguro-auto]."
PASSAGES = (
    Passage("seguro-auto", "Seguro de Auto Amplio",
            "El Seguro de Auto Amplio cuesta $1,299 MXN al mes y cubre robo total.", 0.9),
    Passage("formas-pago", "Formas de pago", "Tarjeta, transferencia y OXXO.", 0.5),
)


@dataclass(frozen=True)
class Figures:
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values_ms: list[float]) -> Figures:
        ordered = sorted(values_ms)
        return cls(statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)],
                   ordered[-1])

    def __str__(self) -> str:
        return f"p50 {self.p50:6.2f} ms   p95 {self.p95:6.2f} ms   max {self.max:6.2f} ms"


class ProviderProcess:
    """A scripted provider in its own process (off this process's GIL)."""

    def __init__(self, *args: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, scripted.__file__, *args],  # stdlib only: starts fast
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError("the scripted provider did not start")

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def _config(ok: str, failing: str, *, answer_model: str) -> str:
    def entry(name: str, url: str) -> dict[str, object]:
        return {"model_name": name, "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": url, "api_key": "sk-bench",
            "timeout": 5}}

    return yaml.safe_dump({
        "model_list": [entry("answer", ok), entry("broken", failing), entry("backup", ok)],
        # the broken primary must be asked every time: no cooldown in this measurement
        "router_settings": {"fallbacks": [{"broken": ["backup"]}], "allowed_fails": 1_000_000,
                            "allowed_fails_policy": {}, "cooldown_time": 0.001},
        "atiende": {"answer_model": answer_model, "budget_seconds": 8},
    })


async def _timed_generate(generator: ChainAnswerGenerator) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) for one grounded answer."""
    loop = asyncio.get_running_loop()
    request = GenerationRequest(
        "cuanto cuesta el seguro de auto??", PASSAGES, (), "es",
        PersonaText("Atiende", "Seguros Atiende"), loop.time() + 8,
    )
    started, cpu = time.perf_counter(), time.process_time()
    answer = await generator.generate(request)
    if answer is None:
        raise RuntimeError("the benchmark chain gave no answer")
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


async def _raw_round_trip(client: httpx.AsyncClient, url: str) -> tuple[float, float]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hola"}]}
    started, cpu = time.perf_counter(), time.process_time()
    response = await client.post(url + "/chat/completions", json=body)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


async def run_llm_bench(calls: int = 300) -> str:
    ok = ProviderProcess("--answer", ANSWER)
    failing = ProviderProcess("--status", "500")
    chain = LLMChain(metrics=LLMMetrics(CollectorRegistry()))
    with_fallback = LLMChain(metrics=LLMMetrics(CollectorRegistry()))
    try:
        await chain.apply(parse_chain_yaml(_config(ok.url, failing.url, answer_model="answer")),
                          source="bench")
        await with_fallback.apply(
            parse_chain_yaml(_config(ok.url, failing.url, answer_model="broken")), source="bench"
        )
        generator = ChainAnswerGenerator(chain, clock=system_clock)
        falling_back = ChainAnswerGenerator(with_fallback, clock=system_clock)
        raw, direct, fallback = [], [], []
        raw_cpu, direct_cpu = [], []
        async with httpx.AsyncClient() as client:
            for _ in range(min(20, calls)):  # settle connections and caches
                await _raw_round_trip(client, ok.url)
                await _timed_generate(generator)
                await _timed_generate(falling_back)
            for _ in range(calls):  # interleaved, so load on the machine hits all three alike
                wall, cpu = await _raw_round_trip(client, ok.url)
                raw.append(wall)
                raw_cpu.append(cpu)
                wall, cpu = await _timed_generate(generator)
                direct.append(wall)
                direct_cpu.append(cpu)
                fallback.append((await _timed_generate(falling_back))[0])
    finally:
        chain.close()
        with_fallback.close()
        ok.stop()
        failing.stop()
    bare, answered, fell_back = Figures.of(raw), Figures.of(direct), Figures.of(fallback)
    overhead = Figures(answered.p50 - bare.p50, answered.p95 - bare.p95, answered.max - bare.max)
    added = Figures(fell_back.p50 - answered.p50, fell_back.p95 - answered.p95,
                    fell_back.max - answered.max)
    bare_cpu, answer_cpu = Figures.of(raw_cpu), Figures.of(direct_cpu)
    cpu_overhead = Figures(answer_cpu.p50 - bare_cpu.p50, answer_cpu.p95 - bare_cpu.p95,
                           answer_cpu.max - bare_cpu.max)
    load = os.getloadavg()[0]
    return "\n".join([
        f"LLM chain benchmark: {calls} grounded answers per series; scripted OpenAI-compatible "
        f"provider in its own process on 127.0.0.1; load average {load:.1f} on "
        f"{os.cpu_count()} cores",
        f"  bare HTTP round trip to the provider (httpx)   {bare}",
        f"  grounded answer through the chain              {answered}",
        f"  chain overhead (answer - bare HTTP)            {overhead}"
        f"   {'PASS' if overhead.p95 <= 20 else 'FAIL'} (p95 <= 20 ms)",
        f"  CPU time of this process per bare HTTP call     {bare_cpu}",
        f"  CPU time of this process per chain answer       {answer_cpu}",
        f"  chain overhead in CPU time (answer - bare)     {cpu_overhead}"
        f"   {'PASS' if cpu_overhead.p95 <= 20 else 'FAIL'} (p95 <= 20 ms)",
        f"  answer after a 500 from the primary            {fell_back}",
        f"  added by the fallback (after-500 - answer)     {added}"
        f"   {'PASS' if added.p95 <= 150 else 'FAIL'} (p95 <= 150 ms)",
    ])
