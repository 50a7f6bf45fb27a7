"""The compose path minus Docker: the wheel, installed outside the checkout, starts.

Build the wheel from the sources the Dockerfile copies; install it into a fresh
virtualenv in a temporary folder (its own folder then made immutable, so the processes
cannot write next to themselves); run ``atiende migrate``, ``atiende serve`` and
``atiende worker`` with ``ATIENDE_ENV=production`` against PostgreSQL and Redis given by
URL; then a signed Cloud API webhook is stored by the app and answered by the worker at
a local fake Graph server. The fresh venv borrows the test venv's third-party packages
(a ``.pth`` line) so this stays quick in ``make test``; ``make reliability``
(ATIENDE_RELIABILITY=full) installs them from the lock file instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.channels.conftest import envelope, text_message
from tests.channels.fake_graph import FakeGraph
from tests.conftest import make_database
from tests.ops.proof import FULL, free_port

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "alembic.ini", "bot", "knowledge", "handoff",
           "migrations", "requirements.lock")
APP_SECRET = "wheel-app-secret"
PHONE_NUMBER_ID = "106540352242922"


def outside() -> dict[str, str]:
    """The environment without PYTHONPATH: nothing may come from the checkout."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("env", outside())
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done  # type: ignore[no-any-return]


def build_wheel(work: Path) -> Path:
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.exists():
            shutil.copy2(path, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(work / "dist"), str(source)])
    (wheel,) = (work / "dist").glob("atiende-*.whl")
    return wheel


def fresh_venv(work: Path, wheel: Path) -> Path:
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = run([str(python), "-I", "-c",
                   "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    if FULL:  # the real thing: every dependency from the lock file, into this venv
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
             "-r", str(ROOT / "requirements.lock")])
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(wheel)])
    if not FULL:
        # after the install: pip must not see the test venv's own (editable) atiende
        Path(purelib, "atiende-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def freeze(folder: Path) -> bool:
    """Make ``folder`` immutable (even for root); False where the filesystem cannot."""
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    return subprocess.run([chattr, "-R", "+i", str(folder)], capture_output=True).returncode == 0


def thaw(folder: Path) -> None:
    chattr = shutil.which("chattr")
    if chattr is not None:
        subprocess.run([chattr, "-R", "-i", str(folder)], capture_output=True)


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    thaw(tmp_path / "venv")


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url}: the process exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became healthy")


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return process.returncode


@pytest.mark.slow
def test_wheel_installs_migrates_serves_and_answers_a_cloud_webhook(
    work: Path, pg_admin_url: str, redis_url: str, fake_graph_server: FakeGraph
) -> None:
    wheel = build_wheel(work)
    venv = fresh_venv(work, wheel)
    bin_ = venv / "bin"
    found = run([str(bin_ / "python"), "-c",
                 "import bot, bot.db; print(bot.__file__); print(bot.db.migrations_root())"],
                cwd=str(work))
    module, migrations = found.stdout.split()
    assert module.startswith(str(venv)) and migrations.startswith(str(venv)), found.stdout
    frozen = freeze(venv)

    data = work / "data"
    data.mkdir()
    port, worker_port = free_port(), free_port()
    env = {
        "PATH": f"{bin_}:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "ATIENDE_ENV": "production", "ATIENDE_SECRET_KEY": secrets.token_hex(32),
        "ATIENDE_DATABASE_URL": make_database(pg_admin_url), "ATIENDE_REDIS_URL": redis_url,
        "ATIENDE_DATA_DIR": str(data), "ATIENDE_HOST": "127.0.0.1", "ATIENDE_PORT": str(port),
        "ATIENDE_WORKER_PORT": str(worker_port), "ATIENDE_RUN_WORKER_IN_APP": "false",
        "ATIENDE_LOG_LEVEL": "WARNING", "ATIENDE_SPEECH__WARM_AT_START": "false",
        "WHATSAPP_CLOUD_VERIFY_TOKEN": "verify-me", "WHATSAPP_CLOUD_APP_SECRET": APP_SECRET,
        "WHATSAPP_CLOUD_ACCESS_TOKEN": "EAAG-wheel-token",
        "WHATSAPP_CLOUD_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_CLOUD_GRAPH_URL": fake_graph_server.url,
    }
    migrated = run([str(bin_ / "atiende"), "migrate"], env=env, cwd=str(work))
    assert "migrations applied" in migrated.stdout
    logs = {name: open(work / f"{name}.log", "wb") for name in ("serve", "worker")}  # noqa: SIM115
    processes = {
        name: subprocess.Popen([str(bin_ / "atiende"), name], env=env, cwd=str(work),
                               stdout=logs[name], stderr=subprocess.STDOUT,
                               start_new_session=True)
        for name in ("serve", "worker")
    }
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", processes["serve"])
        wait_healthy(f"http://127.0.0.1:{worker_port}/healthz", processes["worker"])
        base = f"http://127.0.0.1:{port}"
        # production: the simulator is off, the webhook needs Meta's signature
        assert httpx.post(f"{base}/api/v1/simulator/messages",
                          json={"from": "+5215512345678", "text": "hola"}).status_code == 404
        body = json.dumps(envelope(messages=[text_message("hola", "wamid.WHEEL1")])).encode()
        unsigned = httpx.post(f"{base}/webhooks/whatsapp-cloud", content=body,
                              headers={"content-type": "application/json"})
        assert unsigned.status_code in (401, 403)
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        stored = httpx.post(f"{base}/webhooks/whatsapp-cloud", content=body, headers={
            "content-type": "application/json", "X-Hub-Signature-256": signature})
        assert stored.status_code == 200, stored.text

        deadline = time.monotonic() + 60
        while not fake_graph_server.sends() and time.monotonic() < deadline:
            time.sleep(0.2)
        sends = fake_graph_server.sends()
        assert len(sends) == 1, "the worker did not answer through the Graph API"
        assert sends[0].path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
        assert sends[0].headers["Authorization"] == "Bearer EAAG-wheel-token"
        assert sends[0].body["to"] == "525512345678" and sends[0].body["text"]["body"]
        metrics = httpx.get(f"http://127.0.0.1:{worker_port}/metrics").text
        assert 'atiende_messages_out_total{channel="whatsapp_cloud",outcome="sent"} 1.0' in metrics
    finally:
        codes = {name: stop(p) for name, p in processes.items()}
        for handle in logs.values():
            handle.close()
    output = {name: (work / f"{name}.log").read_text(errors="replace") for name in logs}
    assert "Traceback" not in output["serve"] + output["worker"], output
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert codes["worker"] == 0 and codes["serve"] in (0, -signal.SIGTERM), (codes, output)
    if frozen:
        assert not list(venv.rglob("__pycache__/*.pyc")), "the processes wrote into their venv"


@pytest.fixture
def fake_graph_server() -> Iterator[FakeGraph]:
    graph = FakeGraph()
    graph.start()
    yield graph
    graph.stop()
