"""``atiende contacts export|erase|erasures|retention`` against a real database, Redis and
media folder, as an operator runs them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import psycopg

from bot.wiring.runtime import Runtime
from tests.conftest import ask

PHONE = "+525566660001"


def _cli(args: list[str], database_url: str, redis_url: str, data_dir: Path,
         **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "contacts", *args],
        env={**os.environ, "ATIENDE_DATABASE_URL": database_url, "ATIENDE_REDIS_URL": redis_url,
             "ATIENDE_DATA_DIR": str(data_dir), "ATIENDE_ENV": "test",
             "ATIENDE_LOG_LEVEL": "WARNING", **env},
        capture_output=True, text=True, timeout=120,
    )


async def test_export_erase_log_and_retention_from_the_command_line(
    runtime: Runtime, client: httpx.AsyncClient, database_url: str, redis_url: str,
    tmp_path: Path,
) -> None:
    data_dir = runtime.settings.data_dir
    await ask(client, "hola, me llamo Casimira", phone=PHONE, name="Casimira Consola")
    await ask(client, "hola", phone="+525566660002", name="Otra Persona")
    key = f"sim:{PHONE}"

    shown = _cli(["export", key], database_url, redis_url, data_dir)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["contact"]["name"] == "Casimira Consola"
    assert any(m["text"] == "hola, me llamo Casimira" for m in document["data"]["messages"])
    archive = tmp_path / "casimira.zip"
    zipped = _cli(["export", key, "--out", str(archive)], database_url, redis_url, data_dir)
    assert zipped.returncode == 0 and "export.json and 0 media file(s)" in zipped.stderr
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as z:
        assert json.loads(z.read("export.json"))["contact"]["phone_e164"] == key

    listed = tmp_path / "borrar.txt"
    listed.write_text(f"# pedidos ARCO de hoy\n{key}\nsim:+525566660009\n")
    erased = _cli(["erase", "--yes", "--file", str(listed)], database_url, redis_url, data_dir)
    assert erased.returncode == 1  # one number was unknown: said, and the rest done
    assert "sim:+525566660009: no customer is stored under sim:+525566660009" in erased.stderr
    assert "erased 1 customer(s); 1 not erased" in erased.stdout
    line = next(x for x in erased.stdout.splitlines() if x.startswith(f"{key}: "))
    assert json.loads(line.split(": ", 1)[1])["erased"] is True
    twice = _cli(["erase", "--yes", key], database_url, redis_url, data_dir)
    assert twice.returncode == 1 and "already erased on" in twice.stderr
    gone = _cli(["export", key], database_url, redis_url, data_dir)
    assert gone.returncode == 1 and "already erased on" in gone.stderr
    bad = _cli(["erase", "--yes", "not-a-number"], database_url, redis_url, data_dir)
    assert bad.returncode == 2 and "not a phone number or contact id" in bad.stderr

    log = _cli(["erasures"], database_url, redis_url, data_dir)
    assert log.returncode == 0 and "(cli)" in log.stdout and PHONE not in log.stdout
    with psycopg.connect(database_url) as conn:
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM audit_log WHERE actor_kind = 'cli' ORDER BY id")]
        other = conn.execute("SELECT name FROM contacts WHERE phone_e164 = %s",
                             ("sim:+525566660002",)).fetchone()
    assert actions == ["contacts.export", "contacts.export", "contacts.erase"]
    assert other == ("Otra Persona",)

    purged = _cli(["retention"], database_url, redis_url, data_dir)
    assert purged.returncode == 0, purged.stderr
    assert "retention: media 90 days, transcripts 730 days, texts 730 days" in purged.stdout
    assert "purged: media 0, transcripts 0, texts 0, notes 0, webhook_payloads 0" in purged.stdout
    refused = _cli(["retention"], database_url, redis_url, data_dir,
                   ATIENDE_PRIVACY__TEXT_DAYS="0")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: invalid settings: privacy.text_days: "
                                     "ATIENDE_PRIVACY__TEXT_DAYS=0: message texts")
