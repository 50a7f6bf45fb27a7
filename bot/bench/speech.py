"""``atiende bench speech``: each local backend in its own process, on the same clips.

A backend may carry settings of its own (``faster-whisper:beam_size=2:encoder_window=trimmed``)
so variants run side by side. On the synthesized clips the source sentences are known, so
each backend's word error rate (WER) is printed too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any


def words(text: str) -> list[str]:
    """Lower-case words without accents or punctuation ("¿Qué?" and "que" are one word)."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return re.findall(r"[a-z0-9]+", folded)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + insertions + deletions, reference words): WER = first / second."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, row = row, [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
    return row[-1], len(ref)


def parse_backend(spec: str) -> tuple[str, dict[str, str]]:
    """``name[:setting=value…]`` → (name, overrides of ``SpeechSettings``)."""
    name, *pairs = spec.split(":")
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected setting=value in {spec!r}, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return name.strip(), overrides


async def run_speech_bench(
    clips: list[Path], *, threads: int, backends: list[str], texts: bool = True
) -> str:
    """Run every backend in a fresh subprocess (so peak memory is its own); one table out."""
    workdir = Path(tempfile.mkdtemp(prefix="atiende-bench-speech-"))
    references: list[str] | None = None
    if not clips:
        from bot.speech.synth import BENCH_NOTES, synthesize_voice_note

        clips = [
            synthesize_voice_note(text, workdir / f"clip{i:02d}.ogg", words_per_minute=rate)
            for i, (rate, text) in enumerate(BENCH_NOTES)
        ]
        references = [text for _rate, text in BENCH_NOTES]
    results: dict[str, dict[str, Any]] = {}
    for backend in backends:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.bench.speech", backend, str(threads), *map(str, clips),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            results[backend] = {"error": err.decode(errors="replace").strip().splitlines()[-1:]}
            continue
        results[backend] = json.loads(out.decode().strip().splitlines()[-1])
    return _table(results, clips, threads, references, texts=texts)


def _table(
    results: dict[str, dict[str, Any]], clips: list[Path], threads: int,
    references: list[str] | None, *, texts: bool,
) -> str:
    durations = next((
        [c["audio"] for c in r["clips"]] for r in results.values() if "clips" in r
    ), [0.0] * len(clips))
    lines = [
        f"speech benchmark: {len(clips)} clips, {sum(durations):.1f} s audio, {threads} threads, "
        f"language es" + (", WER against the synthesized sentences" if references else "")
    ]
    width = {name: max(len(name) + 2, 14) for name in results}
    lines.append(f"{'clip':<12}{'audio s':>9}" + "".join(
        f"{name:>{width[name]}}{'x real time':>13}" + (f"{'WER':>7}" if references else "")
        for name in results
    ))
    for index, clip in enumerate(clips):
        row = f"{clip.name:<12}{durations[index]:>9.1f}"
        for name, result in results.items():
            if "clips" not in result:
                row += f"{'failed':>{width[name] + 13 + (7 if references else 0)}}"
                continue
            c = result["clips"][index]
            row += f"{c['elapsed']:>{width[name] - 2}.2f} s{c['audio'] / c['elapsed']:>13.1f}"
            if references:
                errors, total = word_errors(references[index], c["text"])
                row += f"{errors / total:>7.2f}"
        lines.append(row)
    for name, result in results.items():
        if "clips" not in result:
            lines.append(f"{name}: failed: {result['error']}")
            continue
        audio = sum(c["audio"] for c in result["clips"])
        spent = sum(c["elapsed"] for c in result["clips"])
        cpu = sum(c["cpu"] for c in result["clips"])
        quality = ""
        if references:
            counts = [word_errors(r, c["text"]) for r, c in zip(references, result["clips"],
                                                                strict=True)]
            errors, total = sum(e for e, _ in counts), sum(t for _, t in counts)
            quality = f"; WER {errors / total:.3f} ({errors} errors / {total} words)"
        lines.append(
            f"{name} ({result['settings']}): total {audio:.1f} s audio in {spent:.2f} s wall = "
            f"{audio / spent:.1f}x real time; {cpu:.1f} CPU-s = {audio / cpu * threads:.1f}x "
            f"real time on {threads} uncontended cores{quality}; model load "
            f"{result['load']:.2f} s; peak RSS {result['peak_mb']:.0f} MB; load average "
            f"{result['loadavg']:.1f}"
        )
        if texts:
            lines.extend(f"  {name} {c['name']}: {c['text']}" for c in result["clips"])
    return "\n".join(lines)


async def _measure(spec: str, threads: int, clips: list[Path]) -> dict[str, Any]:
    from bot.settings import load_settings
    from bot.settings.speech import SpeechSettings
    from bot.speech.audio import decode
    from bot.speech.service import local_transcriber

    backend, overrides = parse_backend(spec)
    settings = SpeechSettings.model_validate(
        {**load_settings().speech.model_dump(), "backend": backend, "threads": threads,
         **overrides}
    )
    transcriber = local_transcriber(settings)
    described = f"beam {settings.beam_size}"
    if backend == "faster-whisper":
        described += (f", {getattr(transcriber, 'compute_type', settings.compute_type)}, "
                      f"{settings.encoder_window} window")
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
    return {"load": load, "clips": rows, "peak_mb": peak_mb, "loadavg": os.getloadavg()[0],
            "settings": described}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    name, thread_count, *paths = sys.argv[1:]
    report = asyncio.run(_measure(name, int(thread_count), [Path(p) for p in paths]))
    print(json.dumps(report))  # noqa: T201 - the parent process reads this line
