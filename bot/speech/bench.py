"""``atiende bench speech``: each local backend in its own process, on the same clips."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


async def run_speech_bench(clips: list[Path], *, threads: int, backends: list[str]) -> str:
    """Run every backend in a fresh subprocess (so peak memory is its own); one table out."""
    workdir = Path(tempfile.mkdtemp(prefix="atiende-bench-speech-"))
    if not clips:
        from bot.speech.synth import BENCH_SENTENCES, synthesize_voice_note

        clips = [
            synthesize_voice_note(text, workdir / f"clip{i}.ogg")
            for i, text in enumerate(BENCH_SENTENCES)
        ]
    results: dict[str, dict[str, Any]] = {}
    for backend in backends:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.speech.bench", backend, str(threads), *map(str, clips),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            results[backend] = {"error": err.decode(errors="replace").strip().splitlines()[-1:]}
            continue
        results[backend] = json.loads(out.decode().strip().splitlines()[-1])
    return _table(results, clips, threads)


def _table(results: dict[str, dict[str, Any]], clips: list[Path], threads: int) -> str:
    lines = [f"speech benchmark: {len(clips)} clips, {threads} threads, language es, beam 5"]
    header = f"{'clip':<12}{'audio s':>9}" + "".join(
        f"{name + ' s':>20}{'x real time':>13}" for name in results
    )
    lines.append(header)
    for index, clip in enumerate(clips):
        row = f"{clip.name:<12}"
        durations = [r["clips"][index]["audio"] for r in results.values() if "clips" in r]
        row += f"{durations[0] if durations else 0:>9.1f}"
        for result in results.values():
            if "clips" not in result:
                row += f"{'failed':>33}"
                continue
            c = result["clips"][index]
            row += f"{c['elapsed']:>20.2f}{c['audio'] / c['elapsed']:>13.1f}"
        lines.append(row)
    for name, result in results.items():
        if "clips" not in result:
            lines.append(f"{name}: failed: {result['error']}")
            continue
        audio = sum(c["audio"] for c in result["clips"])
        spent = sum(c["elapsed"] for c in result["clips"])
        cpu = sum(c["cpu"] for c in result["clips"])
        lines.append(
            f"{name}: total {audio:.1f} s audio in {spent:.2f} s wall = {audio / spent:.1f}x real "
            f"time; {cpu:.1f} CPU-s = {audio / cpu * threads:.1f}x real time on {threads} "
            f"uncontended cores; model load {result['load']:.2f} s; "
            f"peak RSS {result['peak_mb']:.0f} MB; load average {result['loadavg']:.1f}"
        )
        for c in result["clips"]:
            lines.append(f"  {name} {c['name']}: {c['text']}")
    return "\n".join(lines)


async def _measure(backend: str, threads: int, clips: list[Path]) -> dict[str, Any]:
    from bot.speech.audio import decode
    from bot.speech.config import SpeechSettings
    from bot.speech.service import local_transcriber

    settings = SpeechSettings(backend=backend, threads=threads)
    transcriber = local_transcriber(settings)
    started = time.perf_counter()
    await transcriber.warm()
    load = time.perf_counter() - started
    decoded = [decode(c.read_bytes(), mime_type="audio/ogg", max_seconds=3600) for c in clips]
    await transcriber.transcribe(decoded[0], language="es")  # first-call warm-up, not timed
    rows = []
    for clip, audio in zip(clips, decoded, strict=True):
        cpu_before = _cpu_seconds()
        result = await transcriber.transcribe(audio, language="es")
        rows.append({"name": clip.name, "audio": audio.duration, "elapsed": result.elapsed,
                     "cpu": _cpu_seconds() - cpu_before, "text": result.text})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"load": load, "clips": rows, "peak_mb": peak_mb, "loadavg": os.getloadavg()[0]}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    name, thread_count, *paths = sys.argv[1:]
    report = asyncio.run(_measure(name, int(thread_count), [Path(p) for p in paths]))
    print(json.dumps(report))  # noqa: T201 - the parent process reads this line
