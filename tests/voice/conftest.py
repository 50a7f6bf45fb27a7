"""Fixtures of the voice/media suite: a real S3 server (moto), media samples."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from bot.settings import Settings
from bot.speech.base import AudioClip, Transcriber, Transcript
from bot.speech.faster import FasterWhisperTranscriber
from bot.speech.models import default_models_dir, install_whisper_base
from bot.speech.service import FASTER_WHISPER_DIR, OPENAI_WHISPER_CHECKPOINT, SpeechService
from bot.speech.synth import synthesize_voice_note
from bot.wiring.runtime import Runtime
from knowledge.embeddings import Embedder
from tests.conftest import app_client


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def png(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` (one tiny IDAT)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


# --- speech: real models, real synthesized Spanish voice notes, one loaded model per session ---

QUOTE_TEXT = "Hola, buenas tardes. Quiero saber cuánto cuesta el seguro de auto."
HUMAN_TEXT = "Buenos días. Por favor quiero hablar con un asesor."


@pytest.fixture(scope="session")
def models_dir() -> Path:
    root = default_models_dir()
    install_whisper_base(root / FASTER_WHISPER_DIR)
    return root


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {
        "quote": synthesize_voice_note(QUOTE_TEXT, root / "quote.ogg"),
        "human": synthesize_voice_note(HUMAN_TEXT, root / "human.ogg"),
    }


@pytest.fixture(scope="session")
def long_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real three-hour recording (silence, 8 kbps MP3: ~10.8 MB, under the 16 MB cap).

    An MP3 stream is a plain sequence of frames, so one encoded minute (no Xing header)
    repeated 180 times is a valid three-hour file, made in a fraction of the encoding time.
    """
    root = tmp_path_factory.mktemp("long")
    minute = root / "minute.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
         "-t", "60", "-c:a", "libmp3lame", "-b:a", "8k", "-write_xing", "0", "-id3v2_version",
         "0", str(minute)], check=True,
    )
    target = root / "three-hours.mp3"
    target.write_bytes(minute.read_bytes() * 180)
    return target


@pytest.fixture(scope="session")
def faster(models_dir: Path) -> FasterWhisperTranscriber:
    # Greedy decoding in tests: the same model, half the time of beam 5.
    return FasterWhisperTranscriber(models_dir / FASTER_WHISPER_DIR, threads=2, beam_size=1)


@pytest.fixture(scope="session")
def openai_checkpoint(models_dir: Path) -> Path:
    from bot.speech.reference import convert_checkpoint

    target = models_dir / OPENAI_WHISPER_CHECKPOINT
    if not target.is_file():
        convert_checkpoint(models_dir / FASTER_WHISPER_DIR, target)
    return target


@pytest.fixture(scope="session")
def reference(openai_checkpoint: Path) -> Transcriber:
    """openai-whisper on the converted checkpoint, loaded once for the session."""
    pytest.importorskip("whisper", reason="the 'reference' extra (openai-whisper) is installed")
    from bot.speech.reference import OpenAIWhisperTranscriber

    return OpenAIWhisperTranscriber(openai_checkpoint, threads=2, beam_size=1)


class CountingTranscriber:
    """Wraps a real transcriber and counts calls (to prove a retry does not transcribe twice)."""

    def __init__(self, inner: Transcriber) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    async def warm(self) -> None:
        await self.inner.warm()

    async def transcribe(self, clip: AudioClip, *, language: str) -> Transcript:
        self.calls += 1
        return await self.inner.transcribe(clip, language=language)


@pytest.fixture
def local_backend(faster: FasterWhisperTranscriber) -> Transcriber:
    """The local Whisper backend the voice runtime uses (a module may parametrize it)."""
    return faster


@pytest.fixture
def counting(local_backend: Transcriber) -> CountingTranscriber:
    return CountingTranscriber(local_backend)


@pytest.fixture
async def voice_runtime(
    settings: Settings, database_url: str, redis_url: str, counting: CountingTranscriber,
    kb_embedder: Embedder,
) -> AsyncIterator[Runtime]:
    speech = SpeechService(local=counting, language="es", max_duration_seconds=600)
    rt = await Runtime.create(
        settings, database_url=database_url, redis_url=redis_url, speech=speech,
        embedder=kb_embedder,
    )
    rt.start_worker()
    yield rt
    await rt.close()


@pytest.fixture
async def voice_client(voice_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(voice_runtime) as c:
        yield c


@asynccontextmanager
async def serve(runtime: Runtime) -> AsyncIterator[str]:
    """The app on a free 127.0.0.1 port under uvicorn (for browsers and the CLI)."""
    import uvicorn

    from bot.api import create_app

    async def factory() -> Runtime:
        return runtime

    api = create_app(factory, run_worker=False)
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live_url(voice_runtime: Runtime) -> AsyncIterator[str]:
    async with serve(voice_runtime) as url:
        yield url


PROVIDER_TEXT = "Quiero hablar con un asesor, por favor."


@dataclass
class ScriptedProvider:
    """An OpenAI-compatible ``/v1/audio/transcriptions`` endpoint: answers or fails on cue."""

    url: str
    fail: bool = False
    text: str = PROVIDER_TEXT
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    state = ScriptedProvider(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(
                (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if state.fail:
                payload, status = {"error": {"message": "overloaded"}}, 500
            else:
                payload, status = {"text": state.text}, 200
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)




async def send_voice(
    client: httpx.AsyncClient, data: bytes, *, filename: str = "nota.ogg",
    mime_type: str = "audio/ogg", phone: str = "+5215512345678", wait: float = 60,
) -> tuple[httpx.Response, dict[str, object] | None]:
    accepted = await client.post(
        "/api/v1/simulator/voice", data={"from": phone},
        files={"audio": (filename, data, mime_type)},
    )
    if accepted.status_code != 202:
        return accepted, None
    outcome = await client.get(
        f"/api/v1/simulator/messages/{accepted.json()['message_id']}", params={"wait": wait}
    )
    assert outcome.status_code == 200, outcome.text
    return accepted, outcome.json()
